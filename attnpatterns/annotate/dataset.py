"""The annotated-maps dataset: ``<root>/<kind>/labels.tsv`` and ``<root>/<kind>/maps.npz``.

``labels.tsv`` has the columns ``id, label, annotator, source_model, task, layer, head, example`` first,
then any extra columns (e.g. ``suggested_label, suggested_by, kind, model_state``). ``maps.npz`` holds
one 2-D float32 array per id (key = id), written without pickle.

Writes are upserts by id: writing the same rows twice does not duplicate them, a changed label
replaces the old row. Both files are written atomically (maps first, then labels), and nothing is
written when any row or map is invalid.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.patterns import PATTERN_VALUES

KINDS = ("raw", "normed")
COLUMNS = ["id", "label", "annotator", "source_model", "task", "layer", "head", "example"]
INT_COLUMNS = ("layer", "head")
LABELS_FILE = "labels.tsv"
MAPS_FILE = "maps.npz"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+=-]*$")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UserError(f"unknown map kind '{kind}'; use one of {', '.join(KINDS)}.")
    return kind


def make_id(task: str, example: str, layer: int, head: int, model_state: str = "pre", kind: str | None = None) -> str:
    """A stable map id such as ``pre-MRPC-1234-L3H5`` (characters outside ``[A-Za-z0-9._+=-]`` become ``_``)."""
    parts = ([kind] if kind else []) + [model_state, task, str(example), f"L{int(layer)}H{int(head)}"]
    return re.sub(r"[^A-Za-z0-9._+=-]", "_", "-".join(parts))


def check_id(map_id: str) -> str:
    if not isinstance(map_id, str) or not _ID_RE.match(map_id) or len(map_id) > 200:
        raise UserError(
            f"map id '{map_id}' is not valid; use letters, digits and . _ : + = - only (e.g. from make_id())."
        )
    return map_id


def check_label(label: str, where: str = "") -> str:
    if label not in PATTERN_VALUES:
        at = f"{where}: " if where else ""
        raise UserError(f"{at}unknown label '{label}'; use one of {', '.join(PATTERN_VALUES)}.")
    return label


def kind_dir(root: str | os.PathLike, kind: str) -> Path:
    return Path(root) / check_kind(kind)


@dataclass
class AnnotatedSet:
    """One kind's dataset: rows in file order (dicts of strings, layer/head as int) and maps by id."""

    kind: str
    rows: list[dict] = field(default_factory=list)
    maps: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    @property
    def labels(self) -> list[str]:
        return [r["label"] for r in self.rows]

    def row(self, map_id: str) -> dict:
        for r in self.rows:
            if r["id"] == map_id:
                return r
        raise KeyError(map_id)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    @property
    def columns(self) -> list[str]:
        extra: list[str] = []
        for r in self.rows:
            extra += [k for k in r if k not in COLUMNS and k not in extra]
        return COLUMNS + extra


@dataclass
class UpsertResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)


def read_labels(path: str | os.PathLike) -> list[dict]:
    """Rows of a labels.tsv, validated (columns, unique ids, labels, integer layer/head)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; pull annotations first ('attn annotate pull').")
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8.") from None
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None)
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must start with {', '.join(COLUMNS)}."
            )
        rows = []
        seen = set()
        for lineno, raw in enumerate(reader, start=2):
            if None in raw:
                raise UserError(f"{path}:{lineno}: more fields than columns; remove the extra tabs.")
            row = {k: ("" if v is None else v) for k, v in raw.items()}
            check_id(row["id"])
            if row["id"] in seen:
                raise UserError(f"{path}:{lineno}: id '{row['id']}' appears twice; keep one row per id.")
            seen.add(row["id"])
            check_label(row["label"], f"{path}:{lineno}")
            for c in INT_COLUMNS:
                try:
                    row[c] = int(row[c])
                except ValueError:
                    raise UserError(f"{path}:{lineno}: column {c} is '{row[c]}', not an integer.") from None
            rows.append(row)
    return rows


def read_maps(path: str | os.PathLike, ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Maps of a maps.npz (all of them, or only ``ids``), as float32 arrays; no pickle."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; pull annotations first ('attn annotate pull').")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files) if ids is None else list(ids)
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise UserError(
                    f"{path}: no map for id(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; pull "
                    f"again."
                )
            return {k: np.asarray(z[k], dtype=np.float32) for k in keys}
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: not a readable .npz ({type(e).__name__}); pull the annotations again.") from None


def load(root: str | os.PathLike, kind: str, with_maps: bool = True) -> AnnotatedSet:
    """Read ``<root>/<kind>/``: rows and (optionally) the maps of every row; every row must have its map."""
    d = kind_dir(root, kind)
    rows = read_labels(d / LABELS_FILE)
    maps = read_maps(d / MAPS_FILE, [r["id"] for r in rows]) if with_maps else {}
    return AnnotatedSet(kind=kind, rows=rows, maps=maps)


def load_or_empty(root: str | os.PathLike, kind: str) -> AnnotatedSet:
    """Like :func:`load`, an empty set when the folder has no labels.tsv yet."""
    if not (kind_dir(root, kind) / LABELS_FILE).exists():
        return AnnotatedSet(kind=kind)
    return load(root, kind)


def _normalise_row(row: Mapping, where: str) -> dict:
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise UserError(f"{where}: missing field(s) {', '.join(missing)}.")
    out: dict[str, Any] = {}
    for k, v in row.items():
        s = "" if v is None else str(v)
        if any(ch in s for ch in "\t\n\r"):
            raise UserError(f"{where}: field {k} holds a tab or newline; remove it.")
        out[str(k)] = s
    check_id(out["id"])
    check_label(out["label"], where)
    for c in INT_COLUMNS:
        try:
            out[c] = int(row[c])
        except (TypeError, ValueError):
            raise UserError(f"{where}: field {c} is '{row[c]}', not an integer.") from None
    return out


def _rows_equal(a: dict, b: dict) -> bool:
    keys = set(a) | set(b)
    return all(str(a.get(k, "")) == str(b.get(k, "")) for k in keys)


def upsert(
    root: str | os.PathLike,
    kind: str,
    rows: Iterable[Mapping],
    maps: Mapping[str, np.ndarray] | None = None,
) -> UpsertResult:
    """Add or replace rows (by id) in ``<root>/<kind>/`` and store their maps.

    A row whose id is new needs a map in ``maps``; a row whose id exists keeps its stored map unless
    ``maps`` gives a new one. Everything is validated before anything is written; an invalid row,
    label or map leaves the dataset untouched.
    """
    from attnpatterns.annotate.render import check_map
    from attnpatterns.io import save_npz

    check_kind(kind)
    maps = dict(maps or {})
    new_rows: list[dict] = []
    seen: set[str] = set()
    for i, r in enumerate(rows):
        nr = _normalise_row(r, f"row {i + 1} (id {r.get('id', '?')})")
        if nr["id"] in seen:
            raise UserError(f"id '{nr['id']}' is given twice in one update; give each id once.")
        seen.add(nr["id"])
        new_rows.append(nr)
    for k, m in maps.items():
        check_id(k)
        maps[k] = check_map(m, where=f"map '{k}'")

    d = kind_dir(root, kind)
    current = load_or_empty(root, kind)
    stored = dict(current.maps)
    index = {r["id"]: i for i, r in enumerate(current.rows)}
    out_rows = [dict(r) for r in current.rows]
    result = UpsertResult()
    for nr in new_rows:
        mid = nr["id"]
        if mid not in maps and mid not in stored:
            raise UserError(f"id '{mid}' has no map; pass its map (2-D array) with the row.")
        if mid in index:
            old = out_rows[index[mid]]
            map_changed = mid in maps and not (
                stored[mid].shape == maps[mid].shape and np.array_equal(stored[mid], maps[mid])
            )
            if _rows_equal(old, nr) and not map_changed:
                result.unchanged.append(mid)
            else:
                out_rows[index[mid]] = nr
                result.updated.append(mid)
        else:
            index[mid] = len(out_rows)
            out_rows.append(nr)
            result.added.append(mid)
    if not result.changed:
        return result

    stored.update({k: v for k, v in maps.items() if k in index})
    final = AnnotatedSet(kind=kind, rows=out_rows, maps={r["id"]: stored[r["id"]] for r in out_rows})
    d.mkdir(parents=True, exist_ok=True)
    # maps first: a crash between the two writes leaves extra maps, never a row without its map
    save_npz(d / MAPS_FILE, **final.maps)
    _write_tsv(d / LABELS_FILE, final.columns, out_rows)
    return result


def _write_tsv(path: Path, columns: list[str], rows: Iterable[Mapping]) -> None:
    """A tab-separated file with a header, written atomically (no quoting: fields hold no tab or newline)."""
    from attnpatterns.io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, lineterminator="\n")
            w.writerow(columns)
            for r in rows:
                w.writerow([str(r.get(c, "")) for c in columns])


def write_set(root: str | os.PathLike, kind: str, rows: list[Mapping], maps: Mapping[str, np.ndarray]) -> Path:
    """Replace ``<root>/<kind>/`` with exactly these rows and their maps (validated first; maps, then labels,
    each written atomically), e.g. when the consensus of several annotators replaces the labels."""
    from attnpatterns.annotate.render import check_map
    from attnpatterns.io import save_npz

    out_rows = [_normalise_row(r, f"row {i + 1} (id {r.get('id', '?')})") for i, r in enumerate(rows)]
    ids = [r["id"] for r in out_rows]
    if len(set(ids)) != len(ids):
        raise UserError("an id is given twice; give each map once.")
    missing = [i for i in ids if i not in maps]
    if missing:
        raise UserError(f"id(s) {', '.join(missing[:5])} have no map; pass every row's map.")
    arrays = {i: check_map(maps[i], where=f"map '{i}'") for i in ids}
    final = AnnotatedSet(kind=check_kind(kind), rows=out_rows, maps=arrays)
    d = kind_dir(root, kind)
    d.mkdir(parents=True, exist_ok=True)
    save_npz(d / MAPS_FILE, **final.maps)
    _write_tsv(d / LABELS_FILE, final.columns, out_rows)
    return d / LABELS_FILE


def class_balance(rows: Iterable[Mapping]) -> dict[str, int]:
    """Counts per label, in the order of the five types."""
    counts = {p: 0 for p in PATTERN_VALUES}
    for r in rows:
        counts[check_label(r["label"])] += 1
    return counts


# ----------------------------------------------------------------------------------------------------------------
# Each annotator's own labels: <root>/<kind>/annotators/<name>.tsv
# ----------------------------------------------------------------------------------------------------------------

ANNOTATORS_DIR = "annotators"
ANNOTATOR_COLUMNS = ["id", "label", "confident", "annotator", "round"]


def annotator_path(root: str | os.PathLike, kind: str, name: str) -> Path:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name):
        raise UserError(f"annotator name '{name}' is not valid; use letters, digits and . _ - only.")
    return kind_dir(root, kind) / ANNOTATORS_DIR / f"{name}.tsv"


def read_annotator(path: str | os.PathLike) -> list[dict]:
    """One annotator's rows (``id, label, confident, annotator, round`` + any extra columns), validated."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; write the annotator's labels there first.")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None)
        missing = [c for c in ANNOTATOR_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must start with "
                f"{', '.join(ANNOTATOR_COLUMNS)}."
            )
        rows, seen = [], set()
        for lineno, row in enumerate(reader, start=2):
            check_id(row["id"])
            if row["id"] in seen:
                raise UserError(f"{path}:{lineno}: id '{row['id']}' appears twice; one label per map and annotator.")
            seen.add(row["id"])
            check_label(row["label"], f"{path}:{lineno}")
            rows.append(dict(row))
    return rows


def read_annotators(
    root: str | os.PathLike, kind: str, rounds: Iterable[str] | None = None
) -> dict[str, dict[str, str]]:
    """``{annotator name: {map id: label}}`` for every file in ``<root>/<kind>/annotators/`` (name order), keeping
    only the rows of the given ``rounds`` when given; annotators left with no rows are dropped."""
    folder = kind_dir(root, kind) / ANNOTATORS_DIR
    keep = None if rounds is None else {str(r) for r in rounds}
    out: dict[str, dict[str, str]] = {}
    for p in sorted(folder.glob("*.tsv")):
        labels = {r["id"]: r["label"] for r in read_annotator(p) if keep is None or r["round"] in keep}
        if labels:
            out[p.stem] = labels
    return out


# Rounds of annotation (the ``round`` column) by the guidelines they were made under: round 1, the full blind passes
# under the first GUIDELINES.md; under the revised guidelines (version 2) round 2, the blind relabel of the maps round 1
# disputed and of the thin-class candidates, and round 3, full blind passes over every map.
FIRST_GUIDELINES_ROUNDS = ("1",)
REVISED_GUIDELINES_ROUNDS = ("2", "3")


def read_by_guidelines(root: str | os.PathLike, kind: str) -> dict[str, dict[str, dict[str, str]]]:
    """``{"1": labels under the first guidelines, "2": labels under the revised ones}``, each as
    :func:`read_annotators` gives it: the two vote tables of the project's consensus rule
    (:func:`attnpatterns.annotate.agreement.consensus_rounds`)."""
    return {
        "1": read_annotators(root, kind, rounds=FIRST_GUIDELINES_ROUNDS),
        "2": read_annotators(root, kind, rounds=REVISED_GUIDELINES_ROUNDS),
    }


def write_annotator(root: str | os.PathLike, kind: str, name: str, rows: Sequence[Mapping]) -> Path:
    """Write one annotator's file atomically (rows validated first; the columns of the first row, the
    required ones first)."""
    if not rows:
        raise UserError(f"no labels for annotator '{name}'; nothing written.")
    cols = ANNOTATOR_COLUMNS + [k for k in rows[0] if k not in ANNOTATOR_COLUMNS]
    seen = set()
    for r in rows:
        check_id(str(r["id"]))
        check_label(str(r["label"]), f"annotator {name}, id {r['id']}")
        if r["id"] in seen:
            raise UserError(f"annotator {name}: id '{r['id']}' is given twice; one label per map.")
        seen.add(r["id"])
    path = annotator_path(root, kind, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_tsv(path, cols, rows)
    return path
