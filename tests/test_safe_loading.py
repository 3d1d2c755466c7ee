"""Safe loading: a pickle payload in any file we read is refused, and never run; the Label Studio key never shows.

Each pickle below, if unpickled, would create a marker file (``os.system`` is not needed: ``pathlib.Path.touch`` via
``__reduce__``). Every reader must refuse the file with a one-line UserError and the marker must not exist.
The key tests start a local HTTP server that plays a hostile Label Studio: it echoes the request's Authorization
header back in its error bodies, so any error text passed through unscrubbed would carry the key.
"""

from __future__ import annotations

import http.server
import json
import logging
import pickle
import re
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

KEY = "ls-key-7f3a9c1e-never-shown-0xDEADBEEF"


class Payload:
    """Unpickling this touches ``marker``: proof that the pickle ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _object_npy(path: Path, marker: Path) -> Path:
    np.save(path, np.array([Payload(marker), None], dtype=object), allow_pickle=True)
    return path


def _torch_pickle(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"bert.embeddings.word_embeddings.weight": Payload(marker)}, path)
    return path


# ------------------------------------------------------------------------------------- pickles refused


def test_object_npy_refused_everywhere_we_read_npy(tmp_path):
    from attnpatterns.classifier.predict import read_npy
    from attnpatterns.errors import UserError
    from attnpatterns.prune.masks import load_mask_npy, read_seed_dir

    marker = tmp_path / "PWNED"
    f = _object_npy(tmp_path / "head_mask.npy", marker)
    for read in (lambda: load_mask_npy(f, 2), lambda: read_npy(f)):
        with pytest.raises(UserError) as e:
            read()
        assert "\n" not in str(e.value) and "head_mask.npy" in str(e.value)
    sd = tmp_path / "MRPC" / "seed_1"
    sd.mkdir(parents=True)
    _object_npy(sd / "head_mask.npy", marker)
    np.save(sd / "mlp_mask.npy", np.ones(2))
    with pytest.raises(UserError):
        read_seed_dir(sd)
    assert not marker.exists()


def test_object_arrays_in_npz_refused(tmp_path):
    from attnpatterns.annotate import dataset as ads
    from attnpatterns.errors import UserError

    marker = tmp_path / "PWNED"
    rows = [dict(id="m1", label="block", annotator="a", source_model="m", task="MRPC", layer=0, head=1, example="1")]
    ads.upsert(tmp_path / "ann", "raw", rows, {"m1": np.eye(4, dtype=np.float32)})
    npz = tmp_path / "ann" / "raw" / "maps.npz"
    np.savez(npz, m1=np.array([Payload(marker)], dtype=object))
    with pytest.raises(UserError) as e:
        ads.load(tmp_path / "ann", "raw")
    assert "maps.npz" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_torch_pickle_checkpoint_is_not_loaded(tmp_path):
    """A model folder whose weights are a pickle (pytorch_model.bin) is refused, its payload not run."""
    from attnpatterns.errors import UserError
    from attnpatterns.models import TinySpec, load_model, tiny_bert

    marker = tmp_path / "PWNED"
    d = tmp_path / "pickled-model"
    tiny_bert(TinySpec(layers=2, heads=4, hidden=32, intermediate=64), num_labels=2, seed=0).config.save_pretrained(d)
    _torch_pickle(d / "pytorch_model.bin", marker)
    with pytest.raises(UserError) as e:
        load_model(str(d), num_labels=2)
    assert not marker.exists(), "the pickle in pytorch_model.bin was executed"
    assert "pickle" in str(e.value) and "\n" not in str(e.value)


def test_classifier_files_that_are_pickles_or_fakes_refused(tmp_path):
    from attnpatterns.classifier.card import load
    from attnpatterns.errors import UserError

    marker = tmp_path / "PWNED"
    fakes = {
        "pickle.safetensors": lambda p: _torch_pickle(p, marker),
        "zip.safetensors": lambda p: zipfile.ZipFile(p, "w").writestr("data.pkl", pickle.dumps(Payload(marker))),
        "raw-pickle.safetensors": lambda p: p.write_bytes(pickle.dumps(Payload(marker))),
        "huge-header.safetensors": lambda p: p.write_bytes((10**12).to_bytes(8, "little") + b"{}"),
        "empty.safetensors": lambda p: p.write_bytes(b""),
        "text.safetensors": lambda p: p.write_text("not weights", encoding="utf-8"),
    }
    for name, make in fakes.items():
        p = tmp_path / name
        make(p)
        with pytest.raises(UserError) as e:
            load(p, kind="raw")
        assert name in str(e.value) and "\n" not in str(e.value), name
    assert not marker.exists()


def test_no_pickle_readers_in_the_code():
    """Every torch.load passes weights_only=True and every np.load allow_pickle=False; no pickle/joblib loads."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for p in list((root / "attnpatterns").rglob("*.py")) + list((root / "cli").rglob("*.py")):
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if re.search(r"\btorch\.load\(", code) and "weights_only=True" not in code:
                offenders.append(f"{p.name}:{i}: {line.strip()}")
            if re.search(r"\bnp\.load\(", code) and "allow_pickle=False" not in code:
                offenders.append(f"{p.name}:{i}: {line.strip()}")
            if re.search(r"\b(pickle|joblib|dill|cloudpickle)\.loads?\(", code):
                offenders.append(f"{p.name}:{i}: {line.strip()}")
            if "allow_pickle=True" in code:
                offenders.append(f"{p.name}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# ------------------------------------------------------------------------------------- the Label Studio key


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``status`` and a body that repeats the request's Authorization header."""

    status = 500

    def _answer(self):
        auth = self.headers.get("Authorization", "")
        body = json.dumps({"detail": f"rejected {auth}", "validation_errors": {"token": [auth]}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(params=[500, 400])
def hostile_server(request):
    handler = type("H", (_Hostile,), {"status": request.param})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", request.param
    srv.shutdown()
    srv.server_close()


def test_key_never_in_output_logs_files_or_exceptions(hostile_server, tmp_path, monkeypatch, caplog):
    """push and pull against a server that echoes the key in its errors: the key is in no output, log line,
    exception (message, cause, context, traceback text) or file written."""
    import traceback

    from typer.testing import CliRunner

    from attnpatterns.annotate import labelstudio as lsc
    from attnpatterns.annotate import pull as lsp
    from attnpatterns.errors import UserError
    from cli.main import app

    url, status = hostile_server
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", KEY)
    monkeypatch.setattr(lsc.Connection, "sleep", lambda self, s: None, raising=False)
    orig = lsc.connect
    monkeypatch.setattr(lsc, "connect", lambda retries=3, backoff=0.5, timeout=120: orig(retries, 0.0, 10))
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ann"
    for args in (["annotate", "pull", "--project", "attn-raw", "--out", str(out)],):
        r = CliRunner().invoke(app, args)
        assert r.exit_code != 0
        assert KEY not in r.stdout + r.stderr, r.stderr
        assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    # the library's own exception, with its whole chain and traceback
    with pytest.raises(UserError) as e:
        lsp.pull("attn-raw", out, conn=None)
    text = "".join(traceback.format_exception(e.value))
    chain = [e.value, e.value.__cause__, e.value.__context__]
    assert KEY not in text and all(KEY not in repr(x) for x in chain if x is not None)
    assert all(KEY not in rec.getMessage() and KEY not in str(rec.args) for rec in caplog.records)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(KEY.encode() not in p.read_bytes() for p in written)
    assert str(status) in r.stderr or "reach" in r.stderr or "Label Studio" in r.stderr


def test_connection_repr_and_errors_hide_the_key():
    from attnpatterns.annotate import labelstudio as lsc

    conn = lsc.Connection(url="http://127.0.0.1:9", sdk=object(), _key=KEY, retries=0, sleep=lambda s: None)
    assert KEY not in repr(conn) and KEY not in str(conn)
