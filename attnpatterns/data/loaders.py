"""Loaders: (a) the standard glue_data folder (``--data-dir`` or ``ATTN_GLUE_DIR``), (b) the hub
through ``datasets`` when a network is there, (c) a user's own CSV/TSV/JSONL with named columns."""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from attnpatterns.data.registry import TaskSpec, get_task
from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")
ENV_DIR = "ATTN_GLUE_DIR"


@dataclass(frozen=True)
class Example:
    id: str
    text_a: str
    text_b: str | None
    label: int | float


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir``, else ``$ATTN_GLUE_DIR``, else None (meaning: the hub)."""
    if data_dir:
        p = Path(data_dir).expanduser()
        if not p.is_dir():
            raise UserError(f"data folder '{data_dir}' does not exist; pass a glue_data folder to --data-dir.")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local data: the datasets library never needs the hub
        return p
    env = os.environ.get(ENV_DIR)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise UserError(f"${ENV_DIR}='{env}' is not a folder; point it at a glue_data folder or unset it.")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        return p
    return None


def split_file(spec: TaskSpec, data_dir: Path, split: str) -> Path:
    stem = spec.dev_split if split in ("dev", "validation") else split
    path = data_dir / spec.name / f"{stem}.tsv"
    if not path.is_file():
        alt = [p for p in (data_dir / spec.name).glob("*.tsv")] if (data_dir / spec.name).is_dir() else []
        have = f" (it has {', '.join(sorted(p.name for p in alt))})" if alt else ""
        raise UserError(
            f"no {spec.name} {split} data at {path}{have}; put the glue_data files for {spec.name} there "
            f"or pass another --data-dir."
        )
    return path


def load_task(
    task: TaskSpec | str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    max_examples: int | None = None,
    seed: int = 0,
) -> list[Example]:
    """Examples of a GLUE task split (``train`` or ``dev``; MNLI: ``dev_matched``/``dev_mismatched``).

    With ``max_examples`` a seeded random subsample (the same seed gives the same subsample).
    """
    spec = get_task(task) if isinstance(task, str) else task
    d = resolve_data_dir(data_dir)
    if d is not None:
        examples = _read_glue_tsv(spec, split_file(spec, d, split))
    else:
        examples = _load_hub(spec, split)
    if not examples:
        raise UserError(f"{spec.name} {split} has no examples; check the data files.")
    return subsample(examples, max_examples, seed)


def subsample(examples: list[Example], n: int | None, seed: int = 0) -> list[Example]:
    if n is None or n <= 0 or n >= len(examples):
        return examples
    idx = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in idx]


def _label(spec: TaskSpec, raw: str, where: str) -> int | float:
    raw = raw.strip()
    if spec.is_regression:
        try:
            return float(raw)
        except ValueError:
            raise UserError(f"{where}: label '{raw}' is not a number.") from None
    if spec.labels:
        if raw in spec.labels:
            return spec.labels.index(raw)
        raise UserError(f"{where}: unknown label '{raw}' for {spec.name} (expected {', '.join(spec.labels)}).")
    try:
        v = int(raw)
    except ValueError:
        raise UserError(
            f"{where}: label '{raw}' is not an integer class id; the label column must hold 0..{spec.num_labels - 1}."
        ) from None
    if not 0 <= v < spec.num_labels:
        raise UserError(f"{where}: label {v} is outside 0..{spec.num_labels - 1}.")
    return v


def _read_glue_tsv(spec: TaskSpec, path: Path) -> list[Example]:
    csv.field_size_limit(sys.maxsize)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; re-save it as UTF-8.") from None
    if spec.tsv_header:
        if not rows:
            raise UserError(f"{path}: empty file; restore the glue_data file.")
        header, rows = rows[0], rows[1:]
        col = {name: i for i, name in enumerate(header)}

        def idx(c):
            if c is None:
                return None
            if isinstance(c, int):
                return c
            if c not in col:
                raise UserError(
                    f"{path}: no column '{c}' in the header ({', '.join(header)}); is this the {spec.name} file?"
                )
            return col[c]
    else:

        def idx(c):
            return c

    ia, ib, il, iid = idx(spec.tsv_a), idx(spec.tsv_b), idx(spec.tsv_label), idx(spec.tsv_id)
    out = []
    for n, row in enumerate(rows):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{path}:{n + 1 + int(spec.tsv_header)}"
        try:
            a = row[ia]
            b = row[ib] if ib is not None else None
            lab_raw = row[il]
        except IndexError:
            raise UserError(f"{where}: row has {len(row)} columns, fewer than the {spec.name} layout needs.") from None
        lab = _label(spec, lab_raw, where)
        eid = row[iid] if iid is not None and iid < len(row) else str(n)
        out.append(Example(id=str(eid), text_a=a, text_b=b, label=lab))
    return out


OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_address() -> tuple[str, int]:
    """(host, port) of the hub: ``$HF_ENDPOINT`` (a mirror) or huggingface.co."""
    from urllib.parse import urlparse

    u = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return u.hostname or "huggingface.co", u.port or (80 if u.scheme == "http" else 443)


def offline_requested() -> bool:
    """Whether the user asked for offline mode (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` set to a true value)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


def hub_reachable(timeout: float = 1.0) -> bool:
    """A TCP connection to the hub within ``timeout`` seconds (name lookup included, bounded by a thread: a
    resolver without network can hang far longer than the socket's own timeout)."""
    import socket
    import threading

    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(hub_address(), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def _glue_in_datasets_cache() -> bool:
    """Whether the datasets cache holds anything of GLUE (checked without importing datasets, which is slow)."""
    env = os.environ.get("HF_DATASETS_CACHE")
    root = Path(env) if env else Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "datasets"
    try:
        return any("glue" in p.name.lower() for p in root.iterdir())
    except OSError:
        return False


def require_data(
    task: TaskSpec | str, data_dir: str | os.PathLike | None, splits: Sequence[str] = ("train", "dev")
) -> None:
    """Fail fast, before a model loads, when a task's data is neither in the data folder nor reachable: the local
    split files must exist; without a folder the hub is asked (offline, a one-line error within about 2 s; online,
    the splits are fetched into the datasets cache that the run then reads)."""
    spec = get_task(task) if isinstance(task, str) else task
    d = resolve_data_dir(data_dir)
    for split in splits:
        if d is not None:
            split_file(spec, d, split)
        else:
            _load_hub(spec, split)


def _load_hub(spec: TaskSpec, split: str) -> list[Example]:
    hub_split = (
        "train"
        if split == "train"
        else (spec.hub_dev_splits[spec.dev_splits.index(split)] if split in spec.dev_splits else spec.hub_dev_splits[0])
    )
    no_data = (
        f"no local GLUE data and the hub is unreachable; pass --data-dir with a glue_data folder (or set "
        f"{ENV_DIR}), or connect to the internet."
    )
    if not offline_requested() and not hub_reachable():
        # no network: only the datasets cache can help, read in offline mode (no retries, no noise)
        for v in OFFLINE_VARS:
            os.environ[v] = "1"
    if offline_requested() and not _glue_in_datasets_cache():
        raise UserError(no_data)
    try:
        import datasets

        quiet = logging.getLogger("datasets"), logging.getLogger("huggingface_hub")
        levels = [q.level for q in quiet]
        for q in quiet:
            q.setLevel(logging.ERROR)
        try:
            ds = datasets.load_dataset("nyu-mll/glue", spec.hub_config, split=hub_split)
        finally:
            for q, lv in zip(quiet, levels):
                q.setLevel(lv)
    except Exception as e:  # network, hub, cache: all end the same way for the user
        raise UserError(no_data.replace("unreachable;", f"unreachable ({type(e).__name__});")) from None
    return [
        Example(
            id=str(r.get("idx", i)),
            text_a=r[spec.text_a],
            text_b=r[spec.text_b] if spec.text_b else None,
            label=float(r["label"]) if spec.is_regression else int(r["label"]),
        )
        for i, r in enumerate(ds)
    ]


def load_file(
    path: str | os.PathLike,
    text_col: str,
    label_col: str,
    pair_col: str | None = None,
    id_col: str | None = None,
    regression: bool = False,
) -> tuple[list[Example], list[str]]:
    """A user's own CSV, TSV or JSONL. Returns (examples, label names); string labels are mapped to
    ids in sorted order, integer labels are kept."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path.")
    try:
        if path.suffix.lower() in (".jsonl", ".json"):
            rows = []
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise UserError(
                            f"{path}:{n + 1}: malformed JSON line ({e.msg}); one JSON object per line."
                        ) from None
        else:
            delim = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
            with open(path, encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.DictReader(fh, delimiter=delim))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; re-save it as UTF-8.") from None
    if not rows:
        raise UserError(f"{path}: no rows; the file needs a header and at least one example.")
    for c in [text_col, label_col] + [c for c in (pair_col, id_col) if c]:
        if c not in rows[0]:
            raise UserError(f"{path}: no column '{c}' (columns: {', '.join(map(str, rows[0].keys()))}).")
    raw_labels = [r[label_col] for r in rows]
    if regression:
        names: list[str] = []
        labels: Sequence = [float(x) for x in raw_labels]
    else:
        try:
            labels = [int(x) for x in raw_labels]
            names = [str(i) for i in range(max(labels) + 1)]
        except (TypeError, ValueError):
            names = sorted({str(x) for x in raw_labels})
            labels = [names.index(str(x)) for x in raw_labels]
    ex = [
        Example(
            id=str(r[id_col]) if id_col else str(i),
            text_a=str(r[text_col]),
            text_b=str(r[pair_col]) if pair_col else None,
            label=labels[i],
        )
        for i, r in enumerate(rows)
    ]
    return ex, names
