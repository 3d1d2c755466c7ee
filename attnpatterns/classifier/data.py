"""The classifier's training data: the annotated maps of one kind with their labels (the consensus, or one
annotator's own), their fingerprint, and seeded stratified splits and folds."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")


@dataclass
class MapData:
    """Annotated maps of one kind: ``maps[i]`` (n_i, n_i) float32 with label index ``y[i]``, and for consensus
    labels ``soft[i]`` the share of the votes for each type (the ``votes`` column; None without votes)."""

    kind: str
    ids: list[str]
    maps: list[np.ndarray]
    y: np.ndarray
    rows: list[dict] = field(default_factory=list)
    source: str = ""
    soft: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: Sequence[int] | np.ndarray) -> "MapData":
        idx = list(idx)
        return MapData(
            self.kind,
            [self.ids[i] for i in idx],
            [self.maps[i] for i in idx],
            self.y[idx],
            [self.rows[i] for i in idx] if self.rows else [],
            self.source,
            self.soft[idx] if self.soft is not None else None,
        )

    def counts(self) -> dict[str, int]:
        from attnpatterns.classifier.labels import LABELS

        return {lab: int((self.y == i).sum()) for i, lab in enumerate(LABELS)}


def data_hash(ids: Sequence[str], labels: Sequence[str], maps: Sequence[np.ndarray]) -> str:
    """sha256 over (id, label, shape, float32 bytes) of every map, in id order: the training data's fingerprint."""
    h = hashlib.sha256()
    for i in sorted(range(len(ids)), key=lambda k: ids[k]):
        a = np.ascontiguousarray(maps[i], dtype=np.float32)
        h.update(f"{ids[i]}\t{labels[i]}\t{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_data(root: str | os.PathLike, kind: str, annotator: str | None = None) -> MapData:
    """The annotated maps of ``<root>/<kind>/`` (labels.tsv + maps.npz) with their consensus labels, or with one
    annotator's own labels (``<root>/<kind>/annotators/<annotator>.tsv``; only the maps they labelled)."""
    from attnpatterns.annotate import dataset
    from attnpatterns.classifier.labels import LABEL_INDEX, check_kind

    check_kind(kind)
    root = Path(root)
    if not (root / kind / dataset.LABELS_FILE).is_file():
        raise UserError(
            f"{root / kind / dataset.LABELS_FILE}: no annotations; pass --data with a folder holding {kind}/labels.tsv "
            "and maps.npz (made by 'attn annotate pull')."
        )
    s = dataset.load(root, kind)
    if not s.rows:
        raise UserError(f"{root / kind}: the annotation set is empty; annotate some maps first.")
    if annotator is not None:
        path = dataset.annotator_path(root, kind, annotator)
        if not path.is_file():
            have = sorted(p.stem for p in path.parent.glob("*.tsv")) if path.parent.is_dir() else []
            raise UserError(
                f"{path}: no such annotator; use one of {', '.join(have) or '(none: no annotators/ folder)'}."
            )
        own = {r["id"]: r["label"] for r in dataset.read_annotator(path)}
        s.rows = [{**r, "label": own[r["id"]]} for r in s.rows if r["id"] in own]
    maps = []
    for r in s.rows:
        m = s.maps[r["id"]]
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
            raise UserError(
                f"{root / kind}: map '{r['id']}' has shape {m.shape}, not a square 2-D map; fix or drop it."
            )
        maps.append(np.asarray(m, dtype=np.float32))
    y = np.array([LABEL_INDEX[r["label"]] for r in s.rows], dtype=np.int64)
    soft = None
    if annotator is None and all(str(r.get("votes") or "").strip() for r in s.rows):
        from attnpatterns.annotate.agreement import soft_labels

        soft = soft_labels([str(r["votes"]) for r in s.rows])
    return MapData(kind, [r["id"] for r in s.rows], maps, y, list(s.rows), str(root / kind), soft)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) index arrays: per class, round(fraction * count) examples held out (at least one when a
    class has two or more), shuffled with ``seed``."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        held.extend(idx[:k].tolist())
        keep.extend(idx[k:].tolist())
    return np.array(sorted(keep), dtype=np.int64), np.array(sorted(held), dtype=np.int64)


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """``folds`` disjoint test index arrays covering every example, each class spread evenly."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            parts[(j + offset) % folds].append(int(i))
        offset += len(idx)
    return [np.array(sorted(p), dtype=np.int64) for p in parts]
