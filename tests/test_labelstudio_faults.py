"""Label Studio faults during push/pull: down, slow, answering 500; a pull interrupted half-way.

Complements tests/test_labelstudio.py, which already covers, without a server: bounded exponential retries on a
refused connection (``test_retries_then_one_line_error_naming_url_not_key``), 5xx retried and 4xx not
(``test_server_errors_retried_client_errors_not``), a missing key, and export validation before any write
(``test_rows_from_export_validates_before_writing``). Here the faults come over real HTTP from a local server, and
the pull is cut off while it writes.
"""

from __future__ import annotations

import http.server
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

KEY = "faults-test-key-5b1d"


def _server(status: int = 500, delay: float = 0.0):
    hits = []

    class H(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            hits.append(self.path)
            time.sleep(delay)
            body = b'{"detail": "server trouble"}'
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_PATCH = _answer

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}", hits


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _connect_fast(monkeypatch, timeout=10):
    """The CLI's connect, with no waiting between the (same number of) retries and a short timeout."""
    from attnpatterns.annotate import labelstudio as lsc

    orig = lsc.connect
    monkeypatch.setattr(lsc, "connect", lambda retries=3, backoff=0.5, t=120, **k: orig(retries, 0.0, timeout))


def test_server_answering_500_bounded_retries_then_one_line(env, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    srv, url, hits = _server(500)
    try:
        env.setenv("LABEL_STUDIO_URL", url)
        _connect_fast(env)
        t0 = time.monotonic()
        r = CliRunner().invoke(app, ["annotate", "pull", "--project", "attn-raw", "--out", str(tmp_path / "ann")])
        took = time.monotonic() - t0
    finally:
        srv.shutdown()
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "HTTP 500" in r.stderr and "4 tries" in r.stderr and url in r.stderr
    # bounded: our 4 tries (times whatever the SDK retries inside each), not an endless loop
    assert 4 <= len(hits) <= 4 * 3, hits
    assert took < 120 and not (tmp_path / "ann").exists()


def test_server_down_is_a_clear_error(env, tmp_path):
    import socket

    from typer.testing import CliRunner

    from cli.main import app

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    env.setenv("LABEL_STUDIO_URL", f"http://127.0.0.1:{port}")
    _connect_fast(env)
    r = CliRunner().invoke(app, ["annotate", "pull", "--project", "attn-raw", "--out", str(tmp_path / "ann")])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "cannot reach Label Studio" in r.stderr and "attn annotate serve" in r.stderr and KEY not in r.stderr


def test_slow_server_times_out_bounded(env, tmp_path):
    from attnpatterns.annotate import labelstudio as lsc
    from attnpatterns.errors import UserError

    srv, url, hits = _server(200, delay=3.0)
    try:
        env.setenv("LABEL_STUDIO_URL", url)
        t0 = time.monotonic()
        with pytest.raises(UserError) as e:
            lsc.connect(retries=1, backoff=0.0, timeout=0.5)
        took = time.monotonic() - t0
    finally:
        srv.shutdown()
    msg = str(e.value)
    assert "Timeout" in msg and "2 tries" in msg and KEY not in msg, msg
    assert took < 30, took


# ------------------------------------------------------------------------------------- a pull cut off half-way


def _fake_conn(export, fail_export=0):
    """A Connection whose SDK answers from memory; the export fails ``fail_export`` times (connection dropped)."""
    import httpx

    from attnpatterns.annotate import labelstudio as lsc

    state = {"fails": fail_export}

    def as_json(*a, **k):
        if state["fails"]:
            state["fails"] -= 1
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        return export

    proj = SimpleNamespace(id=1, title="attn-maps", label_config=lsc.LABEL_CONFIG)
    sdk = SimpleNamespace(
        projects=SimpleNamespace(list=lambda **k: [proj], exports=SimpleNamespace(as_json=as_json)),
        users=SimpleNamespace(list=lambda: [SimpleNamespace(id=1, email="a@b", username="a")]),
    )
    return lsc.Connection(url="http://127.0.0.1:9", sdk=sdk, _key=KEY, retries=2, sleep=lambda s: None)


def _export(kinds=("raw", "normed"), label="vertical"):
    from attnpatterns.annotate import labelstudio as lsc

    tasks = []
    for i, kind in enumerate(kinds):
        data = dict(
            map_id=f"{kind}-pre-MRPC-9-L0H{i}",
            kind=kind,
            map=lsc.encode_map(np.eye(4, dtype=np.float32) * 0.5),
            image="data:image/png;base64,AA",
            task="MRPC",
            example="9",
            layer=0,
            head=i,
            source_model="m",
            n_tokens=4,
        )
        tasks.append(
            {
                "id": i + 1,
                "data": data,
                "annotations": [
                    {
                        "id": i + 1,
                        "completed_by": 1,
                        "updated_at": "2026-01-02",
                        "was_cancelled": False,
                        "result": [{"from_name": "pattern", "type": "choices", "value": {"choices": [label]}}],
                    }
                ],
            }
        )
    return tasks


def _seed_dataset(root):
    from attnpatterns.annotate import dataset as ads

    for kind in ("raw", "normed"):
        rows = [
            dict(
                id=f"{kind}-old-{i}",
                label="block",
                annotator="x",
                source_model="m",
                task="MRPC",
                layer=0,
                head=i,
                example="1",
            )
            for i in range(3)
        ]
        ads.upsert(root, kind, rows, {r["id"]: np.full((5, 5), 0.2, dtype=np.float32) for r in rows})


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _content(root):
    from attnpatterns.annotate import dataset as ads

    out = {}
    for kind in ("raw", "normed"):
        s = ads.load(root, kind)
        out[kind] = (s.rows, {k: v.tobytes() for k, v in s.maps.items()})
    return out


def test_export_dropped_mid_transfer_is_retried_then_leaves_dataset_as_it_was(tmp_path):
    from attnpatterns.annotate import pull as lsp
    from attnpatterns.errors import UserError

    root = tmp_path / "ann"
    _seed_dataset(root)
    before = _files(root)
    with pytest.raises(UserError, match="cannot reach Label Studio.*3 tries"):
        lsp.pull("attn-maps", root, conn=_fake_conn(_export(), fail_export=3))
    assert _files(root) == before
    # dropped twice, then whole: the retry gets it
    res = lsp.pull("attn-maps", root, conn=_fake_conn(_export(), fail_export=2))
    assert res.annotated_tasks == 2 and _files(root) != before


def test_pull_interrupted_while_writing_leaves_each_kind_readable_as_it_was(tmp_path, monkeypatch):
    """Ctrl-C (or a crash) between the two files of a kind: the dataset still reads as it was."""
    from attnpatterns.annotate import dataset as ads
    from attnpatterns.annotate import pull as lsp

    root = tmp_path / "ann"
    _seed_dataset(root)
    before = _content(root)
    import attnpatterns.io as aio

    orig = aio.atomic_path

    def interrupted(path, *a, **k):
        if str(path).endswith(ads.LABELS_FILE):
            raise KeyboardInterrupt
        return orig(path, *a, **k)

    monkeypatch.setattr(aio, "atomic_path", interrupted)
    with pytest.raises(KeyboardInterrupt):
        lsp.pull("attn-maps", root, conn=_fake_conn(_export(("raw",))))
    monkeypatch.undo()
    assert _content(root) == before
    assert not [p for p in root.rglob("*") if p.name.startswith(".") and ".tmp" in p.name]


def test_pull_interrupted_between_kinds_leaves_dataset_as_it_was(tmp_path, monkeypatch):
    """An export with raw and normed maps, cut off after the first kind is written."""
    from attnpatterns.annotate import dataset as ads
    from attnpatterns.annotate import pull as lsp

    root = tmp_path / "ann"
    _seed_dataset(root)
    before = _files(root)
    orig = ads.upsert
    calls = []

    def upsert_then_die(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return orig(*a, **k)

    monkeypatch.setattr(ads, "upsert", upsert_then_die)
    with pytest.raises(KeyboardInterrupt):
        lsp.pull("attn-maps", root, conn=_fake_conn(_export()))
    monkeypatch.undo()
    assert _files(root) == before
