"""Stability statistics of s-pruning masks over seeds (docs/method.md, Statistics). Arrays in, numbers out.

Stacks are (S, L, H) for heads and (S, L) for MLPs, 1 = kept, S = seeds. Every component (head or MLP) is a
subject and every seed a rater with two categories, kept / pruned.

- Fleiss' kappa of survival (statsmodels ``aggregate_raters`` + ``fleiss_kappa``). Undefined (NaN) when every
  rating is the same category (all kept or all pruned in every seed): chance agreement is then 1 and the formula
  divides 0 by 0.
- Cochran's Q (statsmodels ``cochrans_q``) in two orientations, both reported:
  ``seeds``: cases = components, treatments = seeds; H0: every seed keeps the same proportion of components
  (a test of the "raters"' marginals, the companion of kappa).
  ``components``: cases = seeds, treatments = components; H0: every component has the same chance to survive
  (the chi-square approximation is rough with 5 seeds; read the statistic, not only the p-value).
  Undefined (NaN) when every case is constant (e.g. all components kept by every seed).
- Per-component std of survival over seeds: ``std`` with ddof=0 of the 0/1 ratings, i.e. sqrt(p (1 - p)).
- Shared heads of tasks A and B: sum(mask_A[seed] * mask_B[seed]) on the seeds both have, then mean and std
  (ddof=0, as numpy) over those seeds.

All std values in this module use ddof=0 (population std over the seeds), as ``numpy.std``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from attnpatterns.errors import UserError

KAPPA_UNDEFINED_NOTE = (
    "kappa undefined: every component has the same outcome (kept or pruned) in every seed, so chance "
    "agreement is 1 and kappa is 0/0"
)
Q_UNDEFINED_NOTE = "Cochran's Q undefined: every case has the same outcome under every treatment"


def _as_ratings(stack: Any, label: str) -> np.ndarray:
    """(S, ...) 0/1 stack -> (components, seeds) int ratings (0 = pruned, 1 = kept)."""
    s = np.asarray(stack)
    if s.ndim < 2:
        raise ValueError(f"{label}: expected a stack (seeds, components...), got shape {s.shape}")
    if s.size and not np.isin(s, (0, 1)).all():
        raise ValueError(f"{label}: a mask stack holds only 0 and 1")
    return s.reshape(s.shape[0], -1).T.astype(np.int64)  # (N components, S seeds)


def _need_two_seeds(stack: Any, label: str) -> None:
    n = np.asarray(stack).shape[0] if np.asarray(stack).ndim else 0
    if n < 2:
        raise UserError(
            f"{label}: {n} seed(s); agreement over seeds (kappa, Cochran's Q) needs at least two seeds. "
            "Prune more seeds of this task."
        )


def fleiss_kappa_survival(stack: Any, label: str = "masks") -> float:
    """Fleiss' kappa of survival over seeds: (S, ...) 0/1 -> kappa, NaN when undefined (see module doc).

    ``label`` names the masks (e.g. "MRPC heads") in the error raised for fewer than two seeds.
    """
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    _need_two_seeds(stack, label)
    ratings = _as_ratings(stack, label)  # (N, S)
    if ratings.shape[0] == 0:
        return math.nan
    table, _ = aggregate_raters(ratings, n_cat=2)  # (N, 2): counts of pruned, kept per component
    p_cat = table.sum(axis=0) / table.sum()
    if np.isclose((p_cat * p_cat).sum(), 1.0):
        return math.nan
    return float(fleiss_kappa(table, method="fleiss"))


@dataclass(frozen=True)
class CochranQ:
    statistic: float
    pvalue: float
    df: int
    cases: str
    treatments: str


def cochrans_q_survival(stack: Any, treatments: str = "seeds", label: str = "masks") -> CochranQ:
    """Cochran's Q of survival. ``treatments="seeds"``: cases = components; ``"components"``: cases = seeds.

    NaN statistic and p-value when undefined (every case constant).
    """
    from statsmodels.stats.contingency_tables import cochrans_q

    _need_two_seeds(stack, label)
    ratings = _as_ratings(stack, label)  # (N components, S seeds)
    if treatments == "seeds":
        x, cases = ratings, "components"
    elif treatments == "components":
        x, cases = ratings.T, "seeds"  # (S, N)
    else:
        raise ValueError(f"treatments must be 'seeds' or 'components', not {treatments!r}")
    k = x.shape[1]
    row = x.sum(axis=1)
    if k < 2 or np.all((row == 0) | (row == k)):
        return CochranQ(math.nan, math.nan, max(k - 1, 0), cases, treatments)
    res = cochrans_q(x)
    return CochranQ(float(res.statistic), float(res.pvalue), int(res.df), cases, treatments)


def survival_std(stack: Any) -> np.ndarray:
    """Per-component std (ddof=0) of survival over seeds: (S, ...) -> (...) float."""
    return np.asarray(stack).astype(np.float64).std(axis=0)


def survival_rate(stack: Any) -> np.ndarray:
    """Fraction of seeds that keep each component: (S, ...) -> (...) float."""
    return np.asarray(stack).astype(np.float64).mean(axis=0)


def kept_per_seed(stack: Any) -> np.ndarray:
    """Kept components per seed: (S, ...) -> (S,) int."""
    s = np.asarray(stack).astype(bool)
    return s.reshape(s.shape[0], -1).sum(axis=1)


def shared_counts(stack_a: Any, stack_b: Any) -> np.ndarray:
    """Per seed, components kept in both: sum(mask_A[s] * mask_B[s]); (S, ...) x (S, ...) -> (S,) int.

    Row s of both stacks must be the same seed (use ``shared_over_seeds`` with seed lists to align them).
    """
    a, b = np.asarray(stack_a).astype(bool), np.asarray(stack_b).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"shared_counts: stacks of different shapes {a.shape} and {b.shape}")
    return (a & b).reshape(a.shape[0], -1).sum(axis=1)


@dataclass(frozen=True)
class Shared:
    mean: float
    std: float
    seeds: list[int]
    per_seed: list[int]


def shared_over_seeds(seeds_a: Iterable[int], stack_a: Any, seeds_b: Iterable[int], stack_b: Any) -> Shared:
    """Shared components of two tasks over the seeds both have: mean and std (ddof=0); NaN with no common seed."""
    sa, sb = list(seeds_a), list(seeds_b)
    common = sorted(set(sa) & set(sb))
    if not common:
        return Shared(math.nan, math.nan, [], [])
    a = np.asarray(stack_a)[[sa.index(s) for s in common]]
    b = np.asarray(stack_b)[[sb.index(s) for s in common]]
    counts = shared_counts(a, b)
    return Shared(float(counts.mean()), float(counts.std()), common, [int(c) for c in counts])
