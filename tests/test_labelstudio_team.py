"""A group annotating in a REAL Label Studio with the ML backend: the whole loop.

push the least certain maps first (backend predictions with scores) -> two users, each with their own API token,
label the same tasks -> agreement between them -> pull every annotator's labels and the majority consensus ->
Label Studio's "Start training" retrains the backend on the pulled labels -> the suggestions change.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attnpatterns.annotate import labelstudio as lsc

SHIPPED = Path(__file__).resolve().parents[1] / "models"


def _choice(label):
    return [{"from_name": "pattern", "to_name": "map", "type": "choices", "value": {"choices": [label]}}]


def _sign_up(link: str, email: str, password: str) -> str:
    """A new user through the organisation's invite link (as a person would in the browser); returns their API token."""
    import requests

    s = requests.Session()
    page = s.get(link, timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    r = s.post(
        link,
        data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
        headers={"Referer": link},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, f"sign-up failed (HTTP {r.status_code})"
    base = link.split("/user/")[0]
    return s.get(base + "/api/current-user/token", timeout=30).json()["token"]


@pytest.fixture
def team(labelstudio, monkeypatch, tmp_path):
    """(server, admin credentials, backend, its URL, its models folder): a backend beside the server."""
    from attnpatterns.annotate.backend import PatternBackend, make_app, serve_in_thread

    server, creds = labelstudio
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", creds.token)
    models = tmp_path / "models"
    models.mkdir()
    for p in SHIPPED.glob("pattern-cnn-*.*"):
        if "retrained" not in p.name:
            shutil.copy(p, models)
    be = PatternBackend(models, data=None, recipe="features")
    running = serve_in_thread(make_app(be))
    yield server, creds, be, running.url, models
    running.stop()


@pytest.mark.labelstudio
def test_group_loop_uncertain_push_two_annotators_agreement_consensus_retrain(team, tiny_model_dir, glue_dir, tmp_path):
    from sklearn.metrics import cohen_kappa_score

    from attnpatterns.annotate import dataset as ds
    from attnpatterns.annotate.ordering import uncertain_first
    from cli.main import app

    server, creds, be, url, models = team
    runner = CliRunner()
    v0 = be.model_version()

    # 1. push: the 10 least certain of 20 sampled maps, one of each predicted type first; two annotators per task
    r = runner.invoke(
        app,
        [
            "annotate",
            "push",
            "--kind",
            "raw",
            "--task",
            "MRPC",
            "--n",
            "10",
            "--pool",
            "2",
            "--model",
            str(tiny_model_dir),
            "--project",
            "team-raw",
            "--data-dir",
            str(glue_dir),
            "--min-tokens",
            "4",
            "--order",
            "uncertain",
            "--per-type",
            "1",
            "--backend",
            url,
            "--annotators-per-map",
            "2",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (
        "10 tasks imported, 0 already there, in uncertain order" in r.output
        and v0 in r.output
        and "first in the queue" in r.output
    )
    conn = lsc.connect()
    proj = lsc.find_project(conn, "team-raw")
    assert proj.sampling == "Sequential sampling" and proj.maximum_annotations == 2
    tasks = sorted(conn.sdk.tasks.list(project=proj.id, fields="all"), key=lambda t: t.id)
    assert len(tasks) == 10
    preds = [[p for p in t.predictions if p.model_version == v0] for t in tasks]
    assert all(len(p) == 1 for p in preds), "each task carries the backend's prediction"
    labels0 = [p[0].result[0]["value"]["choices"][0] for p in preds]
    scores0 = [p[0].score for p in preds]
    # Label Studio hands them out in import order: the backend's least certain first (rule of ordering.py)
    assert uncertain_first([t.data["map_id"] for t in tasks], labels0, scores0, per_type=1) == list(range(10))
    [ml] = list(conn.sdk.ml.list(project=proj.id))
    assert ml.url.rstrip("/") == url

    # 2. a second annotator joins through the invite link; both label every task, with their own tokens
    r = runner.invoke(app, ["annotate", "invite"])
    assert r.exit_code == 0 and "/user/signup/?token=" in r.output, r.output
    bob_token = _sign_up(r.output.strip(), "bob@lab.example", "bob-pass-2026x")
    from label_studio_sdk import LabelStudio

    bob = LabelStudio(base_url=server.url, api_key=bob_token)
    assert bob.users.whoami().email == "bob@lab.example"
    want = ["block" if i % 2 == 0 else "vertical+diagonal" for i in range(10)]
    bobs = ["heterogeneous"] + want[1:]  # Bob disagrees on the first task
    for t, a, b in zip(tasks, want, bobs):
        conn.sdk.annotations.create(id=t.id, result=_choice(a))
        bob.annotations.create(id=t.id, result=_choice(b))

    # 3. their agreement
    rep_path = tmp_path / "agreement.json"
    r = runner.invoke(app, ["annotate", "agreement", "--project", "team-raw", "--out", str(rep_path)])
    assert r.exit_code == 0, r.output
    import json

    rep = json.loads(rep_path.read_text())["raw"]
    [pair] = rep["pairwise"]
    assert {pair["a"], pair["b"]} == {creds.username, "bob@lab.example"} and pair["n"] == 10
    assert pair["kappa"] == pytest.approx(
        cohen_kappa_score(want, bobs, labels=["vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous"])
    )
    assert f"Cohen's kappa {pair['kappa']:.3f}" in r.output and rep["fleiss"]["raters"] == 2

    # 4. pull: each annotator's file and the majority consensus with votes
    out = tmp_path / "annotations"
    r = runner.invoke(app, ["annotate", "pull", "--project", "team-raw", "--out", str(out), "--consensus", "majority"])
    assert r.exit_code == 0, r.output
    names = sorted(p.stem for p in (out / "raw" / "annotators").glob("*.tsv"))
    assert names == ["bob_at_lab.example", "tester_at_localhost.localdomain"]
    assert ds.read_annotators(out, "raw")["bob_at_lab.example"] == {t.data["map_id"]: b for t, b in zip(tasks, bobs)}
    s = ds.load(out, "raw")
    got = {row["id"]: row for row in s.rows}
    first = got[tasks[0].data["map_id"]]
    assert (first["label"], first["status"], first["votes"]) == ("heterogeneous", "tie-rule", "heterogeneous=1 block=1")
    assert all(
        got[t.data["map_id"]]["label"] == w and got[t.data["map_id"]]["status"] == "unanimous"
        for t, w in zip(tasks[1:], want[1:])
    )

    # 5. "Start training" in Label Studio: the backend exports the project and refits; the suggestions change
    conn.sdk.ml.train(id=ml.id)
    deadline = time.monotonic() + 300
    while (be.jobs[-1].status if be.jobs else "none") in ("none", "training") and time.monotonic() < deadline:
        time.sleep(0.5)
    job = be.jobs[-1]
    assert job.status == "done", job
    v1 = be.model_version()
    assert v1 != v0 and Path(job.files["raw"]).parent == models and (models / "pattern-cnn-raw.safetensors").is_file()
    lsc.refresh_predictions(conn, proj.id)
    tasks = sorted(conn.sdk.tasks.list(project=proj.id, fields="all"), key=lambda t: t.id)
    labels1 = [[p for p in t.predictions if p.model_version == v1][0].result[0]["value"]["choices"][0] for t in tasks]
    consensus = [got[t.data["map_id"]]["label"] for t in tasks]
    assert labels1 != labels0
    assert np.mean([a == b for a, b in zip(labels1, consensus)]) > np.mean([a == b for a, b in zip(labels0, consensus)])


@pytest.mark.labelstudio
def test_group_bad_input_one_line_each_nothing_written(team, tmp_path):
    from attnpatterns.annotate.sample import MapItem
    from cli.main import app

    server, creds, be, url, models = team
    runner = CliRunner()
    rng = np.random.default_rng(1)
    items = []
    for i in range(4):
        a = rng.random((8, 8)).astype(np.float32)
        items.append(
            MapItem(
                f"raw-pre-T-{i}-L0H0",
                "raw",
                a / a.sum(1, keepdims=True),
                ["[CLS]"] + [f"w{j}" for j in range(6)] + ["[SEP]"],
                "hand-made",
                "pre",
                "T",
                str(i),
                0,
                0,
            )
        )
    res = lsc.push(items, "team-disjoint", backend=url)
    conn = lsc.connect()
    tasks = sorted(conn.sdk.tasks.list(project=res.project_id, fields="all"), key=lambda t: t.id)
    out = tmp_path / "ann"

    # one annotator only
    conn.sdk.annotations.create(id=tasks[0].id, result=_choice("block"))
    r = runner.invoke(app, ["annotate", "agreement", "--project", "team-disjoint"])
    assert r.exit_code == 2 and "labels from 1 annotator" in r.output and len(r.output.strip().splitlines()) == 1, (
        r.output
    )

    # two annotators on disjoint tasks
    link = lsc.invite_link()
    from label_studio_sdk import LabelStudio

    ann = LabelStudio(base_url=server.url, api_key=_sign_up(link, "ann@lab.example", "ann-pass-2026x"))
    ann.annotations.create(id=tasks[2].id, result=_choice("vertical"))
    r = runner.invoke(app, ["annotate", "agreement", "--project", "team-disjoint"])
    assert r.exit_code == 2 and "no raw task was labelled by two annotators" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1

    # a project whose label set differs
    conn.sdk.projects.create(
        title="team-other",
        label_config="<View><Image name='map' value='$image'/>"
        "<Choices name='pattern' toName='map'><Choice value='stripes'/></Choices></View>",
    )
    for args in (
        ["annotate", "agreement", "--project", "team-other"],
        ["annotate", "pull", "--project", "team-other", "--out", str(out), "--consensus", "majority"],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and "different labeling config" in r.output, r.output

    # an unknown consensus rule, and the backend gone
    r = runner.invoke(app, ["annotate", "pull", "--project", "team-disjoint", "--out", str(out), "--consensus", "vote"])
    assert r.exit_code == 2 and "--consensus 'vote' is not known" in r.output, r.output
    assert not out.exists()
