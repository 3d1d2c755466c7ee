"""Push maps to Label Studio as labeling tasks and pull the annotations into the dataset.

Connection: ``LABEL_STUDIO_URL`` (default ``http://127.0.0.1:8080``) and ``LABEL_STUDIO_API_KEY``, read
from the environment only. The key is never written to a file, a log or an error message (every
message is scrubbed of it). Connection errors, timeouts and HTTP 5xx/429 are retried a few times with
exponential backoff, then reported in one line that names the URL.

A task holds everything needed to rebuild the dataset row without this machine: the PNG as a
``data:`` URI (shown by the Image tag; no file serving needed), the map itself (float32, zlib,
base64), the tokens and the provenance. Pre-annotations are Label Studio predictions from the
trained pattern CNN when ``models/pattern-cnn-<kind>.safetensors`` exists, else from the heuristic
scores of :mod:`attnpatterns.patterns`.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import time
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.patterns import PATTERN_VALUES

log = logging.getLogger("attnpatterns")

DEFAULT_URL = "http://127.0.0.1:8080"
FROM_NAME, TO_NAME = "pattern", "map"
IMPORT_CHUNK = 50

LABEL_CONFIG = f"""<View>
  <Header value="$title" size="5"/>
  <Image name="{TO_NAME}" value="$image" zoom="true" zoomControl="true"/>
  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true" required="true">
{chr(10).join(f'    <Choice value="{p}" hotkey="{i + 1}"/>' for i, p in enumerate(PATTERN_VALUES))}
  </Choices>
</View>"""


# ----------------------------------------------------------------------------- labeling config


def config_signature(xml: str) -> tuple:
    """What matters in a labeling config: the image tag, the choices tag and its ordered values."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        return ("unparseable", str(e))
    images = sorted((el.get("name"), el.get("value")) for el in root.iter("Image"))
    choices = sorted(
        (el.get("name"), el.get("toName"), el.get("choice", "single"), tuple(c.get("value") for c in el.iter("Choice")))
        for el in root.iter("Choices")
    )
    others = sorted({el.tag for el in root.iter()} - {"View", "Header", "Image", "Choices", "Choice"})
    return (tuple(images), tuple(choices), tuple(others))


def check_config(xml: str, project: str) -> None:
    want, got = config_signature(LABEL_CONFIG), config_signature(xml)
    if want != got:
        raise UserError(
            f"Label Studio project '{project}' has a different labeling config (expected an Image '{TO_NAME}' and "
            f"single Choices '{FROM_NAME}' with {', '.join(PATTERN_VALUES)}); pass another --project name or "
            "restore the config in the project's settings."
        )


# ----------------------------------------------------------------------------- maps in task data


def encode_map(attn: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(attn, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(zlib.compress(buf.getvalue(), 6)).decode("ascii")


def decode_map(text: str) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
    a = np.load(io.BytesIO(raw), allow_pickle=False)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"shape {a.shape}")
    return a.astype(np.float32, copy=False)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def suggest_labels(
    kind: str, maps: Sequence[np.ndarray], tokens: Sequence[Sequence[str]]
) -> list[tuple[str, float, str]]:
    """(label, score, by) per map: the trained CNN when its file exists and loads, else the heuristic."""
    from attnpatterns.patterns import suggest

    cnn = _cnn_suggestions(kind, maps)
    if cnn is not None:
        return cnn
    out = []
    for m, t in zip(maps, tokens):
        s = suggest(m, t)
        out.append((s.label.value, round(float(s.confidence), 4), "heuristic"))
    return out


def _cnn_suggestions(kind: str, maps: Sequence[np.ndarray]) -> list[tuple[str, float, str]] | None:
    try:
        from attnpatterns.classifier.card import default_path
        from attnpatterns.classifier.predict import classify_maps
    except ImportError:
        return None
    path = default_path(kind)
    if not path.is_file():
        return None
    try:
        labels, probs = classify_maps(list(maps), kind, path)
    except (UserError, ValueError, RuntimeError, OSError) as e:
        log.warning("pattern classifier %s not used (%s); pre-annotating with the heuristic", path.name, e)
        return None
    return [(str(lab), round(float(p.max()), 4), f"cnn:{path.name}") for lab, p in zip(labels, probs)]


def build_task(item, suggestion: tuple[str, float, str] | None) -> dict:
    """One Label Studio task (data + optional prediction) for a :class:`~attnpatterns.annotate.sample.MapItem`."""
    from attnpatterns.annotate.render import render_map_bytes, special_positions

    title = (
        f"{item.map_id}: {item.task} example {item.example}, layer {item.layer} head {item.head}, "
        f"{item.kind} map, {item.model_state} model"
    )
    data = {
        "image": png_data_uri(
            render_map_bytes(item.attn, item.tokens, title=f"L{item.layer} H{item.head} ({item.kind})")
        ),
        "title": title,
        "map_id": item.map_id,
        "kind": item.kind,
        "source_model": item.source_model,
        "model_state": item.model_state,
        "task": item.task,
        "example": item.example,
        "layer": int(item.layer),
        "head": int(item.head),
        "n_tokens": len(item.tokens),
        "tokens": " ".join(item.tokens),
        "special_positions": ",".join(str(i) for i in special_positions(item.tokens)),
        "map": encode_map(item.attn),
    }
    task: dict[str, Any] = {"data": data}
    if suggestion is not None:
        label, score, by = suggestion
        data["suggested_label"], data["suggested_by"] = label, by
        task["predictions"] = [
            {
                "model_version": by,
                "score": score,
                "result": [
                    {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [label]}}
                ],
            }
        ]
    return task


# ----------------------------------------------------------------------------- connection


@dataclass
class Connection:
    """An SDK client with bounded retries and key-free one-line errors."""

    url: str
    sdk: Any  # label_studio_sdk.LabelStudio
    _key: str = field(repr=False)
    retries: int = 3
    backoff: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "<key>") if self._key else text

    def call(self, what: str, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)``, retried on connection errors, timeouts, 429 and 5xx."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                return fn(*args, **kwargs)
            except ApiError as e:
                code = e.status_code
                if code == 403 and "reserved network address" in str(e.body):
                    raise UserError(
                        f"Label Studio at {self.url} refuses to {what}: it blocks ML backends on local addresses; "
                        "start it with 'attn annotate serve' (which allows them) or set ML_BLOCK_LOCAL_IP=false in "
                        "its environment."
                    ) from None
                if code in (401, 403):
                    raise UserError(
                        f"Label Studio at {self.url} rejected the API key (HTTP {code}) when trying to {what}; "
                        "check LABEL_STUDIO_API_KEY (Account & Settings > Legacy Token)."
                    ) from None
                if code is not None and (code >= 500 or code == 429) and not last:
                    log.warning("Label Studio at %s: HTTP %s on %s; retrying in %.1f s", self.url, code, what, delay)
                    self.sleep(delay)
                    delay *= 2
                    continue
                if code is not None and (code >= 500 or code == 429):
                    raise UserError(
                        f"Label Studio at {self.url} failed to {what} (HTTP {code}) after "
                        f"{self.retries + 1} tries; see the server's log."
                    ) from None
                raise UserError(
                    self.scrub(f"Label Studio at {self.url} refused to {what} (HTTP {code}): {_short(e.body)}")
                ) from None
            except (httpx.TransportError, ConnectionError) as e:
                if not last:
                    log.warning(
                        "Label Studio at %s unreachable (%s); retrying in %.1f s", self.url, type(e).__name__, delay
                    )
                    self.sleep(delay)
                    delay *= 2
                    continue
                raise UserError(
                    f"cannot reach Label Studio at {self.url} ({type(e).__name__}) after {self.retries + 1} tries; "
                    "start it with 'attn annotate serve' or set LABEL_STUDIO_URL."
                ) from None


def _short(body) -> str:
    if isinstance(body, dict):
        body = body.get("validation_errors") or body.get("detail") or body
    return " ".join(str(body).split())[:300]


def connect(retries: int = 3, backoff: float = 0.5, timeout: float = 120) -> Connection:
    """A checked connection from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` (environment only)."""
    from label_studio_sdk import LabelStudio

    url = os.environ.get("LABEL_STUDIO_URL", DEFAULT_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"LABEL_STUDIO_URL '{url}' must start with http:// or https://, e.g. {DEFAULT_URL}.")
    key = os.environ.get("LABEL_STUDIO_API_KEY", "").strip()
    if not key:
        raise UserError(
            "LABEL_STUDIO_API_KEY is not set; export the token of your Label Studio user "
            "(Account & Settings > Legacy Token, or the key 'attn annotate serve' was started with)."
        )
    sdk = LabelStudio(base_url=url, api_key=key, timeout=timeout)
    conn = Connection(url=url, sdk=sdk, _key=key, retries=retries, backoff=backoff)
    conn.call("check the API key", sdk.users.whoami)
    return conn


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

        r = requests.get(conn.url + "/api/invite", headers={"Authorization": f"Token {conn._key}"}, timeout=30)
        if r.status_code != 200:
            raise UserError(
                f"Label Studio at {conn.url} refused the invite link (HTTP {r.status_code}); "
                "only a member of the organisation can invite."
            )
        return r.json()

    body = conn.call("read the invite link", fetch)
    return conn.url + str(body.get("invite_url") or f"/user/signup/?token={body['token']}")
