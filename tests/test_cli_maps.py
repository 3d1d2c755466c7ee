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


def test_what_maps_writes_classifier_predict_reads(tiny_model_dir, tmp_path, glue_dir):
    """attn maps records the model (and for a task, the task, split and example ids); attn classifier predict
    classifies every head's map of its archives."""
    one, task = tmp_path / "one.npz", tmp_path / "task.npz"
    text = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat."
    r = _run(["maps", "--text", text, "--model", str(tiny_model_dir), "--out", str(one)])
    assert r.exit_code == 0, r.output
    r = _run(
        [
            "maps",
            "--task",
            "MRPC",
            "--n",
            "3",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(glue_dir),
            "--out",
            str(task),
        ]
    )
    assert r.exit_code == 0, r.output
    with np.load(one) as z:
        assert str(z["model"]) == str(tiny_model_dir)
    with np.load(task) as z:
        assert (str(z["task"]), str(z["split"]), str(z["model"])) == ("MRPC", "dev", str(tiny_model_dir))
        ids = [str(x) for x in z["ids"]]
    r = _run(["classifier", "predict", "--kind", "raw", str(one)])
    assert r.exit_code == 0, r.output
    lines = [ln.split("\t") for ln in r.output.strip().splitlines()]
    assert [ln[0] for ln in lines] == [f"one:L{layer}H{head}" for layer in range(2) for head in range(4)]
    assert all(ln[1] in ("vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous") for ln in lines)
    r = _run(["classifier", "predict", "--kind", "normed", str(task)])
    assert r.exit_code == 0, r.output
    names = [ln.split("\t")[0] for ln in r.output.strip().splitlines()]
    assert names and {n.split(":")[1] for n in names} <= set(ids) and names[0].endswith(":L0H0")


def test_classify_names_the_model_a_head_set_is_classified_in(tmp_path, capsys):
    import json

    from cli.classify import _say_which_model

    hs = tmp_path / "super.json"
    hs.write_text(
        json.dumps(
            {
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                "task": "MRPC",
                "seeds": [42, 86],
                "num_layers": 6,
                "num_heads": 12,
                "heads": [[0, 1]],
            }
        )
    )
    _say_which_model(hs, None)
    err = capsys.readouterr().err
    assert "fine-tuned MRPC runs (seeds 42, 86)" in err and "--model RUN/MRPC/seed_42/finetuned" in err
    _say_which_model(hs, "sentence-transformers/all-MiniLM-L6-v2")  # the model it names: nothing to say
    assert capsys.readouterr().err == ""
