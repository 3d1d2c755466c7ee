"""Head/MLP sets and their files: our JSON, a plain list of pairs, the authors' ``.npy`` layout, run folders.

Vocabulary: ``L`` layers, ``H`` heads per layer, 0-based ``layer`` and ``head``. A head mask is an (L, H)
array and an MLP mask an (L,) array, 1 = kept, 0 = pruned. A stack of masks over seeds is (S, L, H) / (S, L).

Files read here:

- Our head set (``mask.json``, ``super-survivors.json``, any ``--heads`` file)::

      {"model": ..., "task": ..., "seed": S  (or "seeds": [S, ...]), "num_layers": L, "num_heads": H,
       "heads": [[layer, head], ...], "mlps": [layer, ...]}

  ``"mlps"`` may be left out: the set then says nothing about MLPs (all kept when turned into arrays).
- A plain JSON list of ``[layer, head]`` pairs (heads only; the model's shape comes from the caller).
- The authors' layout (Prasanna et al. 2020, ``bert-experiments/masks/<setting>``)::

      <dir>/<TASK>/seed_<S>/head_mask.npy   (L, H) float32, 1 = kept
      <dir>/<TASK>/seed_<S>/mlp_mask.npy    (L,)   float32

  A setting may hold only one of the two (``heads/`` has no MLP masks, ``mlps/`` no head masks).
- Our run folder (docs/CONTRACTS.md): ``<dir>/<TASK>/seed_<S>/structured/`` with ``mask.json`` (preferred)
  or ``head_mask.npy`` + ``mlp_mask.npy``, and ``summary.json`` once pruning finished.

The mask algebra at the end (``and_over_seeds``, ``mask_size``, ...) is pure: arrays in, arrays or numbers out.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from attnpatterns import layout
from attnpatterns.errors import UserError
from attnpatterns.layout import RunLayout, SeedLayout

# {task: {seed: (head_mask (L, H) or None, mlp_mask (L,) or None)}}
MaskTable = dict[str, dict[int, tuple["np.ndarray | None", "np.ndarray | None"]]]

_SEED_DIR = layout.SEED_RE
_HEAD_FILE = "head_mask.npy"
_MLP_FILE = "mlp_mask.npy"
log = logging.getLogger("attnpatterns")


# --------------------------------------------------------------------------------------------------------------
# Head sets
# --------------------------------------------------------------------------------------------------------------


@dataclass
class HeadSet:
    """A set of kept heads (and optionally MLPs) of one model: what a head-set JSON file holds.

    ``heads`` are (layer, head) pairs, ``mlps`` layer indices; both are kept sorted and free of duplicates.
    ``mlps=None`` means the set says nothing about MLPs. ``seed`` is the seed of a single pruning run,
    ``seeds`` the seeds a set was combined from (super-survivors); at most one of them is set.
    """

    num_layers: int
    num_heads: int
    heads: list[tuple[int, int]]
    mlps: list[int] | None = None
    model: str | None = None
    task: str | None = None
    seed: int | None = None
    seeds: list[int] | None = None
    source: str = field(default="head set", repr=False, compare=False)  # names the file in error messages

    def __post_init__(self) -> None:
        src = self.source
        for name in ("num_layers", "num_heads"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise UserError(f"{src}: '{name}' must be a positive integer, got {v!r}; fix the file.")
        if self.seed is not None and self.seeds is not None:
            raise UserError(f"{src}: give either 'seed' or 'seeds', not both; fix the file.")
        if self.seed is not None and not _is_int(self.seed):
            raise UserError(f"{src}: 'seed' must be an integer, got {self.seed!r}; fix the file.")
        if self.seeds is not None:
            if not isinstance(self.seeds, (list, tuple)) or not all(_is_int(s) for s in self.seeds):
                raise UserError(f"{src}: 'seeds' must be a list of integers, got {self.seeds!r}; fix the file.")
            if len(set(self.seeds)) != len(self.seeds):
                raise UserError(f"{src}: 'seeds' repeats a seed ({_first_dup(self.seeds)}); list each seed once.")
            self.seeds = [int(s) for s in self.seeds]
        for name in ("model", "task"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise UserError(f"{src}: '{name}' must be a string, got {v!r}; fix the file.")
        L, H = int(self.num_layers), int(self.num_heads)
        pairs: list[tuple[int, int]] = []
        for p in self.heads:
            if not isinstance(p, (list, tuple)) or len(p) != 2 or not all(_is_int(x) for x in p):
                raise UserError(f"{src}: every head must be a [layer, head] pair of integers, got {p!r}; fix the file.")
            layer, head = int(p[0]), int(p[1])
            if not (0 <= layer < L and 0 <= head < H):
                raise UserError(
                    f"{src}: head [{layer}, {head}] is out of range: layers are 0..{L - 1} and heads 0..{H - 1} "
                    f"for a {L} x {H} model; check that the file is for this model."
                )
            pairs.append((layer, head))
        if len(set(pairs)) != len(pairs):
            d = _first_dup(pairs)
            raise UserError(f"{src}: head [{d[0]}, {d[1]}] is listed twice; list each head once.")
        self.heads = sorted(pairs)
        if self.mlps is not None:
            layers: list[int] = []
            for m in self.mlps:
                if not _is_int(m):
                    raise UserError(f"{src}: every MLP must be a layer index (integer), got {m!r}; fix the file.")
                if not 0 <= int(m) < L:
                    raise UserError(
                        f"{src}: MLP {int(m)} is out of range: layers are 0..{L - 1} for a {L}-layer model; "
                        "check that the file is for this model."
                    )
                layers.append(int(m))
            if len(set(layers)) != len(layers):
                raise UserError(f"{src}: MLP {_first_dup(layers)} is listed twice; list each layer once.")
            self.mlps = sorted(layers)
        self.num_layers, self.num_heads = L, H

    # --- arrays -------------------------------------------------------------------------------------------
    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(head_mask (L, H), mlp_mask (L,)) float32, 1 = kept. With ``mlps=None`` every MLP is kept."""
        head_mask = np.zeros((self.num_layers, self.num_heads), dtype=np.float32)  # (L, H)
        for layer, head in self.heads:
            head_mask[layer, head] = 1.0
        if self.mlps is None:
            mlp_mask = np.ones(self.num_layers, dtype=np.float32)  # (L,)
        else:
            mlp_mask = np.zeros(self.num_layers, dtype=np.float32)  # (L,)
            mlp_mask[self.mlps] = 1.0
        return head_mask, mlp_mask

    @classmethod
    def from_arrays(
        cls,
        head_mask: Any,
        mlp_mask: Any | None = None,
        *,
        model: str | None = None,
        task: str | None = None,
        seed: int | None = None,
        seeds: Iterable[int] | None = None,
        source: str = "mask arrays",
    ) -> "HeadSet":
        """Build a set from a 0/1 head mask (L, H) and optionally an MLP mask (L,)."""
        hm = _as_binary(head_mask, 2, source, "head mask")
        L, H = hm.shape
        mlps = None
        if mlp_mask is not None:
            mm = _as_binary(mlp_mask, 1, source, "MLP mask")
            if mm.shape != (L,):
                raise UserError(
                    f"{source}: MLP mask has shape {mm.shape} but the head mask has {L} layers; they must match."
                )
            mlps = [int(i) for i in np.flatnonzero(mm)]
        heads = [(int(a), int(b)) for a, b in zip(*np.nonzero(hm))]
        return cls(
            num_layers=L,
            num_heads=H,
            heads=heads,
            mlps=mlps,
            model=model,
            task=task,
            seed=seed,
            seeds=list(seeds) if seeds is not None else None,
            source=source,
        )

    # --- JSON ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "task": self.task}
        if self.seeds is not None:
            out["seeds"] = list(self.seeds)
        else:
            out["seed"] = self.seed
        out.update(
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            heads=[[a, b] for a, b in self.heads],
        )
        if self.mlps is not None:
            out["mlps"] = list(self.mlps)
        return out

    @classmethod
    def from_json(
        cls,
        obj: Any,
        *,
        num_layers: int | None = None,
        num_heads: int | None = None,
        model: str | None = None,
        source: str = "head set",
    ) -> "HeadSet":
        """Parse our head-set object or a plain list of [layer, head] pairs (see the module docstring).

        ``num_layers``/``num_heads`` are the model's shape: required for a plain list, checked against the
        file otherwise. ``model``, when given, must equal the file's ``"model"`` where the file names one.
        """
        for name, v in (("num_layers", num_layers), ("num_heads", num_heads)):
            if v is not None and (not _is_int(v) or v < 1):
                raise UserError(f"{name} must be a positive integer, got {v!r}.")
        if isinstance(obj, list):
            if num_layers is None or num_heads is None:
                raise UserError(
                    f"{source}: a plain list of [layer, head] pairs does not say the model's shape; "
                    "give num_layers and num_heads (or use the head-set JSON with 'num_layers' and 'num_heads')."
                )
            return cls(num_layers=num_layers, num_heads=num_heads, heads=obj, mlps=None, source=source)
        if not isinstance(obj, dict):
            raise UserError(
                f"{source}: expected a JSON object with 'heads' or a list of [layer, head] pairs, "
                f"got {type(obj).__name__}; fix the file."
            )
        if "heads" not in obj:
            raise UserError(f"{source}: no 'heads' key; a head set needs \"heads\": [[layer, head], ...].")
        if not isinstance(obj["heads"], list):
            raise UserError(
                f"{source}: 'heads' must be a list of [layer, head] pairs, got {type(obj['heads']).__name__}."
            )
        mlps = obj.get("mlps")
        if mlps is not None and not isinstance(mlps, list):
            raise UserError(f"{source}: 'mlps' must be a list of layer indices, got {type(mlps).__name__}.")
        L = obj.get("num_layers", num_layers)
        H = obj.get("num_heads", num_heads)
        if L is None or H is None:
            raise UserError(f"{source}: no 'num_layers'/'num_heads' in the file; add them (the model's shape).")
        for name, v in (("num_layers", L), ("num_heads", H)):
            if not _is_int(v) or v < 1:
                raise UserError(f"{source}: '{name}' must be a positive integer, got {v!r}; fix the file.")
        if num_layers is not None and L != num_layers or num_heads is not None and H != num_heads:
            raise UserError(
                f"{source}: the set is for a {L} x {H} (layers x heads) model, this model has "
                f"{num_layers or L} x {num_heads or H}; use masks made for this model."
            )
        file_model = obj.get("model")
        if model is not None and isinstance(file_model, str) and file_model != model:
            raise UserError(
                f"{source}: the set is for model '{file_model}', not '{model}'; use masks made for this model."
            )
        seeds = obj.get("seeds")
        return cls(
            num_layers=L,
            num_heads=H,
            heads=obj["heads"],
            mlps=mlps,
            model=file_model,
            task=obj.get("task"),
            seed=obj.get("seed"),
            seeds=seeds if seeds is not None else None,
            source=source,
        )

    @property
    def size(self) -> int:
        return len(self.heads)


def read_head_set(
    path: str | os.PathLike,
    num_layers: int | None = None,
    num_heads: int | None = None,
    model: str | None = None,
) -> HeadSet:
    """Read a head-set JSON file or a plain JSON list of [layer, head] pairs; one-line UserError naming the file."""
    from attnpatterns.io import read_json

    return HeadSet.from_json(read_json(path), num_layers=num_layers, num_heads=num_heads, model=model, source=str(path))


def write_head_set(path: str | os.PathLike, head_set: HeadSet) -> Path:
    """Write a head set as JSON (atomically)."""
    from attnpatterns.io import write_json

    return write_json(path, head_set.to_json())


# --------------------------------------------------------------------------------------------------------------
# The authors' layout and our run folders
# --------------------------------------------------------------------------------------------------------------


def load_mask_npy(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Load one 0/1 mask from ``.npy`` (no pickles) as float32, checking its rank and values."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; check the path.") from None
    except ValueError as e:
        raise UserError(f"{path}: not a plain numeric .npy array ({e}); save the mask with np.save.") from None
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot be read as .npy ({e}); the file may be truncated, write it again.") from None
    what = "head mask" if ndim == 2 else "MLP mask"
    return _as_binary(arr, ndim, str(path), what)


def read_seed_dir(seed_dir: str | os.PathLike) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """Masks of one seed folder in the authors' layout or our run layout: (head_mask, mlp_mask, model or None).

    Our run layout (``structured/``) is preferred when both are present; inside it ``mask.json`` beats the
    ``.npy`` copies. Raises when the folder holds neither layout.
    """
    seed_dir = Path(seed_dir)
    run_dir = SeedLayout(seed_dir).structured
    if run_dir.is_dir() and (
        (run_dir / layout.HEAD_MASK).is_file() or (run_dir / _HEAD_FILE).is_file() or (run_dir / _MLP_FILE).is_file()
    ):
        if not (run_dir / "summary.json").is_file():
            raise UserError(
                f"{run_dir}: s-pruning did not finish (no summary.json); rerun `attn prune structured` for this "
                "task and seed, or remove the folder."
            )
        if (run_dir / layout.HEAD_MASK).is_file():
            hs = read_head_set(run_dir / layout.HEAD_MASK)
            hm, mm = hs.to_arrays()
            return hm, (mm if hs.mlps is not None else None), hs.model
        return _read_npy_pair(run_dir) + (None,)
    if (seed_dir / _HEAD_FILE).is_file() or (seed_dir / _MLP_FILE).is_file():
        return _read_npy_pair(seed_dir) + (None,)
    raise UserError(
        f"{seed_dir}: no masks in this seed folder; expected {_HEAD_FILE}/{_MLP_FILE} (authors' layout) or "
        f"structured/{layout.HEAD_MASK} (run folder). Run `attn prune structured` for it or remove the folder."
    )


def _read_npy_pair(d: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    hm = load_mask_npy(d / _HEAD_FILE, 2) if (d / _HEAD_FILE).is_file() else None
    mm = load_mask_npy(d / _MLP_FILE, 1) if (d / _MLP_FILE).is_file() else None
    if hm is not None and mm is not None and mm.shape[0] != hm.shape[0]:
        raise UserError(
            f"{d / _MLP_FILE}: {mm.shape[0]} layers, but {d / _HEAD_FILE} has {hm.shape[0]}; "
            "the two masks must come from the same model."
        )
    return hm, mm


def discover_masks(
    root: str | os.PathLike,
    seeds: Iterable[int] | None = None,
    tasks: Iterable[str] | None = None,
    model: str | None = None,
    skip_unfinished: bool = False,
) -> MaskTable:
    """Find every TASK and seed under ``root`` and load its s-pruning masks: {task: {seed: (head, mlp)}}.

    A task folder is any subfolder holding ``seed_<S>`` folders (others, such as ``classify/``, are skipped).
    ``seeds``/``tasks`` restrict and require: a named seed or task that is missing is an error. All masks must
    have one shape (the error names the first file that differs), and every seed of a task must hold the same
    kinds of mask (heads, MLPs). ``model``: the expected model id, checked against ``mask.json`` files.
    ``skip_unfinished``: leave out (with a log warning) seed folders whose s-pruning has not finished (no masks,
    or ``structured/`` without ``summary.json``) instead of failing; a task left with no seed is left out too.
    """
    root = Path(root)
    if not root.exists():
        raise UserError(f"{root}: folder not found; pass the folder that holds TASK/seed_S/ mask folders.")
    if not root.is_dir():
        raise UserError(f"{root}: is a file, a folder was expected; pass the folder that holds TASK/seed_S/.")
    want_seeds = None if seeds is None else [int(s) for s in seeds]
    task_dirs = {name: RunLayout(root).task_dir(name) for name in RunLayout(root).tasks()}
    if tasks is not None:
        wanted = list(tasks)
        chosen: dict[str, Path] = {}
        for t in wanted:
            name = match_task(t, task_dirs, root)
            chosen[name] = task_dirs[name]
        task_dirs = chosen
    if not task_dirs:
        raise UserError(
            f"{root}: no TASK/seed_S folders found; pass a folder laid out as TASK/seed_S/head_mask.npy "
            "(authors' layout) or a run folder with TASK/seed_S/structured/."
        )

    out: MaskTable = {}
    ref_shape: Any = None  # (((L, H) or None, L), file that set it)
    ref_model: tuple[str, Path] | None = None
    for task, tdir in task_dirs.items():
        found: dict[int, Path] = {}
        for c in sorted(tdir.iterdir()):
            if not c.is_dir() or not c.name.startswith("seed_"):
                continue
            m = _SEED_DIR.match(c.name)
            if not m:
                raise UserError(f"{c}: seed folders must be named seed_<integer>, e.g. seed_1337; rename it.")
            found[int(m.group(1))] = c
        if want_seeds is not None:
            missing = [s for s in want_seeds if s not in found]
            if missing:
                raise UserError(
                    f"{tdir}: no seed_{missing[0]} folder (found seeds {sorted(found)}); run that seed or leave it "
                    "out of --seeds."
                )
            found = {s: found[s] for s in want_seeds}
        per_seed: dict[int, tuple[np.ndarray | None, np.ndarray | None]] = {}
        kinds: tuple[bool, bool, Path] | None = None
        for seed, sdir in sorted(found.items()):
            if skip_unfinished and not is_finished(sdir):
                log.warning("%s: s-pruning not finished, left out", sdir)
                continue
            hm, mm, file_model = read_seed_dir(sdir)
            where = _mask_file(sdir)
            if model is not None and file_model is not None and file_model != model:
                raise UserError(
                    f"{where}: masks of model '{file_model}', not '{model}'; use a run folder of this model."
                )
            if file_model is not None:
                if ref_model is not None and file_model != ref_model[0]:
                    raise UserError(
                        f"{where}: masks of model '{file_model}', but {ref_model[1]} is of '{ref_model[0]}'; "
                        "keep one model's runs in one folder."
                    )
                ref_model = ref_model or (file_model, where)
            k = (hm is not None, mm is not None)
            if kinds is None:
                kinds = k + (where,)
            elif k != kinds[:2]:
                raise UserError(
                    f"{where}: holds {_kinds_str(k)} but {kinds[2]} holds {_kinds_str(kinds[:2])}; every seed of "
                    f"{task} needs the same kinds of mask."
                )
            n_layers = mm.shape[0] if mm is not None else (hm.shape[0] if hm is not None else 0)
            shape = (hm.shape if hm is not None else None, n_layers)
            if ref_shape is None:
                ref_shape = (shape, where)
            else:
                (ref_hm, ref_L), ref_file = ref_shape
                L = shape[1]
                if L != ref_L or (shape[0] is not None and ref_hm is not None and shape[0] != ref_hm):
                    raise UserError(
                        f"{where}: mask shape {_shape_str(shape)} differs from {_shape_str(ref_shape[0])} in "
                        f"{ref_file}; all masks must come from one model."
                    )
                if ref_hm is None and shape[0] is not None:
                    ref_shape = (shape, where)
            per_seed[seed] = (hm, mm)
        if per_seed or not skip_unfinished:
            out[task] = per_seed
    if not out:
        raise UserError(f"{root}: no finished s-pruning masks yet; run `attn prune structured` first.")
    return out


def model_of(root: str | os.PathLike, seeds_by_task: Mapping[str, Iterable[int]]) -> str | None:
    """The model id named by a run folder's ``TASK/seed_S/structured/mask.json`` (None for the authors' .npy).

    ``discover_masks`` has already checked that all of them name one model.
    """
    from attnpatterns.io import read_json

    for task, seeds in seeds_by_task.items():
        for s in seeds:
            p = RunLayout(root).seed(task, s).mask("structured")
            if p.is_file():
                data = read_json(p)
                m = data.get("model") if isinstance(data, dict) else None
                if isinstance(m, str):
                    return m
    return None


def is_finished(seed_dir: str | os.PathLike) -> bool:
    """Whether a seed folder holds finished masks: the authors' .npy files, or structured/ with summary.json."""
    seed_dir = Path(seed_dir)
    run_dir = SeedLayout(seed_dir).structured
    if run_dir.is_dir() and any((run_dir / f).is_file() for f in (layout.HEAD_MASK, _HEAD_FILE, _MLP_FILE)):
        return (run_dir / "summary.json").is_file()
    return (seed_dir / _HEAD_FILE).is_file() or (seed_dir / _MLP_FILE).is_file()


def match_task(task: str, available: Mapping[str, Any], root: str | os.PathLike) -> str:
    """The key of ``available`` equal to ``task`` ignoring case (SST-2 = sst-2); UserError listing them."""
    if task in available:
        return task
    hits = [t for t in available if t.lower() == task.lower()]
    if len(hits) == 1:
        return hits[0]
    names = ", ".join(sorted(available)) or "none"
    raise UserError(f"{root}: no masks of task '{task}' (found: {names}); pick one of those.")


def stack_seeds(
    per_seed: Mapping[int, tuple[np.ndarray | None, np.ndarray | None]],
) -> tuple[list[int], np.ndarray | None, np.ndarray | None]:
    """{seed: (head, mlp)} -> (seeds sorted, head stack (S, L, H) bool or None, MLP stack (S, L) bool or None)."""
    seeds = sorted(per_seed)
    heads = [per_seed[s][0] for s in seeds]
    mlps = [per_seed[s][1] for s in seeds]
    hs_list = [h for h in heads if h is not None]
    hs = np.stack(hs_list).astype(bool) if seeds and len(hs_list) == len(heads) else None
    ms_list = [m for m in mlps if m is not None]
    ms = np.stack(ms_list).astype(bool) if seeds and len(ms_list) == len(mlps) else None
    return seeds, hs, ms


# --------------------------------------------------------------------------------------------------------------
# Mask algebra (pure)
# --------------------------------------------------------------------------------------------------------------


def and_over_seeds(stack: Any) -> np.ndarray:
    """Components kept in every seed: (S, ...) 0/1 -> (...) bool. Needs at least one seed."""
    s = np.asarray(stack).astype(bool)
    if s.ndim < 1 or s.shape[0] == 0:
        raise ValueError("and_over_seeds needs a stack with at least one seed on axis 0")
    return np.logical_and.reduce(s, axis=0)


def or_over_seeds(stack: Any) -> np.ndarray:
    """Components kept in at least one seed: (S, ...) 0/1 -> (...) bool."""
    s = np.asarray(stack).astype(bool)
    if s.ndim < 1 or s.shape[0] == 0:
        raise ValueError("or_over_seeds needs a stack with at least one seed on axis 0")
    return np.logical_or.reduce(s, axis=0)


def survival_counts(stack: Any) -> np.ndarray:
    """In how many seeds each component is kept: (S, ...) 0/1 -> (...) int."""
    return np.asarray(stack).astype(bool).sum(axis=0)


def mask_size(mask: Any) -> int:
    """Number of kept components of one mask (any shape)."""
    return int(np.count_nonzero(np.asarray(mask)))


def mask_sizes(stack: Any) -> np.ndarray:
    """Kept components per seed: (S, ...) -> (S,) int."""
    s = np.asarray(stack).astype(bool)
    return s.reshape(s.shape[0], -1).sum(axis=1)


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _first_dup(items: Iterable[Any]) -> Any:
    seen = set()
    for x in items:
        if x in seen:
            return x
        seen.add(x)
    return None


def _as_binary(arr: Any, ndim: int, source: str, what: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != ndim:
        want = "(layers, heads)" if ndim == 2 else "(layers,)"
        raise UserError(f"{source}: {what} has shape {a.shape}, expected {want}; pass a mask of that shape.")
    if a.size == 0:
        raise UserError(f"{source}: {what} is empty (shape {a.shape}); pass the model's mask.")
    if a.dtype.kind not in "biuf":
        raise UserError(f"{source}: {what} has dtype {a.dtype}, expected numbers 0/1; save it as float32 or bool.")
    if not np.isin(a, (0, 1)).all():
        bad = a[~np.isin(a, (0, 1))].ravel()[0].item()
        raise UserError(f"{source}: {what} holds {bad!r}; a mask holds only 0 (pruned) and 1 (kept).")
    return a.astype(np.float32)


def _mask_file(seed_dir: Path) -> Path:
    run_dir = SeedLayout(seed_dir).structured
    for cand in (
        run_dir / layout.HEAD_MASK,
        run_dir / _HEAD_FILE,
        run_dir / _MLP_FILE,
        seed_dir / _HEAD_FILE,
        seed_dir / _MLP_FILE,
    ):
        if cand.is_file():
            return cand
    return seed_dir


def _kinds_str(k: tuple[bool, bool]) -> str:
    return {
        (True, True): "head and MLP masks",
        (True, False): "head masks only",
        (False, True): "MLP masks only",
        (False, False): "no masks",
    }[k]


def _shape_str(shape: tuple[tuple[int, int] | None, int]) -> str:
    hm, L = shape
    return f"{hm[0]} x {hm[1]}" if hm is not None else f"{L} layers"


def read_weight_masks(path: str | os.PathLike) -> tuple[dict, dict]:
    """The weight masks of an m-pruning result or subnetwork (``mask.safetensors``): ({parameter name: bool tensor},
    the file's metadata), with one-line errors for a missing, truncated or empty file. The one reader of the format."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; rerun the step that writes it.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k).bool() for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise UserError(
            f"{path}: cannot be read as safetensors ({type(e).__name__}); the file may be truncated, "
            "delete it and rerun."
        ) from None
    if not tensors:
        raise UserError(f"{path}: holds no masks; delete it and rerun.")
    return tensors, meta
