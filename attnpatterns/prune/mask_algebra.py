"""Mask algebra, pure: arrays in, arrays or numbers out. A head mask is (L, H), an MLP mask (L,), 1 = kept; a stack of
masks over seeds is (S, L, H) / (S, L). Also the check that an array is a 0/1 mask of the right rank."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from attnpatterns.errors import UserError


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


def as_binary_mask(arr: Any, ndim: int, source: str, what: str) -> np.ndarray:
    """``arr`` as a float32 0/1 mask of rank ``ndim``; one-line UserError naming ``source`` and ``what``."""
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
