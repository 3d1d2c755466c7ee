"""The ML backend (attn annotate backend), the uncertain-first order, and several annotators in one export.

Without a Label Studio server: the backend's HTTP routes through FastAPI's test client, the order rule, and the
parsing of an export where several users labelled the same maps. The whole loop against a real server is in
tests/test_labelstudio_team.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from attnpatterns.annotate import labelstudio as lsc
from attnpatterns.annotate import ordering
from attnpatterns.annotate import pull as lsp
from attnpatterns.errors import UserError

SHIPPED = Path(__file__).resolve().parents[1] / "models"


# ----------------------------------------------------------------------------- order


def test_uncertain_first_lowest_top_probability_then_quota_per_type():
    ids = [f"m{i}" for i in range(8)]
    labels = ["vertical", "vertical", "vertical", "heterogeneous", "block", "vertical", "diagonal", "heterogeneous"]
    scores = [0.30, 0.90, 0.35, 0.80, 0.95, 0.31, 0.60, 0.50]
    plain = ordering.uncertain_first(ids, labels, scores)
    assert [scores[i] for i in plain] == sorted(scores)
    quota = ordering.uncertain_first(ids, labels, scores, per_type=1)
    # one of each predicted type first (least certain of each, in the five types' order), then the rest by score
    assert [labels[i] for i in quota[:4]] == ["vertical", "diagonal", "block", "heterogeneous"]
    assert quota[:4] == [0, 6, 4, 7]
    assert [scores[i] for i in quota[4:]] == sorted(scores[i] for i in quota[4:])
    assert sorted(quota) == list(range(8))
    # ties broken by map id, so the order is the same on every run
    assert ordering.uncertain_first(["b", "a", "c"], ["vertical"] * 3, [0.5, 0.5, 0.4]) == [2, 1, 0]
    assert ordering.order_indices("random", 5, seed=3) == ordering.order_indices("random", 5, seed=3)
    assert sorted(ordering.order_indices("random", 5, seed=3)) == list(range(5))
    assert ordering.order_indices("sequential", 4) == [0, 1, 2, 3]
    with pytest.raises(UserError, match="--order 'by-hand' is not known"):
        ordering.check_order("by-hand")


# ----------------------------------------------------------------------------- several annotators in one export


def _task(tid, mid, anns, kind="raw", n=5):
    a = np.random.default_rng(tid).random((n, n)).astype(np.float32)
    data = dict(
        map_id=mid,
        kind=kind,
        map=lsc.encode_map(a),
        image="data:image/png;base64,AA",
        task="MRPC",
        example=str(tid),
        layer=0,
        head=1,
        source_model="m",
        n_tokens=n,
    )
    out = []
    for k, (user, label, when) in enumerate(anns):
        out.append(
            {
                "id": tid * 10 + k,
                "completed_by": user,
                "updated_at": when,
                "was_cancelled": False,
                "result": [
                    {"from_name": "pattern", "to_name": "map", "type": "choices", "value": {"choices": [label]}}
                ],
            }
        )
    return {"id": tid, "data": data, "annotations": out}


def test_export_keeps_every_annotator_and_the_consensus_has_votes():
    users = {1: "ann@lab.org", 2: "bob@lab.org", 3: "cy@lab.org"}
    tasks = [
        _task(
            1,
            "raw-pre-MRPC-1-L0H1",
            [(1, "vertical", "2026-01-01"), (2, "vertical", "2026-01-02"), (3, "block", "2026-01-03")],
        ),
        # annotator 1 changed their mind: their newest label counts, once
        _task(
            2,
            "raw-pre-MRPC-2-L0H1",
            [(1, "diagonal", "2026-01-01"), (1, "block", "2026-01-05"), (2, "diagonal", "2026-01-02")],
        ),
        _task(3, "raw-pre-MRPC-3-L0H1", []),
    ]
    ex = lsp.parse_export(tasks, users)
    assert ex.skipped == 1 and ex.annotators == ["ann@lab.org", "bob@lab.org", "cy@lab.org"]
    by = ex.by_annotator("raw")
    assert by["ann@lab.org"] == {"raw-pre-MRPC-1-L0H1": "vertical", "raw-pre-MRPC-2-L0H1": "block"}
    assert by["cy@lab.org"] == {"raw-pre-MRPC-1-L0H1": "block"}
    rows, maps = lsp.consensus_rows(ex, "raw", "team")
    r1, r2 = rows["raw-pre-MRPC-1-L0H1"], rows["raw-pre-MRPC-2-L0H1"]
    assert (r1["label"], r1["status"], r1["votes"], r1["n_votes"], r1["share"]) == (
        "vertical",
        "majority",
        "vertical=2 block=1",
        3,
        "0.667",
    )
    # a tie (block vs diagonal) goes by GUIDELINES rule 10: block before diagonal
    assert (r2["label"], r2["status"]) == ("block", "tie-rule")
    assert "ann@lab.org" in r1["annotator"] and "team" in r1["annotator"]
    assert maps["raw-pre-MRPC-1-L0H1"].shape == (5, 5)
    assert lsp.annotator_name("ann@lab.org") == "ann_at_lab.org"


# ----------------------------------------------------------------------------- the backend's HTTP routes


@pytest.fixture
def models_dir(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    for p in SHIPPED.glob("pattern-cnn-*.*"):
        if "retrained" not in p.name:
            shutil.copy(p, d)
    return d


def _client(models_dir, **kw):
    from fastapi.testclient import TestClient

    from attnpatterns.annotate.backend import PatternBackend, make_app

    be = PatternBackend(models_dir, **{"data": None, "recipe": "features", **kw})
    return be, TestClient(make_app(be))


def _maps(n_maps=12, n=10):
    """Maps with an obvious pattern each: a [CLS] column (even) or a previous-token line (odd)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n_maps):
        a = rng.random((n, n)).astype(np.float32) * 0.2
        if i % 2 == 0:
            a[:, 0] += 3
        else:
            a[np.arange(1, n), np.arange(n - 1)] += 3
        out.append(a / a.sum(1, keepdims=True))
    return out


def _served_tasks(maps, kind="raw"):
    return [
        {
            "id": i + 1,
            "data": {
                "map_id": f"{kind}-pre-T-{i}-L0H0",
                "kind": kind,
                "map": lsc.encode_map(m),
                "n_tokens": m.shape[0],
            },
        }
        for i, m in enumerate(maps)
    ]


def test_backend_predicts_with_scores_like_the_classifier(models_dir):
    from attnpatterns.classifier.predict import classify_maps

    be, client = _client(models_dir)
    h = client.get("/health").json()
    assert h["status"] == "UP" and h["model_version"].startswith("attn-") and set(h["models"]) == {"raw", "normed"}
    assert client.post("/setup", json={"project": "1.1", "schema": lsc.LABEL_CONFIG}).json() == {
        "model_version": h["model_version"]
    }
    maps = _maps(6)
    r = client.post("/predict", json={"tasks": _served_tasks(maps)})
    assert r.status_code == 200
    res = r.json()["results"]
    labels, probs = classify_maps(maps, "raw", models_dir / "pattern-cnn-raw.safetensors")
    assert [x["result"][0]["value"]["choices"][0] for x in res] == labels
    np.testing.assert_allclose([x["score"] for x in res], probs.max(1), atol=1e-4)
    assert {x["model_version"] for x in res} == {h["model_version"]}
    assert res[0]["result"][0]["from_name"] == "pattern" and res[0]["result"][0]["to_name"] == "map"


def test_backend_bad_input_one_line_each(models_dir):
    _, client = _client(models_dir)
    no_map = [{"id": 7, "data": {"map_id": "raw-pre-T-1-L0H0", "kind": "raw"}}]
    r = client.post("/predict", json={"tasks": no_map})
    assert r.status_code == 400 and "task 7: no map in its data" in r.json()["error"]
    other = lsc.LABEL_CONFIG.replace('<Choice value="block" hotkey="4"/>', "")
    for path, body in (("/setup", {"project": "3.1", "schema": other}), ("/validate", {"config": other})):
        r = client.post(path, json=body)
        assert r.status_code == 400 and "different labeling config" in r.json()["error"]
        assert "\n" not in r.json()["error"]
    r = client.post("/train", json={"annotations": []})
    assert r.status_code == 400 and "no annotated tasks" in r.json()["error"]
    # too few labels to fit: refused at once, nothing written
    before = sorted(p.name for p in models_dir.iterdir())
    few = _served_tasks(_maps(3))
    for t in few:
        t["annotations"] = [
            {
                "id": 1,
                "completed_by": 1,
                "result": [{"from_name": "pattern", "type": "choices", "value": {"choices": ["block"]}}],
            }
        ]
    r = client.post("/train", json={"annotations": few, "project": "3.1"})
    assert r.status_code == 400 and "annotate at least 10" in r.json()["error"]
    assert sorted(p.name for p in models_dir.iterdir()) == before
    r = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3}})
    assert r.status_code == 201 and r.json()["status"] == "ignored"


def test_retrain_writes_beside_the_shipped_model_and_changes_the_suggestions(models_dir):
    shipped = {p.name: p.read_bytes() for p in models_dir.iterdir()}
    be, client = _client(models_dir)
    v0 = be.model_version()
    maps = _maps(12)
    tasks = _served_tasks(maps)
    before = [
        x["result"][0]["value"]["choices"][0] for x in client.post("/predict", json={"tasks": tasks}).json()["results"]
    ]
    # two annotators call the [CLS]-column maps block and the line maps vertical+diagonal (not what the model says)
    want = ["block" if i % 2 == 0 else "vertical+diagonal" for i in range(len(maps))]
    assert before != want
    for t, lab in zip(tasks, want):
        t["annotations"] = [
            {
                "id": k,
                "completed_by": k,
                "updated_at": "2026-01-01",
                "result": [{"from_name": "pattern", "type": "choices", "value": {"choices": [lab]}}],
            }
            for k in (1, 2)
        ]
    r = client.post(
        "/train", json={"annotations": tasks, "project": "5.1", "label_config": lsc.LABEL_CONFIG, "wait": True}
    )
    assert r.status_code == 201, r.text
    job = client.get("/health").json()["training"]
    assert job["status"] == "done", job
    new = Path(job["files"]["raw"])
    assert new.parent == models_dir and new.name.startswith("pattern-cnn-raw-retrained-") and new.is_file()
    assert new.with_suffix(".json").is_file()
    for name, data in shipped.items():  # the shipped files are untouched
        assert (models_dir / name).read_bytes() == data
    v1 = be.model_version()
    assert v1 != v0 and client.get("/versions").json()["versions"] == [v0, v1]
    after = client.post("/predict", json={"tasks": [{"id": t["id"], "data": t["data"]} for t in tasks]}).json()[
        "results"
    ]
    labels = [x["result"][0]["value"]["choices"][0] for x in after]
    assert labels != before and np.mean([a == b for a, b in zip(labels, want)]) >= 0.75
    assert {x["model_version"] for x in after} == {v1}
    # a restart with --resume serves the retrained model; the default starts from the shipped one again
    from attnpatterns.annotate.backend import PatternBackend

    assert PatternBackend(models_dir, data=None, resume=True).active["raw"] == new
    assert PatternBackend(models_dir, data=None).active["raw"] == models_dir / "pattern-cnn-raw.safetensors"


def test_push_to_an_unreachable_backend_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from attnpatterns.annotate.server import free_port
    from cli.main import app

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "x" * 20)
    url = f"http://127.0.0.1:{free_port()}"
    r = CliRunner().invoke(app, ["annotate", "push", "--kind", "raw", "--task", "MRPC", "--n", "3", "--backend", url])
    assert r.exit_code == 2 and f"cannot reach the ML backend at {url}" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
