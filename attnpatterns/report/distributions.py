"""Pattern distributions: pooling per-head counts, and the chi-square test of super-survivors against the rest.

Pure functions of arrays. ``per_head`` is a (layers, heads, types) array of how many maps of each head were
classified as each type (over examples and seeds); a head set is a list of ``(layer, head)`` pairs.

The test. The study compares the pattern distribution of the super-survivors with that of all heads.
The super-survivors are part of "all heads", so the two rows are not independent samples; the test used
here is the chi-square test of independence (``scipy.stats.chi2_contingency``) on the 2 x K table
super-survivors vs the other heads, which asks the same question (the distribution of all heads is a
mixture of the two, so it equals the super-survivors' exactly when the other heads' does). Types with no
map in either row are dropped from the table. The maps of one head over many examples are not independent
draws either, so read the p-value as a description of the counts, not as a calibrated test of heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from attnpatterns.errors import UserError


def head_mask_of(heads: Iterable[Sequence[int]], shape: tuple[int, int]) -> np.ndarray:
    """A (layers, heads) bool mask with the given ``(layer, head)`` pairs set."""
    m = np.zeros(shape, dtype=bool)
    for pair in heads:
        layer, head = int(pair[0]), int(pair[1])
        if not (0 <= layer < shape[0] and 0 <= head < shape[1]):
            raise UserError(f"head ({layer}, {head}) is outside a model of {shape[0]} layers x {shape[1]} heads.")
        m[layer, head] = True
    return m


def pooled_counts(per_head: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Counts per type summed over the heads in ``mask`` (all heads when None): shape (types,)."""
    c = np.asarray(per_head, dtype=np.int64)
    if c.ndim != 3:
        raise UserError(f"per-head counts must be (layers, heads, types), got shape {c.shape}.")
    if mask is None:
        return c.sum(axis=(0, 1))
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != c.shape[:2]:
        raise UserError(f"head mask shape {mask.shape} does not fit per-head counts {c.shape[:2]}.")
    return c[mask].sum(axis=0)


def fractions(counts: np.ndarray) -> np.ndarray:
    """Counts as fractions of their total (zeros when the total is zero)."""
    c = np.asarray(counts, dtype=float)
    tot = c.sum()
    return c / tot if tot > 0 else np.zeros_like(c)


@dataclass
class ChiSquare:
    """Result of the 2 x K test; ``reason`` says why it could not be run (then the numbers are None)."""

    chi2: float | None
    p: float | None
    dof: int | None
    n_a: int
    n_b: int
    types_used: list[str]
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.chi2 is not None


def chi_square(a_counts: Sequence[int], b_counts: Sequence[int], types: Sequence[str]) -> ChiSquare:
    """Chi-square test of independence of group (a vs b) and type on a 2 x K table of counts."""
    from scipy.stats import chi2_contingency

    a = np.asarray(a_counts, dtype=np.int64)
    b = np.asarray(b_counts, dtype=np.int64)
    if a.shape != b.shape or a.shape != (len(types),):
        raise UserError(f"chi_square: counts of shape {a.shape} and {b.shape} for {len(types)} types.")
    n_a, n_b = int(a.sum()), int(b.sum())
    if n_a == 0 or n_b == 0:
        which = "the first group" if n_a == 0 else "the second group"
        return ChiSquare(None, None, None, n_a, n_b, [], f"{which} has no maps")
    keep = (a + b) > 0
    used = [t for t, k in zip(types, keep) if k]
    if keep.sum() < 2:
        return ChiSquare(None, None, None, n_a, n_b, used, "all maps are of one type")
    res = chi2_contingency(np.stack([a[keep], b[keep]]), correction=False)
    return ChiSquare(float(res[0]), float(res[1]), int(res[2]), n_a, n_b, used)
