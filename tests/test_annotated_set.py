"""The project's annotated set (annotations/raw, annotations/normed): complete, consistent, traceable.

These tests read the committed dataset; one recomputes a few pre-trained maps from the GLUE dev
example named in labels.tsv to check that the stored array is the map it claims to be.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ANN = ROOT / "annotations"
KINDS = ("raw", "normed")


@pytest.fixture(scope="module", params=KINDS)
def annotated(request):
    from attnpatterns.annotate.dataset import load

    if not (ANN / request.param / "labels.tsv").exists():
        pytest.fail(f"annotations/{request.param}/labels.tsv is missing")
    return load(ANN, request.param)


def test_size_and_provenance(annotated):
    rows = annotated.rows
    assert len(rows) >= 400
    assert len({r["task"] for r in rows}) >= 4
    assert {r["model_state"] for r in rows} == {"pretrained", "finetuned"}
    assert all(r["annotator"].startswith("agent-annotator-1 (by eye") for r in rows)
    assert all(r["suggested_by"] for r in rows)
    # every one of MiniLM's 6 x 12 heads is represented
    assert {(r["layer"], r["head"]) for r in rows} == {(l, h) for l in range(6) for h in range(12)}
    # all five types occur
    assert {r["label"] for r in rows} == {"vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous"}


def test_every_label_traceable_to_a_sheet(annotated):
    """Each row was labelled on a pass-1 contact sheet whose manifest names it, with a label file."""
    from attnpatterns.patterns import PATTERN_VALUES

    shown = {}
    for man in (ANN / "sheets" / annotated.kind).glob("p1_*.tsv"):
        assert (ANN / "tools" / "labels" / annotated.kind / f"{man.stem}.txt").exists(), man
        with open(man, encoding="utf-8", newline="") as fh:
            shown.update({r["id"]: r["short"] for r in csv.DictReader(fh, delimiter="\t")})
    for r in annotated.rows:
        assert shown.get(r["id"]) == r["sheet"], r["id"]
        assert r["label_pass1"] in PATTERN_VALUES
        if r["label"] != r["label_pass1"]:  # changed only on a review sheet
            assert "checked against annotations/GUIDELINES.md" in r["annotator"], r["id"]


def test_maps_match_rows(annotated):
    for r in annotated.rows:
        m = annotated.maps[r["id"]]
        assert m.dtype == np.float32 and m.ndim == 2 and m.shape[0] == m.shape[1]
        assert m.shape[0] == int(r["n_tokens"]) and 8 <= m.shape[0] <= 64
        assert np.isfinite(m).all() and (m >= 0).all()
        if annotated.kind == "raw":  # softmax rows
            np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-4)


def test_block_only_on_sentence_pairs(annotated):
    from attnpatterns.data import get_task

    for r in annotated.rows:
        if r["label"] == "block":
            assert get_task(r["task"]).text_b is not None, r["id"]


@pytest.mark.slow
def test_stored_maps_are_recomputable(annotated, minilm, glue_dir):
    """Three pre-trained maps per kind, recomputed from the dev example their row names."""
    from attnpatterns.data import get_task, load_task
    from attnpatterns.maps import extract_maps

    model, tok = minilm
    rows = [r for r in annotated.rows if r["model_state"] == "pretrained"]
    picked = [rows[i] for i in np.random.default_rng(0).choice(len(rows), 3, replace=False)]
    for r in picked:
        spec = get_task(r["task"])
        ex = next(e for e in load_task(spec, "dev", glue_dir) if str(e.id) == r["example"])
        [em] = extract_maps(model, tok, [ex.text_a], [ex.text_b] if spec.text_b else None)
        arr = em.raw if annotated.kind == "raw" else em.normed
        np.testing.assert_allclose(arr[r["layer"], r["head"]], annotated.maps[r["id"]], rtol=1e-4, atol=1e-6)


def _second_pass(kind, name="second_pass.tsv"):
    path = ANN / kind / name
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_second_pass_is_blind_and_kappa_reported():
    from sklearn.metrics import cohen_kappa_score

    from attnpatterns.annotate.dataset import load
    from attnpatterns.patterns import PATTERN_VALUES

    report = json.loads((ANN / "agreement.json").read_text())
    total = 0
    for kind in KINDS:
        first = {r["id"]: r["label"] for r in load(ANN, kind, with_maps=False).rows}
        second = _second_pass(kind)
        total += len(second)
        assert len({r["id"] for r in second}) == len(second)
        for r in second:
            assert r["id"] in first and r["label"] in PATTERN_VALUES
            # the anonymous id reveals neither the map nor its first label
            assert r["id"] not in r["anon_id"] and first[r["id"]] not in r["anon_id"]
        k = cohen_kappa_score([first[r["id"]] for r in second], [r["label"] for r in second], labels=list(PATTERN_VALUES))
        assert report["kinds"][kind]["second_pass"]["kappa"] == pytest.approx(k)
        # the earlier blind pass is compared with the labels given before the review
        rows = {r["id"]: r for r in load(ANN, kind, with_maps=False).rows}
        v1 = _second_pass(kind, "second_pass_v1.tsv")
        k1 = cohen_kappa_score([rows[r["id"]]["label_pass1"] for r in v1], [r["label"] for r in v1],
                               labels=list(PATTERN_VALUES))
        assert report["kinds"][kind]["second_pass_v1"]["kappa"] == pytest.approx(k1)
        assert report["kinds"][kind]["n"] == len(first)
    assert total >= 100
