"""GLUE registry, loaders (glue_data folder, own files), metrics."""

from __future__ import annotations

import pytest

from attnpatterns.data import TASKS, compute_metrics, get_task, load_file, load_task, main_metric
from attnpatterns.errors import UserError

# rows per split as published (glue/MANIFEST.tsv)
EXPECTED = {
    ("CoLA", "train"): 8551,
    ("CoLA", "dev"): 1043,
    ("SST-2", "train"): 67349,
    ("SST-2", "dev"): 872,
    ("MRPC", "train"): 3668,
    ("MRPC", "dev"): 408,
    ("RTE", "train"): 2490,
    ("RTE", "dev"): 277,
    ("STS-B", "train"): 5749,
    ("STS-B", "dev"): 1500,
    ("QNLI", "dev"): 5463,
    ("WNLI", "dev"): 71,
}


def test_registry_has_nine_tasks():
    assert len(TASKS) == 9
    assert get_task("mnli").dev_splits == ("dev_matched", "dev_mismatched")
    assert get_task("sts-b").is_regression and get_task("STSB").name == "STS-B"
    with pytest.raises(UserError, match="unknown task"):
        get_task("NOPE")


@pytest.mark.parametrize("task,split", sorted(EXPECTED))
def test_every_glue_loader(glue_dir, task, split):
    if not (glue_dir / task / f"{split}.tsv").is_file():
        pytest.skip(f"no {task}/{split}.tsv")
    ex = load_task(task, split, glue_dir)
    assert len(ex) == EXPECTED[(task, split)]
    spec = get_task(task)
    assert all(e.text_a for e in ex)
    assert all((e.text_b is not None) == (spec.text_b is not None) for e in ex)
    labels = {e.label for e in ex}
    if spec.is_regression:
        assert min(labels) >= 0 and max(labels) <= 5
    else:
        assert labels == set(range(spec.num_labels))


def test_env_var_and_missing_files(glue_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_GLUE_DIR", str(glue_dir))
    assert len(load_task("RTE", "dev")) == 277
    (tmp_path / "RTE").mkdir()
    with pytest.raises(UserError, match="no RTE dev data"):
        load_task("RTE", "dev", tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_task("RTE", "dev", tmp_path / "nowhere")


def test_subsample_is_seeded(glue_dir):
    a = load_task("MRPC", "train", glue_dir, max_examples=50, seed=3)
    b = load_task("MRPC", "train", glue_dir, max_examples=50, seed=3)
    c = load_task("MRPC", "train", glue_dir, max_examples=50, seed=4)
    assert [e.id for e in a] == [e.id for e in b] != [e.id for e in c]
    assert len(a) == 50


@pytest.mark.parametrize(
    "ext,body",
    [
        ("csv", "text,other,label\nhello there,x,pos\nbad day,y,neg\n"),
        ("tsv", "text\tother\tlabel\nhello there\tx\tpos\nbad day\ty\tneg\n"),
        (
            "jsonl",
            '{"text": "hello there", "other": "x", "label": "pos"}\n{"text": "bad day", "other": "y", "label": '
            '"neg"}\n',
        ),
    ],
)
def test_own_files(tmp_path, ext, body):
    p = tmp_path / f"data.{ext}"
    p.write_text(body)
    ex, names = load_file(p, "text", "label", pair_col="other")
    assert names == ["neg", "pos"]
    assert [(e.text_a, e.text_b, e.label) for e in ex] == [("hello there", "x", 1), ("bad day", "y", 0)]
    with pytest.raises(UserError, match="no column 'nope'"):
        load_file(p, "nope", "label")


def test_bad_own_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_file(tmp_path / "x.csv", "text", "label")
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": 1, "label": 0}\n{oops\n')
    with pytest.raises(UserError, match="malformed JSON"):
        load_file(bad, "text", "label")
    latin = tmp_path / "l.csv"
    latin.write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(UserError, match="UTF-8"):
        load_file(latin, "text", "label")


def test_metrics():
    m = compute_metrics("MRPC", [1, 0, 1, 1], [1, 0, 0, 1])
    assert m["acc"] == 0.75 and abs(m["f1"] - 0.8) < 1e-9 and main_metric("MRPC", m) == 0.75
    assert compute_metrics("CoLA", [1, 0, 1, 0], [1, 0, 1, 0])["mcc"] == 1.0
    s = compute_metrics("STS-B", [0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.5])
    assert s["pearson"] > 0.99 and s["spearmanr"] == 1.0 and main_metric("STS-B", s) == s["corr"]


def test_a_constant_sts_b_prediction_scores_zero_and_the_majority_floor_is_a_number(glue_dir):
    """The mean guess of STS-B (the majority floor of a regression task) is a constant: correlation 0, not NaN,
    even where np.std of the identical floats comes out at 1e-16 (a NaN floor fails every pruning step)."""
    import math
    import warnings

    import numpy as np

    from attnpatterns.prune.structured import floor_score, meets

    labels = list(np.linspace(0, 5, 1500))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConstantInputWarning from scipy
        m = compute_metrics("STS-B", [2.7] * 1500, labels)
    assert m == {"pearson": 0.0, "spearmanr": 0.0, "corr": 0.0}
    floor = floor_score("majority", get_task("STS-B"), labels, str(glue_dir))
    assert floor == 0.0 and not math.isnan(floor)
    assert meets(0.86, 0.9 * 0.86, floor)
