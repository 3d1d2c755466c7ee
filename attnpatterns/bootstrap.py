"""Percentile bootstrap intervals of pooled shares (the pattern distributions), over units or clusters of units."""

from __future__ import annotations

from typing import Any

import numpy as np

from attnpatterns.errors import UserError


def bootstrap_fractions(
    counts: Any, clusters: Any = None, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals of the pooled fractions of each type.

    ``counts`` is (units, types): how many maps of each type one unit (a dev example, all chosen heads)
    contributed. Units are resampled with replacement; with ``clusters`` (one label per unit, e.g. the seed
    whose model made the maps) the clusters are resampled first and then units within each drawn cluster
    (a two-stage bootstrap, over seeds and examples). Returns (fractions, low, high), each (types,).
    Deterministic for a seed.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or len(c) == 0:
        raise UserError(f"bootstrap needs a non-empty (units, types) table of counts, got shape {c.shape}.")
    if not 0 < level < 1:
        raise UserError(f"the interval level must be in (0, 1), got {level}.")
    total = c.sum(axis=0)
    frac = total / total.sum() if total.sum() > 0 else np.zeros_like(total)
    rng = np.random.default_rng(seed)
    if clusters is None:
        idx = rng.integers(0, len(c), size=(n_boot, len(c)))  # (B, units)
        sums = c[idx].sum(axis=1)  # (B, types)
    else:
        labels = np.asarray(clusters)
        if len(labels) != len(c):
            raise UserError(f"got {len(labels)} cluster labels for {len(c)} units; give one per unit.")
        groups = [np.flatnonzero(labels == g) for g in np.unique(labels)]
        sums = np.zeros((n_boot, c.shape[1]))
        for b in range(n_boot):
            for g in rng.integers(0, len(groups), size=len(groups)):
                members = groups[g]
                sums[b] += c[members[rng.integers(0, len(members), size=len(members))]].sum(axis=0)
    tot = sums.sum(axis=1, keepdims=True)
    boot = np.divide(sums, tot, out=np.zeros_like(sums), where=tot > 0)
    a = (1 - level) / 2
    return frac, np.quantile(boot, a, axis=0), np.quantile(boot, 1 - a, axis=0)
