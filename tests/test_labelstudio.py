"""Label Studio: push, annotate through the API, pull into the dataset, against a REAL server.

The server tests start Label Studio from its own venv (see the ``labelstudio`` fixture in conftest.py).
The connection tests at the top need no server.
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from attnpatterns.annotate import dataset as ds
from attnpatterns.annotate import labelstudio as lsc
from attnpatterns.annotate import pull as lsp
from attnpatterns.errors import UserError

SECRET = "s3cret-key-never-shown-0123456789"


# ----------------------------------------------------------------------------- no server needed


def _conn(fn_sleep=None, retries=3):
    return lsc.Connection(
        url="http://127.0.0.1:9",
        sdk=None,
        _key=SECRET,
        retries=retries,
        backoff=0.5,
        sleep=fn_sleep or (lambda s: None),
    )


def test_retries_then_one_line_error_naming_url_not_key():
    import httpx

    waits = []
    conn = _conn(waits.append)
    calls = []

    def down():
        calls.append(1)
        raise httpx.ConnectError(f"refused with {SECRET}")

    with pytest.raises(UserError) as e:
        conn.call("list projects", down)
    assert len(calls) == 4 and waits == [0.5, 1.0, 2.0]  # bounded, exponential
    msg = str(e.value)
    assert "http://127.0.0.1:9" in msg and SECRET not in msg and "\n" not in msg


def test_server_errors_retried_client_errors_not():
    from label_studio_sdk.core.api_error import ApiError

    conn = _conn()
    state = {"n": 0}

    def flaky():
        state["n"] += 1
        if state["n"] < 3:
            raise ApiError(status_code=500, body="boom")
        return "ok"

    assert conn.call("x", flaky) == "ok" and state["n"] == 3

    def bad_key():
        raise ApiError(status_code=401, body={"detail": f"Invalid token {SECRET}"})

    with pytest.raises(UserError, match="rejected the API key") as e:
        conn.call("x", bad_key)
    assert SECRET not in str(e.value)

    def refused():
        raise ApiError(status_code=400, body={"detail": f"bad {SECRET}"})

    with pytest.raises(UserError, match="refused to x") as e:
        conn.call("x", refused)
    assert SECRET not in str(e.value)


def test_connect_needs_key_from_environment(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(UserError, match="LABEL_STUDIO_API_KEY is not set"):
        lsc.connect()
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", SECRET)
    monkeypatch.setenv("LABEL_STUDIO_URL", "ftp://x")
    with pytest.raises(UserError, match="must start with http"):
        lsc.connect()


def test_config_check_and_map_codec():
    lsc.check_config(lsc.LABEL_CONFIG, "p")
    other = lsc.LABEL_CONFIG.replace('<Choice value="block" hotkey="4"/>', "")
    with pytest.raises(UserError, match="different labeling config"):
        lsc.check_config(other, "p")
    with pytest.raises(UserError, match="different labeling config"):
        lsc.check_config("<View><Text name='t' value='$text'/></View>", "p")
    a = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    np.testing.assert_array_equal(lsc.decode_map(lsc.encode_map(a)), a)


def test_rows_from_export_validates_before_writing():
    a = np.eye(4, dtype=np.float32)
    data = dict(
        map_id="raw-pre-MRPC-1-L0H1",
        kind="raw",
        map=lsc.encode_map(a),
        image="data:image/png;base64,AA",
        task="MRPC",
        example="1",
        layer=0,
        head=1,
        source_model="m",
        n_tokens=4,
    )

    def task(label, tid=1, **over):
        ann = {
            "id": tid,
            "completed_by": 1,
            "updated_at": f"2026-01-0{tid}",
            "was_cancelled": False,
            "result": [{"from_name": "pattern", "type": "choices", "value": {"choices": [label]}}],
        }
        return {"id": tid, "data": {**data, **over}, "annotations": [ann]}

    rows, maps, skipped, who = lsp.rows_from_export(
        [task("block"), {"id": 9, "data": data, "annotations": []}], {1: "a@b"}
    )
    assert rows["raw"]["raw-pre-MRPC-1-L0H1"]["label"] == "block" and skipped == 1 and who == ["a@b"]
    # the same map pushed twice: the newest annotation wins
    rows, *_ = lsp.rows_from_export([task("vertical", 2), task("block", 1)], {1: "a@b"})
    assert rows["raw"]["raw-pre-MRPC-1-L0H1"]["label"] == "vertical"
    with pytest.raises(UserError, match="unknown label 'weird'"):
        lsp.rows_from_export([task("weird")], {})
    with pytest.raises(UserError, match="no map, image"):
        lsp.rows_from_export([task("block", map="", image="")], {})
    with pytest.raises(UserError, match="damaged"):
        lsp.rows_from_export([task("block", map="!!notbase64")], {})
    with pytest.raises(UserError, match="4 tokens|tokens"):
        lsp.rows_from_export([task("block", n_tokens=5)], {})


# ----------------------------------------------------------------------------- a real server


@pytest.fixture
def ls_env(labelstudio, monkeypatch):
    server, creds = labelstudio
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", creds.token)
    return server, creds


def _choice(label):
    return [{"from_name": "pattern", "to_name": "map", "type": "choices", "value": {"choices": [label]}}]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


@pytest.mark.labelstudio
def test_push_annotate_pull_roundtrip(ls_env, tiny_model_dir, glue_dir, tmp_path, monkeypatch):
    from cli.main import app

    server, creds = ls_env
    monkeypatch.setenv("ATTN_CLASSIFIER_DIR", str(tmp_path / "no-classifier"))  # heuristic pre-annotations
    runner = CliRunner()
    args = [
        "annotate",
        "push",
        "--kind",
        "raw",
        "--task",
        "MRPC",
        "--n",
        "3",
        "--model",
        str(tiny_model_dir),
        "--project",
        "roundtrip",
        "--data-dir",
        str(glue_dir),
        "--min-tokens",
        "4",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "3 tasks imported" in r.output and "heuristic" in r.output
    r = runner.invoke(app, args)  # pushing again does not duplicate tasks
    assert r.exit_code == 0 and "0 tasks imported, 3 already there" in r.output, r.output
    assert creds.token not in r.output

    conn = lsc.connect()
    proj = lsc.find_project(conn, "roundtrip")
    tasks = list(conn.sdk.tasks.list(project=proj.id, fields="all"))
    assert len(tasks) == 3
    t0 = tasks[0]
    assert t0.data["image"].startswith("data:image/png;base64,") and t0.data["kind"] == "raw"
    preds = list(conn.sdk.predictions.list(task=t0.id))
    assert len(preds) == 1 and preds[0].result[0]["value"]["choices"][0] == t0.data["suggested_label"]

    ann = conn.sdk.annotations.create(id=t0.id, result=_choice("block"))
    out = tmp_path / "annotations"
    r = runner.invoke(app, ["annotate", "pull", "--project", "roundtrip", "--out", str(out)])
    assert r.exit_code == 0, r.output
    s = ds.load(out, "raw")
    assert len(s.rows) == 1
    row = s.rows[0]
    assert row["id"] == t0.data["map_id"] and row["label"] == "block" and row["annotator"] == creds.username
    assert (row["task"], row["layer"], row["head"], row["example"]) == (
        "MRPC",
        t0.data["layer"],
        t0.data["head"],
        t0.data["example"],
    )
    assert row["source_model"] == str(tiny_model_dir) and row["suggested_label"] == t0.data["suggested_label"]
    m = s.maps[row["id"]]
    assert m.shape == (t0.data["n_tokens"],) * 2
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-5)  # a raw map: rows sum to one

    r = runner.invoke(app, ["annotate", "pull", "--project", "roundtrip", "--out", str(out)])
    assert r.exit_code == 0 and "0 added, 0 updated, 1 unchanged" in r.output, r.output
    assert len(ds.load(out, "raw").rows) == 1

    conn.sdk.annotations.update(id=ann.id, result=_choice("diagonal"))
    r = runner.invoke(app, ["annotate", "pull", "--project", "roundtrip", "--out", str(out)])
    assert r.exit_code == 0 and "0 added, 1 updated" in r.output, r.output
    s = ds.load(out, "raw")
    assert [x["label"] for x in s.rows] == ["diagonal"]

    # bad input against the live server: each leaves the dataset untouched
    before = _files(out)
    # an unknown label (Label Studio stores what it is sent)
    t1 = tasks[1]
    conn.sdk.annotations.create(id=t1.id, result=_choice("diagonal-ish"))
    r = runner.invoke(app, ["annotate", "pull", "--project", "roundtrip", "--out", str(out)])
    assert r.exit_code == 2 and "unknown label 'diagonal-ish'" in r.output, r.output
    assert _files(out) == before

    # a task whose image points nowhere and whose map is missing (not made by 'attn annotate push')
    proj2, _ = lsc.get_or_create_project(conn, "missing-images")
    res = conn.sdk.projects.import_tasks(
        id=proj2.id,
        request=[{"data": {"image": "/data/upload/1/missing.png", "map_id": "x-1", "kind": "raw"}}],
        return_task_ids=True,
    )
    conn.sdk.annotations.create(id=res.task_ids[0], result=_choice("block"))
    r = runner.invoke(app, ["annotate", "pull", "--project", "missing-images", "--out", str(out)])
    assert r.exit_code == 2 and "no map in its data" in r.output, r.output
    assert _files(out) == before

    # a project whose labeling config differs: refused for push and pull
    conn.sdk.projects.create(
        title="other-config",
        label_config="<View><Text name='t' value='$text'/>"
        "<Choices name='c' toName='t'><Choice value='a'/></Choices></View>",
    )
    for cmd in (
        ["annotate", "pull", "--project", "other-config", "--out", str(out)],
        args[:-6] + ["--project", "other-config", "--data-dir", str(glue_dir)],
    ):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 2 and "different labeling config" in r.output, r.output
    assert _files(out) == before

    # a missing project names the ones there are
    r = runner.invoke(app, ["annotate", "pull", "--project", "nope", "--out", str(out)])
    assert r.exit_code == 2 and "no Label Studio project 'nope'" in r.output and "roundtrip" in r.output


@pytest.mark.labelstudio
def test_wrong_key_names_url_never_key(ls_env, monkeypatch, tmp_path):
    from cli.main import app

    server, creds = ls_env
    wrong = "wrong-" + creds.token[:10]
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", wrong)
    r = CliRunner().invoke(app, ["annotate", "pull", "--project", "roundtrip", "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert server.url in r.output and "rejected the API key" in r.output
    assert wrong not in r.output and creds.token not in r.output
    assert not any(tmp_path.iterdir())


@pytest.mark.labelstudio
def test_server_files_hold_no_key_from_us(labelstudio):
    """The token reaches the server through its environment: not its command line, not its log."""
    server, creds = labelstudio
    assert creds.token not in " ".join(server.proc.args)
    assert creds.token not in server.log_path.read_text(errors="replace")


@pytest.mark.labelstudio
def test_serve_starts_prints_login_and_stops_on_ctrl_c(labelstudio, tmp_path):
    """`attn annotate serve` as a user runs it: URL and login printed, key accepted, Ctrl-C stops it cleanly."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import requests

    from attnpatterns.annotate.server import free_port, port_free

    port = free_port()
    key = "serve-test-key-" + os.urandom(8).hex()
    env = dict(os.environ, LABEL_STUDIO_API_KEY=key, LABEL_STUDIO_PASSWORD="pw-" + os.urandom(6).hex())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "annotate",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "ls-data"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).parents[1]),
    )
    lines = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        out = "".join(lines)
        url = f"http://127.0.0.1:{port}"
        assert f"running at {url}" in out and "log in as:" in out, out
        r = requests.get(url + "/api/current-user/whoami", headers={"Authorization": f"Token {key}"}, timeout=30)
        assert r.status_code == 200
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out += rest
    assert proc.returncode == 0, out
    assert "stopped." in out and key not in out
    assert port_free(port), "the Label Studio process is still listening"


def test_pre_annotation_uses_trained_classifier_when_present(tmp_path, monkeypatch):
    """models/pattern-cnn-<kind>.safetensors present: its labels become the predictions; absent or broken: heuristic."""
    import attnpatterns.classifier.predict as predict

    maps = [np.eye(6, dtype=np.float32), np.full((5, 5), 0.2, np.float32)]
    toks = [None, None]
    monkeypatch.setenv("ATTN_CLASSIFIER_DIR", str(tmp_path))
    assert {s[2] for s in lsc.suggest_labels("raw", maps, toks)} == {"heuristic"}

    (tmp_path / "pattern-cnn-raw.safetensors").write_bytes(b"weights")
    seen = {}

    def fake_classify(ms, kind, path):
        seen.update(kind=kind, path=path, n=len(ms))
        return ["block", "vertical"], np.array([[0.1, 0.1, 0.1, 0.6, 0.1], [0.9, 0.025, 0.025, 0.025, 0.025]])

    monkeypatch.setattr(predict, "classify_maps", fake_classify)
    out = lsc.suggest_labels("raw", maps, toks)
    assert [o[0] for o in out] == ["block", "vertical"] and out[1][1] == pytest.approx(0.9)
    assert out[0][2] == "cnn:pattern-cnn-raw.safetensors" and seen == dict(
        kind="raw", path=tmp_path / "pattern-cnn-raw.safetensors", n=2
    )

    def broken(ms, kind, path):
        raise UserError("bad card")

    monkeypatch.setattr(predict, "classify_maps", broken)
    assert {s[2] for s in lsc.suggest_labels("raw", maps, toks)} == {"heuristic"}


@pytest.mark.parametrize("kind", ["raw", "normed"])
def test_sample_maps_tiny_model(kind, tiny_model_dir, glue_dir):
    from attnpatterns.annotate.sample import SampleConfig, infer_model_state, sample_maps

    cfg = SampleConfig(
        kind=kind,
        task="MRPC",
        n=5,
        model=str(tiny_model_dir),
        heads_per_example=2,
        min_tokens=6,
        max_tokens=40,
        seed=3,
        data_dir=glue_dir,
    )
    items = sample_maps(cfg)
    assert len(items) == 5 and len({i.map_id for i in items}) == 5
    assert all(i.map_id.startswith(f"{kind}-pre-MRPC-") and i.kind == kind for i in items)
    for i in items:
        assert i.attn.dtype == np.float32 and i.attn.shape == (len(i.tokens),) * 2 and 6 <= len(i.tokens) <= 40
        assert i.tokens[0] == "[CLS]" and i.tokens.count("[SEP]") == 2  # MRPC is a sentence pair
        assert (i.layer, i.head) < (2, 4)
        if kind == "raw":
            np.testing.assert_allclose(i.attn.sum(axis=1), 1.0, atol=1e-5)
    again = sample_maps(cfg)
    assert [i.map_id for i in again] == [i.map_id for i in items]
    assert all(np.array_equal(a.attn, b.attn) for a, b in zip(items, again))
    assert infer_model_state(None) == "pre" and infer_model_state(str(tiny_model_dir)) == "pre"
    with pytest.raises(UserError, match="--n must be positive"):
        SampleConfig(kind=kind, task="MRPC", n=0)
    with pytest.raises(UserError, match="unknown map kind"):
        SampleConfig(kind="both", task="MRPC", n=1)
    with pytest.raises(UserError, match="must not exceed --max-length"):
        SampleConfig(kind=kind, task="MRPC", n=1, max_tokens=200)
