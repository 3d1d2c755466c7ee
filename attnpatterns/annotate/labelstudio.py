"""Label Studio projects of this package: finding or creating one with the labeling config, pushing maps to it as
tasks (in the chosen order, with pre-annotations), connecting the ML backend, the organisation's invite link.

The connection (``annotate/connection.py``) and the task data and labeling config (``annotate/task_data.py``) are
re-exported here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from attnpatterns.annotate.connection import DEFAULT_URL, Connection, connect  # noqa: F401 (re-exported)
from attnpatterns.annotate.task_data import (  # noqa: F401 (re-exported)
    FROM_NAME,
    LABEL_CONFIG,
    TO_NAME,
    build_task,
    check_config,
    config_signature,
    decode_map,
    encode_map,
    png_data_uri,
    suggest_labels,
)
from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")

IMPORT_CHUNK = 50


# ----------------------------------------------------------------------------- projects


def find_project(conn: Connection, title: str):
    projects = conn.call("list projects", lambda: list(conn.sdk.projects.list(title=title)))
    exact = [p for p in projects if p.title == title]
    return exact[0] if exact else None


def get_or_create_project(conn: Connection, title: str) -> tuple[Any, bool]:
    """(project, created). An existing project must have this package's labeling config."""
    if not title or not 3 <= len(title) <= 50:
        raise UserError(f"--project '{title}' must be 3 to 50 characters (a Label Studio limit).")
    p = find_project(conn, title)
    if p is not None:
        check_config(p.label_config or "", title)
        return p, False
    p = conn.call(
        "create the project",
        conn.sdk.projects.create,
        title=title,
        label_config=LABEL_CONFIG,
        description="Attention-map pattern types (Kovaleva et al. 2019); made by attnpatterns.",
        show_skip_button=True,
    )
    return p, True


def existing_map_ids(conn: Connection, project_id: int) -> set[str]:
    def fetch():
        return {str((t.data or {}).get("map_id")) for t in conn.sdk.tasks.list(project=project_id, fields="all")}

    return conn.call("list the project's tasks", fetch)


@dataclass
class PushResult:
    project: str
    project_id: int
    created: bool
    imported: int
    skipped_existing: int
    suggested_by: str
    order: str = "sequential"
    backend: str = ""  # the ML backend connected to the project, if any
    first: list = field(default_factory=list)  # (map id, suggested label, score) of the first tasks, in order


def _backend_suggestions(url: str, items: Sequence) -> list[tuple[str, float, str]]:
    """(label, score, by) per item from a running ML backend (``attn annotate backend``)."""
    from attnpatterns.annotate.backend_client import backend_predict

    tasks = [
        {
            "id": None,
            "data": {"map_id": it.map_id, "kind": it.kind, "map": encode_map(it.attn), "n_tokens": len(it.tokens)},
        }
        for it in items
    ]
    out = []
    for it, r in zip(items, backend_predict(url, tasks)):
        out.append(
            (
                r["result"][0]["value"]["choices"][0],
                float(r.get("score") or 0.0),
                str(r.get("model_version") or "backend"),
            )
        )
    return out


def push(
    items: Sequence,
    project: str,
    *,
    predictions: bool = True,
    conn: Connection | None = None,
    show_progress: bool = False,
    order: str = "sequential",
    per_type: int = 0,
    n: int | None = None,
    seed: int = 0,
    backend: str | None = None,
    annotators_per_map: int | None = None,
) -> PushResult:
    """Import ``items`` (MapItems) as tasks of ``project`` (created with the labeling config when missing).

    Maps already in the project (same id) are skipped, so pushing twice does not duplicate tasks. ``order``
    (:mod:`attnpatterns.annotate.ordering`) sets the order of import, which Label Studio's sequential sampling
    then follows; with ``n`` only the first ``n`` of that order are pushed (so ``uncertain`` picks the ``n``
    least certain of a larger sample). Suggestions come from the ML backend at ``backend`` when given (which is
    then connected to the project, so its retrained models reach the labeling page), else from the shipped
    classifier (or the heuristic without one).
    """
    from attnpatterns.annotate.ordering import check_order, order_indices
    from attnpatterns.progress import progress_iter

    check_order(order)
    if backend:
        from attnpatterns.annotate.backend_client import check_reachable

        backend = backend.rstrip("/")
        check_reachable(backend)
    conn = conn or connect()
    if not items:
        raise UserError("nothing to push; --n must be positive.")
    if annotators_per_map is not None and annotators_per_map < 1:
        raise UserError(f"--annotators-per-map must be at least 1, got {annotators_per_map}.")
    proj, created = get_or_create_project(conn, project)
    have = set() if created else existing_map_ids(conn, proj.id)
    todo = [it for it in items if it.map_id not in have]
    suggestions: dict[str, tuple] = {}
    if todo and (predictions or order == "uncertain"):
        if backend:
            suggestions = dict(zip([it.map_id for it in todo], _backend_suggestions(backend, todo)))
        else:
            by_kind: dict[str, list] = {}
            for it in todo:
                by_kind.setdefault(it.kind, []).append(it)
            for kind, its in by_kind.items():
                for it, s in zip(its, suggest_labels(kind, [i.attn for i in its], [i.tokens for i in its])):
                    suggestions[it.map_id] = s
    new = len(todo)
    ids = [it.map_id for it in todo]
    idx = order_indices(
        order,
        len(todo),
        seed=seed,
        ids=ids,
        labels=[suggestions[i][0] for i in ids] if suggestions else [],
        scores=[suggestions[i][1] for i in ids] if suggestions else [],
        per_type=per_type,
    )
    todo = [todo[i] for i in idx][: len(todo) if n is None else n]
    settings: dict = {"sampling": "Sequential sampling"}
    if annotators_per_map is not None:
        settings["maximum_annotations"] = int(annotators_per_map)
    conn.call("update the project's settings", conn.sdk.projects.update, id=proj.id, **settings)
    chunks = [todo[i : i + IMPORT_CHUNK] for i in range(0, len(todo), IMPORT_CHUNK)]
    for chunk in progress_iter(chunks, total=len(chunks), description="push", show=show_progress):
        tasks = [build_task(it, suggestions.get(it.map_id) if predictions else None) for it in chunk]
        conn.call("import tasks", conn.sdk.projects.import_tasks, id=proj.id, request=tasks, return_task_ids=True)
    if backend:
        connect_backend(conn, proj.id, backend)
    used = sorted({suggestions[it.map_id][2] for it in todo if it.map_id in suggestions}) if predictions else []
    first = [(it.map_id, *suggestions[it.map_id][:2]) for it in todo[:5] if it.map_id in suggestions]
    return PushResult(
        project=project,
        project_id=int(proj.id),
        created=created,
        imported=len(todo),
        skipped_existing=len(items) - new,
        suggested_by=",".join(used) or "none",
        order=order,
        backend=backend or "",
        first=first,
    )


def connect_backend(conn: Connection, project_id: int, url: str) -> Any:
    """Connect the ML backend at ``url`` to the project (once), and have Label Studio ask it for predictions of
    every task that lacks one from its current model version."""
    url = url.rstrip("/")
    backends = conn.call("list the project's ML backends", lambda: list(conn.sdk.ml.list(project=project_id)))
    ml = next((b for b in backends if (b.url or "").rstrip("/") == url), None)
    if ml is None:
        ml = conn.call(
            "connect the ML backend",
            conn.sdk.ml.create,
            project=project_id,
            url=url,
            title="attnpatterns pattern classifier",
            is_interactive=False,
            auto_update=True,
        )
    refresh_predictions(conn, project_id)
    return ml


def refresh_predictions(conn: Connection, project_id: int) -> None:
    """Label Studio's "Retrieve predictions" on all tasks: the connected backend predicts every task without a
    prediction of its current model version (after a retrain: all of them)."""
    conn.call(
        "retrieve predictions from the ML backend",
        conn.sdk.actions.create,
        id="retrieve_tasks_predictions",
        project=project_id,
        selected_items={"all": True, "excluded": []},
    )


def invite_link(conn: Connection | None = None) -> str:
    """The organisation's sign-up link (``/user/signup/?token=...``) for adding annotators to a group."""
    conn = conn or connect()

    def fetch():
        import requests

        r = requests.get(conn.url + "/api/invite", headers=conn.auth_header(), timeout=30)
        if r.status_code != 200:
            raise UserError(
                f"Label Studio at {conn.url} refused the invite link (HTTP {r.status_code}); "
                "only a member of the organisation can invite."
            )
        return r.json()

    body = conn.call("read the invite link", fetch)
    return conn.url + str(body.get("invite_url") or f"/user/signup/?token={body['token']}")
