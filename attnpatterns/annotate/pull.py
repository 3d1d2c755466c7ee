"""Pull a Label Studio project: every annotator's labels, the dataset rows, and the agreement between annotators.

A project's export holds, per task, the map (pushed by :func:`attnpatterns.annotate.labelstudio.push`) and
the annotations of every user who labelled it. From it:

- **each annotator's labels** go to ``<out>/<kind>/annotators/<name>.tsv`` (one row per map; ``name`` is
  the user's e-mail made file-safe, ``@`` -> ``_at_``), the format of ``docs/CONTRACTS.md`` that
  ``attn annotate agreement`` and ``attn classifier train --annotator`` read;
- **the dataset** ``<out>/<kind>/labels.tsv`` + ``maps.npz`` gets one row per map: the newest annotation of
  any annotator (the default), or with ``consensus="majority"`` the consensus of the project's annotators by
  :func:`attnpatterns.annotate.agreement.consensus_one`, with ``status``, ``votes``, ``n_votes`` and ``share``
  as in the project's own consensus set;
- **agreement**: :func:`project_agreement` reports Cohen's kappa per pair, Fleiss' kappa, specific agreement
  per class and the confusion of every pair, per kind.

Per task and annotator the most recently updated, not cancelled annotation counts. Everything is validated
before anything is written, and a pull cut off half-way puts back the files it had already replaced.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.patterns import PATTERN_VALUES

MODES = ("newest", "majority")


@dataclass
class TaskMap:
    """One task's map and provenance, validated."""

    task_id: object
    map_id: str
    kind: str
    attn: np.ndarray
    meta: dict


@dataclass
class Vote:
    map_id: str
    kind: str
    annotator: str  # the user's e-mail (or id when the user list does not name them)
    label: str
    task_id: object
    annotation_id: object
    updated_at: str


@dataclass
class Export:
    maps: dict[str, TaskMap] = field(default_factory=dict)  # map id -> map of an annotated task
    votes: list[Vote] = field(default_factory=list)  # one per (map, annotator)
    skipped: int = 0  # tasks without (or with only cancelled) annotations

    @property
    def annotators(self) -> list[str]:
        return sorted({v.annotator for v in self.votes})

    def kinds(self) -> list[str]:
        return sorted({v.kind for v in self.votes})

    def by_annotator(self, kind: str) -> dict[str, dict[str, str]]:
        """``{annotator: {map id: label}}`` for one kind (the input of :func:`agreement.vote_table`)."""
        out: dict[str, dict[str, str]] = {}
        for v in self.votes:
            if v.kind == kind:
                out.setdefault(v.annotator, {})[v.map_id] = v.label
        return dict(sorted(out.items()))


def annotation_label(ann: dict, where: str) -> str:
    from attnpatterns.annotate.task_data import FROM_NAME

    labels = [
        v
        for r in ann.get("result") or []
        if r.get("from_name") == FROM_NAME and r.get("type") == "choices"
        for v in (r.get("value") or {}).get("choices") or []
    ]
    if len(labels) != 1:
        raise UserError(
            f"{where}: expected one pattern choice, found {len(labels)}; fix the annotation in Label Studio."
        )
    if labels[0] not in PATTERN_VALUES:
        raise UserError(f"{where}: unknown label '{labels[0]}'; use one of {', '.join(PATTERN_VALUES)}.")
    return labels[0]


def task_map(t: dict, need_image: bool = True) -> TaskMap:
    """The validated map of one exported (or served) task; a one-line UserError naming the task otherwise."""
    from attnpatterns.annotate.dataset import check_id, check_kind
    from attnpatterns.annotate.task_data import decode_map

    d = t.get("data") or {}
    where = f"task {t.get('id')}"
    missing = [k for k in ("map_id", "map", "image") if not d.get(k) and (need_image or k != "image")]
    if missing:
        raise UserError(
            f"{where}: no {', '.join(missing)} in its data; it was not pushed by 'attn annotate push' "
            "(or was edited); delete it in Label Studio or push it again."
        )
    mid = check_id(str(d["map_id"]))
    kind = check_kind(str(d.get("kind", "")))
    try:
        attn = decode_map(d["map"])
    except (ValueError, zlib.error, OSError, TypeError) as e:
        raise UserError(f"{where}: the map data of '{mid}' is damaged ({type(e).__name__}); push it again.") from None
    if d.get("n_tokens") not in (None, "") and int(d["n_tokens"]) != attn.shape[0]:
        raise UserError(
            f"{where}: the map of '{mid}' is {attn.shape[0]}x{attn.shape[0]} but the task has "
            f"{d['n_tokens']} tokens; push it again."
        )
    meta = dict(
        source_model=d.get("source_model", ""),
        task=d.get("task", ""),
        layer=d.get("layer", ""),
        head=d.get("head", ""),
        example=d.get("example", ""),
        kind=kind,
        model_state=d.get("model_state", ""),
        suggested_label=d.get("suggested_label", ""),
        suggested_by=d.get("suggested_by", ""),
        tokens=d.get("tokens", ""),
        ls_task=t.get("id", ""),
    )
    return TaskMap(task_id=t.get("id"), map_id=mid, kind=kind, attn=attn, meta=meta)


def _user_id(v):
    return v.get("id") if isinstance(v, dict) else v


def parse_export(
    tasks: Iterable[dict], users: dict[int, str], annotator: str | None = None, need_image: bool = True
) -> Export:
    """Every annotator's newest label per map (of ``annotator`` only when given), validated; raises before
    anything is written. ``need_image=False`` accepts tasks without the rendered image (training needs the map
    only)."""
    ex = Export()
    newest: dict[tuple[str, str], Vote] = {}
    for t in tasks:
        anns = [a for a in t.get("annotations") or [] if not a.get("was_cancelled")]
        named = [(users.get(_user_id(a.get("completed_by")), str(_user_id(a.get("completed_by")))), a) for a in anns]
        if annotator is not None:
            named = [(who, a) for who, a in named if who == annotator]
        if not named:
            ex.skipped += 1
            continue
        tm = task_map(t, need_image)
        ex.maps.setdefault(tm.map_id, tm)
        for who, a in named:
            label = annotation_label(a, f"task {t.get('id')} annotation {a.get('id')}")
            v = Vote(tm.map_id, tm.kind, who, label, t.get("id"), a.get("id"), str(a.get("updated_at") or ""))
            key = (tm.map_id, who)
            old = newest.get(key)
            if old is None or (v.updated_at, v.annotation_id or 0) >= (old.updated_at, old.annotation_id or 0):
                newest[key] = v
                if old is not None and old.task_id != v.task_id:
                    ex.maps[tm.map_id] = tm  # the same map pushed twice: the task of the newest label
    ex.votes = sorted(newest.values(), key=lambda v: (v.kind, v.map_id, v.annotator))
    return ex


def rows_from_export(tasks: Iterable[dict], users: dict[int, str], annotator: str | None = None):
    """(rows per kind, maps per kind, skipped tasks, annotators): one dataset row per map with the newest
    annotation of any annotator (of ``annotator`` when given)."""
    ex = parse_export(tasks, users, annotator)
    best: dict[str, Vote] = {}
    for v in ex.votes:
        b = best.get(v.map_id)
        if b is None or (v.updated_at, v.annotation_id or 0) > (b.updated_at, b.annotation_id or 0):
            best[v.map_id] = v
    rows: dict[str, dict[str, dict]] = {}
    maps: dict[str, dict[str, np.ndarray]] = {}
    for mid, v in sorted(best.items()):
        tm = ex.maps[mid]
        rows.setdefault(v.kind, {})[mid] = dict(
            id=mid, label=v.label, annotator=v.annotator, **tm.meta, ls_annotation=v.annotation_id
        )
        maps.setdefault(v.kind, {})[mid] = tm.attn
    return rows, maps, ex.skipped, sorted({v.annotator for v in best.values()})


def consensus_rows(ex: Export, kind: str, project: str) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """One row per map of ``kind``: the consensus of the project's annotators, with its votes."""
    from attnpatterns.annotate.agreement import consensus_one

    by_map: dict[str, list[Vote]] = {}
    for v in ex.votes:
        if v.kind == kind:
            by_map.setdefault(v.map_id, []).append(v)
    rows, maps = {}, {}
    for mid, vs in sorted(by_map.items()):
        labels = [v.label for v in vs]
        label, status, text = consensus_one(labels)
        who = ", ".join(sorted(v.annotator for v in vs))
        tm = ex.maps[mid]
        rows[mid] = dict(
            id=mid,
            label=label,
            annotator=f"consensus of {who} (Label Studio project '{project}')",
            **tm.meta,
            status=status,
            votes=text,
            n_votes=len(labels),
            share=f"{labels.count(label) / len(labels):.3f}",
        )
        maps[mid] = tm.attn
    return rows, maps


def annotator_name(user: str) -> str:
    """A file-safe annotator name from a Label Studio user (``ann@lab.org`` -> ``ann_at_lab.org``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(user).replace("@", "_at_")).strip("._-")
    return name or "user"


# ----------------------------------------------------------------------------- talking to the server


def fetch_export(project: str, conn=None):
    """(connection, project, exported tasks, {user id: e-mail}) of a project with this package's config."""
    from attnpatterns.annotate.labelstudio import connect, find_project  # connect looked up here: tests patch it
    from attnpatterns.annotate.task_data import check_config

    conn = conn or connect()
    proj = find_project(conn, project)
    if proj is None:
        titles = [p.title for p in conn.call("list projects", lambda: list(conn.sdk.projects.list()))]
        raise UserError(f"no Label Studio project '{project}' at {conn.url}; existing: {', '.join(titles) or 'none'}.")
    check_config(proj.label_config or "", project)
    tasks = conn.call("export the annotations", conn.sdk.projects.exports.as_json, proj.id, timeout=1800)
    users = {
        int(u.id): (u.email or u.username or str(u.id))
        for u in conn.call("list users", lambda: list(conn.sdk.users.list()))
    }
    return conn, proj, tasks, users


@dataclass
class PullResult:
    project: str
    kinds: dict = field(default_factory=dict)  # kind -> UpsertResult of labels.tsv
    annotator_files: dict = field(default_factory=dict)  # kind -> {name: path}
    annotated_tasks: int = 0
    skipped_tasks: int = 0  # no (or only cancelled) annotations
    annotators: list = field(default_factory=list)
    mode: str = "newest"


def pull(
    project: str,
    out: str | os.PathLike,
    *,
    annotator: str | None = None,
    consensus: str = "newest",
    round_name: str = "1",
    conn=None,
) -> PullResult:
    """Export ``project``'s annotations into ``out``: every annotator's own file, and the dataset rows (the
    newest label, or the ``majority`` consensus with votes). All or nothing."""
    from attnpatterns.annotate import dataset as ds

    if consensus not in MODES:
        raise UserError(f"--consensus '{consensus}' is not known; use one of {', '.join(MODES)}.")
    _, _, tasks, users = fetch_export(project, conn)
    ex = parse_export(tasks, users, annotator)
    if consensus == "majority":
        rows, maps = {}, {}
        for kind in ex.kinds():
            rows[kind], maps[kind] = consensus_rows(ex, kind, project)
    else:
        rows, maps, _, _ = rows_from_export(tasks, users, annotator)
        for kind in rows:
            current = ds.load_or_empty(out, kind)
            if current.rows and "status" in current.rows[0]:
                raise UserError(
                    f"{ds.kind_dir(out, kind) / ds.LABELS_FILE} holds consensus labels (a 'status' column); "
                    "pull with --consensus majority, or into another --out."
                )
    # every annotator's own rows, merged with what their file holds already
    files: dict[tuple[str, str], list[dict]] = {}
    for v in ex.votes:
        name = annotator_name(v.annotator)
        files.setdefault((v.kind, name), []).append(
            dict(
                id=v.map_id,
                label=v.label,
                confident="",
                annotator=f"{v.annotator} (Label Studio project '{project}')",
                round=round_name,
                ls_task=v.task_id,
                ls_annotation=v.annotation_id,
                updated_at=v.updated_at,
            )
        )
    merged: dict[tuple[str, str], list[dict]] = {}
    for (kind, name), new in files.items():
        path = ds.annotator_path(out, kind, name)
        old = ds.read_annotator(path) if path.is_file() else []
        index = {r["id"]: dict(r) for r in old}
        for r in new:
            index[r["id"]] = {**index.get(r["id"], {}), **{k: str(x) for k, x in r.items()}}
        merged[(kind, name)] = list(index.values())
    for kind in rows:  # validate every row before writing anything
        for r in rows[kind].values():
            ds._normalise_row(r, f"map '{r['id']}'")
    result = PullResult(
        project=project,
        skipped_tasks=ex.skipped,
        annotators=ex.annotators,
        mode=consensus,
        annotated_tasks=sum(len(v) for v in rows.values()),
    )
    with _all_or_nothing([ds.kind_dir(out, k) for k in sorted(set(rows) | {k for k, _ in merged})]):
        for kind in sorted(rows):
            result.kinds[kind] = ds.upsert(out, kind, list(rows[kind].values()), maps[kind])
        for (kind, name), rs in sorted(merged.items()):
            result.annotator_files.setdefault(kind, {})[name] = ds.write_annotator(out, kind, name, rs)
    return result


class _all_or_nothing:
    """Put back every file under the given folders as it was when the block fails (Ctrl-C included)."""

    def __init__(self, folders: list[Path]):
        self.folders = folders
        self.before: dict[Path, bytes] = {}

    def __enter__(self):
        for d in self.folders:
            if d.is_dir():
                self.before.update({p: p.read_bytes() for p in d.rglob("*") if p.is_file()})
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        from attnpatterns.io import write_bytes

        for d in self.folders:
            for p in [p for p in d.rglob("*") if p.is_file() and p not in self.before] if d.is_dir() else []:
                p.unlink()
        for p, data in self.before.items():
            if not p.is_file() or p.read_bytes() != data:
                write_bytes(p, data)
        return False


def project_agreement(project: str, kind: str | None = None, conn=None) -> dict:
    """``{kind: agreement.report(...)}`` for the annotators of a Label Studio project (every kind it holds, or
    ``kind``)."""
    from attnpatterns.annotate.agreement import report, vote_table

    _, _, tasks, users = fetch_export(project, conn)
    ex = parse_export(tasks, users)
    kinds = [kind] if kind else ex.kinds()
    if not ex.votes:
        raise UserError(f"project '{project}' has no annotations yet; label some tasks first.")
    out = {}
    for k in kinds:
        labels = ex.by_annotator(k)
        if len(labels) < 2:
            who = ", ".join(labels) or "nobody"
            raise UserError(
                f"project '{project}' has {k} labels from {len(labels)} annotator ({who}); agreement needs "
                "a second annotator labelling the same tasks (a blind second pass)."
            )
        votes = vote_table(labels)
        if votes.notna().sum(axis=1).max() < 2:
            raise UserError(
                f"project '{project}': no {k} task was labelled by two annotators ({', '.join(labels)}); "
                "give them overlapping tasks (project setting 'maximum annotations' of 2 or more)."
            )
        out[k] = {"kind": k, "project": project, **report(votes)}
    return out
