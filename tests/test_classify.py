"""`classify_heads` / `attn classify`: per-head counts, pooled distribution, head sets, bad heads.

Uses a tiny random BERT (2 layers x 4 heads) saved to a folder, MRPC dev examples, and the shipped pattern classifiers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attnpatterns.classifier.labels import LABELS
from cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from attnpatterns.models import load_tokenizer, tiny_bert

    d = tmp_path_factory.mktemp("tiny")
    tiny_bert(seed=0).save_pretrained(d)
    load_tokenizer(None).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_loaded(tiny_dir):
    from attnpatterns.models import load_model

    return load_model(str(tiny_dir))


def test_pooled_counts_are_the_sum_of_per_head_counts(tiny_loaded, glue_dir):
    from attnpatterns.classifier import classify_heads

    res = classify_heads(
        "MRPC", None, n=6, kind="both", data_dir=glue_dir, batch_size=4, model_and_tokenizer=tiny_loaded
    )
    assert res.kinds == ["raw", "normed"] and len(res.heads) == 8 and len(res.example_ids) == 6
    for k in res.kinds:
        ph = res.per_head[res.per_head.kind == k]
        assert len(ph) == 8
        assert (ph[list(LABELS)].sum(axis=1) == 6).all() and (ph.n == 6).all()
        pooled = res.pooled[res.pooled.kind == k].set_index("label")
        for lab in LABELS:
            assert pooled.loc[lab, "count"] == ph[lab].sum()
        assert pooled["fraction"].sum() == pytest.approx(1.0)
        # each share comes with its 95% bootstrap interval over the examples
        assert ((pooled.ci_low <= pooled.fraction + 1e-12) & (pooled.fraction <= pooled.ci_high + 1e-12)).all()
        # the long table holds one row per (example, head) map, agreeing with the counts
        pr = res.predictions[res.predictions.kind == k]
        assert len(pr) == 6 * 8
        assert pr.label.value_counts().reindex(LABELS, fill_value=0).tolist() == pooled["count"].tolist()


def test_batched_equals_unbatched_and_matches_classify_maps(tiny_loaded, glue_dir):
    from attnpatterns.classifier import classify_heads, classify_maps
    from attnpatterns.data import load_task
    from attnpatterns.maps import extract_maps

    a = classify_heads(
        "MRPC", [[1, 2], [0, 0]], n=5, kind="raw", data_dir=glue_dir, batch_size=5, model_and_tokenizer=tiny_loaded
    )
    b = classify_heads(
        "MRPC", [[1, 2], [0, 0]], n=5, kind="raw", data_dir=glue_dir, batch_size=1, model_and_tokenizer=tiny_loaded
    )
    assert a.heads == [(0, 0), (1, 2)]
    assert a.predictions.label.tolist() == b.predictions.label.tolist()
    assert np.allclose(a.predictions.probability, b.predictions.probability, atol=1e-4)
    # the same maps cut by the foundation's extract_maps, classified one by one, give the same labels
    model, tok = tiny_loaded
    ex = [e for e in load_task("MRPC", "dev", glue_dir) if e.id in set(a.example_ids)]
    ex.sort(key=lambda e: a.example_ids.index(e.id))
    maps = extract_maps(model, tok, [e.text_a for e in ex], [e.text_b for e in ex], normed=False)
    singles = [m.raw[l, h] for m in maps for (l, h) in a.heads]
    labels, _ = classify_maps(singles, "raw")
    assert labels == a.predictions.label.tolist()


def test_examples_below_min_tokens_are_skipped(tiny_loaded, glue_dir):
    from attnpatterns.classifier import classify_heads, get_classifier

    res = classify_heads("CoLA", [[0, 1]], n=20, kind="raw", data_dir=glue_dir, model_and_tokenizer=tiny_loaded)
    _, tok = tiny_loaded
    mt = get_classifier("raw").min_tokens
    from attnpatterns.data import load_task

    by_id = {e.id: e for e in load_task("CoLA", "dev", glue_dir)}
    assert all(len(tok(by_id[i].text_a)["input_ids"]) >= mt for i in res.example_ids)
    assert res.meta["min_tokens"] == mt


def test_cli_head_set_and_plain_list(tiny_dir, glue_dir, tmp_path):
    hs = {
        "model": "tiny",
        "task": "MRPC",
        "seeds": [1, 2],
        "num_layers": 2,
        "num_heads": 4,
        "heads": [[0, 3], [1, 1]],
        "mlps": [0],
    }
    (tmp_path / "super.json").write_text(json.dumps(hs))
    (tmp_path / "plain.json").write_text(json.dumps([[1, 1], [0, 3]]))
    outs = []
    for name in ("super", "plain"):
        out = tmp_path / f"out-{name}"
        r = runner.invoke(
            app,
            [
                "classify",
                "--heads",
                str(tmp_path / f"{name}.json"),
                "--task",
                "MRPC",
                "--model",
                str(tiny_dir),
                "--n",
                "4",
                "--kind",
                "raw",
                "--out",
                str(out),
                "--data-dir",
                str(glue_dir),
            ],
        )
        assert r.exit_code == 0, r.output
        assert "vertical" in r.output and "raw share" in r.output
        outs.append(out)
        ph = pd.read_csv(out / "per_head.csv")
        assert list(zip(ph["layer"], ph["head"])) == [(0, 3), (1, 1)]
        pooled = pd.read_csv(out / "pooled.csv")
        assert pooled["count"].sum() == 8
        js = json.loads((out / "classify.json").read_text())
        assert js["heads"] == [[0, 3], [1, 1]] and js["n_examples"] == 4
    assert (outs[0] / "pooled.csv").read_text() == (outs[1] / "pooled.csv").read_text()


def test_cli_rejects_heads_outside_the_model(tiny_dir, glue_dir, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([[0, 1], [5, 0]]))
    r = runner.invoke(
        app,
        [
            "classify",
            "--heads",
            str(tmp_path / "bad.json"),
            "--task",
            "MRPC",
            "--model",
            str(tiny_dir),
            "--n",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--data-dir",
            str(glue_dir),
        ],
    )
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "out of range" in lines[0] and "[5, 0]" in lines[0]
    assert not (tmp_path / "o").exists()
    big = {"num_layers": 12, "num_heads": 12, "heads": [[0, 0]]}
    (tmp_path / "big.json").write_text(json.dumps(big))
    r = runner.invoke(
        app,
        [
            "classify",
            "--heads",
            str(tmp_path / "big.json"),
            "--task",
            "MRPC",
            "--model",
            str(tiny_dir),
            "--n",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--data-dir",
            str(glue_dir),
        ],
    )
    assert r.exit_code == 2 and "12 x 12" in r.output, r.output
    r = runner.invoke(
        app, ["classify", "--task", "MRPC", "--model", str(tiny_dir), "--kind", "sideways", "--data-dir", str(glue_dir)]
    )
    assert r.exit_code != 0
