"""Masks on disk: the authors' ``.npy`` layout, our run folders, the weight-mask file; and, re-exported, the head set
(``prune/head_set.py``) and the mask algebra (``prune/mask_algebra.py``), so that ``prune.masks`` stays the one
place to import masks from.

Vocabulary: ``L`` layers, ``H`` heads per layer. A head mask is an (L, H) array and an MLP mask an (L,) array,
1 = kept, 0 = pruned.

Files read here:

- The authors' layout (Prasanna et al. 2020, ``bert-experiments/masks/<setting>``)::

      <dir>/<TASK>/seed_<S>/head_mask.npy   (L, H) float32, 1 = kept
      <dir>/<TASK>/seed_<S>/mlp_mask.npy    (L,)   float32

  A setting may hold only one of the two (``heads/`` has no MLP masks, ``mlps/`` no head masks).
- Our run folder (docs/CONTRACTS.md): ``<dir>/<TASK>/seed_<S>/structured/`` with ``mask.json`` (a head set,
  preferred) or ``head_mask.npy`` + ``mlp_mask.npy``, and ``summary.json`` once pruning finished.
- The weight masks of m-pruning and of the subnetworks (``mask.safetensors``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.prune.head_set import HeadSet, read_head_set, write_head_set  # noqa: F401 (re-exported)
from attnpatterns.prune.mask_algebra import (  # noqa: F401 (re-exported)
    and_over_seeds,
    as_binary_mask,
    mask_size,
    mask_sizes,
    or_over_seeds,
    stack_seeds,
    survival_counts,
)
from attnpatterns.run import layout
from attnpatterns.run.layout import RunLayout, SeedLayout

# {task: {seed: (head_mask (L, H) or None, mlp_mask (L,) or None)}}
MaskTable = dict[str, dict[int, tuple["np.ndarray | None", "np.ndarray | None"]]]

_SEED_DIR = layout.SEED_RE
_HEAD_FILE = "head_mask.npy"
_MLP_FILE = "mlp_mask.npy"
log = logging.getLogger("attnpatterns")


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
    return as_binary_mask(arr, ndim, str(path), what)


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


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------


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
