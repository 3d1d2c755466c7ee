"""`attn maps` end to end, and its bad input: one line on stderr, exit non-zero, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from attnpatterns.models import load_tokenizer, tiny_bert

    d = tmp_path_factory.mktemp("tiny")
    tiny_bert(seed=0).save_pretrained(d)
    load_tokenizer(None).save_pretrained(d)
    return d


def _run(args):
    return runner.invoke(app, args)


def test_maps_one_text(tiny_model_dir, tmp_path):
    out = tmp_path / "one.npz"
    r = _run(
        [
            "maps",
            "--text",
            "The cat sat.",
            "--text-pair",
            "It was tired.",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
        ]
    )
    assert r.exit_code == 0, r.output
    z = np.load(out)
    assert z["raw"].dtype == np.float32 and z["normed"].dtype == np.float32
    assert z["raw"].shape == z["normed"].shape == (2, 4, len(z["tokens"]), len(z["tokens"]))
    assert list(z["tokens"][:2]) == ["[CLS]", "the"]


def test_maps_task(tiny_model_dir, tmp_path, glue_dir):
    from attnpatterns.maps_io import load_task_maps

    out = tmp_path / "mrpc.npz"
    r = _run(
        [
            "maps",
            "--task",
            "MRPC",
            "--n",
            "5",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(glue_dir),
            "--out",
            str(out),
        ]
    )
    assert r.exit_code == 0, r.output
    maps = load_task_maps(out)
    assert len(maps) == 5 and maps[0]["id"]
    for m in maps:
        n = len(m["tokens"])
        assert m["raw"].shape == (2, 4, n, n)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--text", "x", "--model", "/no/such/folder"], "does not exist"),
        (["--text", "x", "--model", "no-such-org/no-such-model-xyz"], "cannot load model"),
        (["--task", "NOPE"], "unknown task"),
        (["--task", "MRPC", "--data-dir", "EMPTY"], "no MRPC dev data"),
        (["--text", "   "], "empty"),
        (["--text", "word " * 300], "past the limit"),
        (["--text", "x", "--task", "MRPC"], "exactly one"),
        (["--text", "x", "--device", "tpu"], "unknown device"),
    ],
)
def test_maps_bad_input(tiny_model_dir, tmp_path, monkeypatch, args, needle):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "EMPTY").mkdir()
    args = [str(tmp_path / "EMPTY") if a == "EMPTY" else a for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_model_dir)]
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous")
    r = runner.invoke(app, ["maps", *args, "--out", str(out)])
    assert r.exit_code != 0
    err = r.stderr if hasattr(r, "stderr") else r.output
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
    assert "Traceback" not in r.output
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EMPTY", "out.npz"]
