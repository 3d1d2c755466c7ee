"""A Label Studio ML backend that serves the pattern classifier (``attn annotate backend``).

It speaks Label Studio's ML-backend HTTP protocol on FastAPI (the ``label-studio-ml`` package on PyPI, 1.0.9,
pins Flask 1.1.2, Werkzeug 2.0.2 and Jinja2 3.0.3, which do not run beside this project's dependencies):

- ``GET /health`` (and ``/``): ``{"status": "UP", "model_version", "models", "training"}``;
- ``POST /setup``: checks the project's labeling config, answers ``{"model_version"}``;
- ``POST /predict``: ``{"tasks": [...]}`` -> ``{"results": [{"result", "score", "model_version"}, ...]}``, one
  prediction per task, in order; the score is the top-class probability;
- ``POST /train`` (Label Studio's legacy call, the annotated tasks in the body) and ``POST /webhook`` with
  ``action`` ``START_TRAINING`` (Label Studio 1.2x's "Start training": the backend exports the project's
  annotations itself, with ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` from its environment); other
  webhook actions are acknowledged and ignored;
- ``GET /versions``, ``POST /validate``.

Retraining fits the backend's recipe on the project's labels (per map, the consensus of its annotators) and,
unless turned off, the annotated set it was started with (the project's label wins on a map both hold). It runs
in a background thread; when it ends, the new model is written **beside** the shipped one as
``pattern-cnn-<kind>-retrained-<UTC time>.safetensors`` (with its card) and serves from then on, under a new
model version, so Label Studio asks for new predictions. The shipped files are never written.

It listens on 127.0.0.1 unless told otherwise and has no authentication of its own: keep it on a trusted host.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")

HOST = "127.0.0.1"
DEFAULT_PORT = 9090
RETRAINED = "retrained"


@dataclass
class Job:
    id: int
    project: str
    status: str = "training"  # training | done | failed
    kinds: list = field(default_factory=list)
    n_maps: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    error: str = ""
    started: str = ""
    finished: str = ""

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()} | {
            "files": {k: str(v) for k, v in self.files.items()}
        }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


class PatternBackend:
    """The classifier state behind the HTTP routes: the model serving each kind, and retraining."""

    def __init__(
        self,
        models_dir: str | os.PathLike | None = None,
        data: str | os.PathLike | None = "annotations",
        recipe: str | None = None,  # None: the shipped recipe (classifier.recipes.SHIPPED)
        seed: int = 0,
        threads: int = 2,
        resume: bool = False,
    ):
        from attnpatterns.annotate.dataset import KINDS
        from attnpatterns.classifier import card as card_mod

        self.models_dir = Path(models_dir) if models_dir else card_mod.default_path("raw").parent
        self.shipped = {k: self.models_dir / f"pattern-cnn-{k}.safetensors" for k in KINDS}
        self.active: dict[str, Path] = {k: p for k, p in self.shipped.items() if p.is_file()}
        if not self.active:
            raise UserError(
                f"{self.models_dir}: no pattern-cnn-raw.safetensors or pattern-cnn-normed.safetensors; "
                "pass --models with a folder holding the shipped classifiers."
            )
        if resume:
            for k in KINDS:
                newer = sorted(self.models_dir.glob(f"pattern-cnn-{k}-{RETRAINED}-*.safetensors"))
                if newer:
                    self.active[k] = newer[-1]
        self.data = Path(data) if data else None
        self.recipe = _recipe(recipe)
        self.seed, self.threads = seed, threads
        self._lock = threading.Lock()
        self._sha: dict[Path, str] = {}
        self.jobs: list[Job] = []
        self.versions: list[str] = [self.model_version()]
        self.warm()

    # ------------------------------------------------------------------ models

    def warm(self) -> None:
        """Load every active model once, so the first prediction request is not the slow one."""
        from attnpatterns.classifier.predict import get_classifier

        for kind, path in self.active.items():
            get_classifier(kind, path)

    def _digest(self, path: Path) -> str:
        if path not in self._sha:
            from attnpatterns.classifier.card import sha256_file

            self._sha[path] = sha256_file(path)
        return self._sha[path]

    def model_version(self) -> str:
        """``attn-<12 hex>``: a digest of the weights serving each kind (changes when a retrain lands)."""
        h = hashlib.sha256()
        for kind in sorted(self.active):
            h.update(f"{kind}:{self._digest(self.active[kind])}\n".encode())
        return "attn-" + h.hexdigest()[:12]

    def describe(self) -> dict:
        job = self.jobs[-1].to_dict() if self.jobs else None
        return {
            "status": "UP",
            "model_class": "attnpatterns pattern classifier",
            "model_version": self.model_version(),
            "models": {k: str(p) for k, p in sorted(self.active.items())},
            "training": job,
        }

    # ------------------------------------------------------------------ predictions

    def predict(self, tasks: list[dict] | None) -> list[dict]:
        """One prediction per task, in order: the top class with its probability as the score."""
        from attnpatterns.annotate.pull import task_map
        from attnpatterns.annotate.task_data import FROM_NAME, TO_NAME
        from attnpatterns.classifier.predict import classify_maps

        if not isinstance(tasks, list):
            raise UserError("the request has no 'tasks' list; send {'tasks': [...]} as Label Studio does.")
        tms = [task_map(t, need_image=False) for t in tasks]
        version = self.model_version()
        out: list[dict | None] = [None] * len(tms)
        by_kind: dict[str, list[int]] = {}
        for i, tm in enumerate(tms):
            by_kind.setdefault(tm.kind, []).append(i)
        for kind, idx in by_kind.items():
            if kind not in self.active:
                raise UserError(f"task {tms[idx[0]].task_id}: no classifier for {kind} maps in {self.models_dir}.")
            labels, probs = classify_maps([tms[i].attn for i in idx], kind, self.active[kind])
            for i, lab, p in zip(idx, labels, probs):
                out[i] = {
                    "result": [
                        {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [lab]}}
                    ],
                    "score": round(float(np.max(p)), 4),
                    "model_version": version,
                }
        return [o for o in out if o is not None]

    # ------------------------------------------------------------------ retraining

    def training_set(self, tasks: list[dict], project: str):
        """{kind: MapData}: the project's consensus labels, plus the annotated set unless turned off."""
        from attnpatterns.annotate.pull import consensus_rows, parse_export
        from attnpatterns.classifier.labels import LABEL_INDEX
        from attnpatterns.classifier.train import MapData, check_enough, load_data

        ex = parse_export(tasks, {}, need_image=False)
        if not ex.votes:
            raise UserError(f"project {project} has no annotations to train on; label some tasks first.")
        out = {}
        for kind in ex.kinds():
            rows, maps = consensus_rows(ex, kind, project)
            base = None
            if self.data is not None and (self.data / kind / "labels.tsv").is_file():
                base = load_data(self.data, kind)
            # (id, map, label, row): the annotated set's maps that the project does not hold, then the project's
            entries = []
            if base is not None:
                entries += [
                    (mid, m, r["label"], r) for mid, m, r in zip(base.ids, base.maps, base.rows) if mid not in rows
                ]
            entries += [(mid, maps[mid], r["label"], r) for mid, r in rows.items()]
            ids = [e[0] for e in entries]
            arrays = [e[1] for e in entries]
            labels = [e[2] for e in entries]
            meta = [e[3] for e in entries]
            source = f"Label Studio project {project} ({len(rows)} maps)" + (
                f" + {self.data / kind} ({len(ids) - len(rows)} maps)" if base is not None and self.data else ""
            )
            d = MapData(kind, ids, arrays, np.array([LABEL_INDEX[x] for x in labels], dtype=np.int64), meta, source)
            check_enough(d)
            out[kind] = d
        return out

    def start_training(self, tasks: list[dict], project: str, wait: bool = False) -> Job:
        """Check the labels now (a bad request is answered at once), then fit in a background thread."""
        with self._lock:
            if self.jobs and self.jobs[-1].status == "training":
                return self.jobs[-1]
            data = self.training_set(tasks, project)
            job = Job(
                id=len(self.jobs) + 1,
                project=str(project),
                kinds=sorted(data),
                started=_now(),
                n_maps={k: len(d) for k, d in data.items()},
            )
            self.jobs.append(job)
        t = threading.Thread(target=self._train, args=(job, data), name=f"attn-train-{job.id}", daemon=True)
        t.start()
        if wait:
            t.join()
        return job

    def _train(self, job: Job, data: dict) -> None:
        try:
            for kind, d in sorted(data.items()):
                path = self._fit_and_save(kind, d, job)
                job.files[kind] = path
            with self._lock:
                for kind, path in job.files.items():
                    self.active[kind] = Path(path)
                self.versions.append(self.model_version())
            self.warm()
            job.status = "done"
            log.info(
                "retrained %s on project %s: model version %s", ", ".join(job.kinds), job.project, self.model_version()
            )
        except Exception as e:  # reported on /health; the serving model stays as it was
            job.status, job.error = "failed", " ".join(str(e).split())[:300]
            log.error("retraining on project %s failed: %s", job.project, job.error)
        finally:
            job.finished = _now()

    def _fit_and_save(self, kind: str, d, job: Job) -> Path:
        import torch

        from attnpatterns.classifier import card as card_mod
        from attnpatterns.classifier import train as tr

        torch.set_num_threads(max(1, self.threads))
        cfg = tr.TrainConfig(kind=kind, data=d.source, seed=self.seed, recipe=self.recipe, threads=self.threads)
        res = tr.train(cfg, data=d)
        path = self.models_dir / f"pattern-cnn-{kind}-{RETRAINED}-{_now()}.safetensors"
        if path.resolve() in {p.resolve() for p in self.shipped.values()}:
            raise AssertionError("a retrained model never replaces the shipped one")
        card = tr.training_card(
            res,
            cfg,
            d,
            labels_from=f"consensus of the annotators of Label Studio project {job.project}, over the annotated "
            "set's labels where both hold a map",
            command=f"attn annotate backend: retrain on Label Studio project {job.project} (job {job.id})",
            data_source=d.source,
            extra_training={"replaces": str(self.active.get(kind, ""))},
        )
        w, _ = card_mod.save(path, res.fit.model, card)
        return w


def _recipe(name: str | None):
    from attnpatterns.classifier.recipes import SHIPPED, recipe_named

    return recipe_named(SHIPPED if name is None else name)


# ----------------------------------------------------------------------------- HTTP


def fetch_project_tasks(project_id: int) -> list[dict]:
    """The exported tasks of a project, through the SDK with the key from the environment."""
    from attnpatterns.annotate.labelstudio import connect  # looked up here: tests patch it
    from attnpatterns.annotate.task_data import check_config

    conn = connect()
    proj = conn.call("read the project", conn.sdk.projects.get, id=int(project_id))
    check_config(proj.label_config or "", proj.title or str(project_id))
    return conn.call("export the annotations", conn.sdk.projects.exports.as_json, int(project_id), timeout=1800)


def make_app(backend: PatternBackend, fetch=fetch_project_tasks):
    """The FastAPI application serving ``backend``."""
    from fastapi import Body, FastAPI, Request
    from fastapi.responses import JSONResponse

    from attnpatterns.annotate.task_data import check_config

    app = FastAPI(title="attnpatterns ML backend", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError):  # one line, as the CLI's errors
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/")
    @app.get("/health")
    def health() -> dict:
        return backend.describe()

    @app.post("/setup")
    def setup(body: dict = Body(default_factory=dict)) -> dict:
        if body.get("schema"):
            check_config(body["schema"], str(body.get("project", "")))
        return {"model_version": backend.model_version()}

    @app.post("/validate")
    def validate(body: dict = Body(default_factory=dict)) -> dict:
        check_config(body.get("config") or "", "this project")
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: dict = Body(default_factory=dict)) -> dict:
        results = backend.predict(body.get("tasks"))
        return {"results": results, "model_version": backend.model_version()}

    @app.post("/train", status_code=201)
    def train(body: dict = Body(default_factory=dict)) -> dict:
        tasks = body.get("annotations")
        if not isinstance(tasks, list) or not tasks:
            raise UserError("no annotated tasks in the request; label some tasks first.")
        if body.get("label_config"):
            check_config(body["label_config"], str(body.get("project", "")))
        job = backend.start_training(tasks, str(body.get("project", "?")), wait=bool(body.get("wait")))
        return {"job": str(job.id), **job.to_dict()}

    @app.post("/webhook", status_code=201)
    def webhook(body: dict = Body(default_factory=dict)) -> dict:
        action = body.get("action")
        if action != "START_TRAINING":
            return {"status": "ignored", "action": action}
        project = body.get("project") or {}
        pid = project.get("id") if isinstance(project, dict) else project
        if pid is None:
            raise UserError("the START_TRAINING webhook names no project id.")
        if isinstance(project, dict) and project.get("label_config"):
            check_config(project["label_config"], str(project.get("title", pid)))
        job = backend.start_training(fetch(int(pid)), str(pid), wait=bool(body.get("wait")))
        return {"job": str(job.id), **job.to_dict()}

    @app.get("/versions")
    def versions() -> dict:
        return {"versions": list(backend.versions), "model_version": backend.model_version()}

    @app.get("/is_training")
    def is_training() -> dict:
        job = backend.jobs[-1] if backend.jobs else None
        return {"is_training": bool(job and job.status == "training"), "job": job.to_dict() if job else None}

    return app


@dataclass
class Running:
    """A backend served from a thread (tests, notebooks); :meth:`stop` ends it."""

    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve_in_thread(app, host: str = HOST, port: int = 0, timeout: float = 30) -> Running:
    """Serve ``app`` with uvicorn in a daemon thread on ``host:port`` (0: a free port); returns once it listens."""
    import time

    import uvicorn

    if port == 0:
        from attnpatterns.annotate.server import free_port

        port = free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="attn-backend", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise UserError(f"the ML backend could not listen on {host}:{port}; pass another --port.")
        time.sleep(0.05)
    return Running(url=f"http://{host}:{port}", server=server, thread=thread)
