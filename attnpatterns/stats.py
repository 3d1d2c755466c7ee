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
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

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


# --------------------------------------------------------------------------------------------------------------
# Everything for a set of tasks
# --------------------------------------------------------------------------------------------------------------


@dataclass
class ComponentStats:
    """Statistics of one component type (heads or MLPs) of one task."""

    total: int  # components per seed (L*H or L)
    kept_per_seed: list[int]
    mean_kept: float
    std_kept: float
    fleiss_kappa: float
    cochrans_q_seeds: CochranQ
    cochrans_q_components: CochranQ
    survival_std: list  # per component, (L, H) nested list or (L,)
    mean_survival_std: float
    super_survivors: int
    in_between: int
    never_kept: int
    notes: list[str] = field(default_factory=list)


def component_stats(stack: Any, label: str) -> ComponentStats:
    """All statistics of one (S, ...) stack; ``label`` (e.g. "MRPC heads") names it in errors and notes."""
    from attnpatterns.prune.survivors import split_survivors

    s = np.asarray(stack).astype(bool)
    kappa = fleiss_kappa_survival(s, label)
    q_seeds = cochrans_q_survival(s, "seeds", label)
    q_comp = cochrans_q_survival(s, "components", label)
    notes = []
    constant = not s.any() or s.all()  # one outcome everywhere: kappa and Q are 0/0
    if constant:
        what = (
            (
                "pruned in every seed; the masks carry no information (a model that meets the threshold with "
                "everything masked, e.g. a majority-class fine-tune)"
            )
            if not s.any()
            else "kept in every seed; pruning never removed one"
        )
        notes.append(f"{label}: every component is {what}; kappa and Cochran's Q are undefined")
    elif math.isnan(kappa):
        notes.append(f"{label}: {KAPPA_UNDEFINED_NOTE}")
    if math.isnan(q_seeds.statistic) and not constant:
        notes.append(f"{label}: {Q_UNDEFINED_NOTE} (cases = components, treatments = seeds)")
    if math.isnan(q_comp.statistic) and not constant:
        notes.append(f"{label}: {Q_UNDEFINED_NOTE} (cases = seeds, treatments = components)")
    kept = kept_per_seed(s)
    std = survival_std(s)
    split = split_survivors(s).counts
    return ComponentStats(
        total=int(np.prod(s.shape[1:])),
        kept_per_seed=[int(k) for k in kept],
        mean_kept=float(kept.mean()),
        std_kept=float(kept.std()),
        fleiss_kappa=kappa,
        cochrans_q_seeds=q_seeds,
        cochrans_q_components=q_comp,
        survival_std=std.round(6).tolist(),
        mean_survival_std=float(std.mean()),
        super_survivors=split["super"],
        in_between=split["in_between"],
        never_kept=split["never"],
        notes=notes,
    )


@dataclass
class TaskStats:
    task: str
    seeds: list[int]
    heads: ComponentStats | None
    mlps: ComponentStats | None


@dataclass
class StatsReport:
    tasks: dict[str, TaskStats]
    shared_heads: dict[str, Shared]  # "A/B" (A <= B in task order), A/A = surviving heads
    shared_mlps: dict[str, Shared]
    source: str | None = None
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``attn stats``: NaN becomes null, every std is ddof=0."""
        tasks = {}
        for name, t in self.tasks.items():
            d: dict[str, Any] = {"seeds": t.seeds}
            for kind, c in (("heads", t.heads), ("mlps", t.mlps)):
                if c is None:
                    d.update(
                        {
                            f"fleiss_kappa_{kind}": None,
                            f"super_survivor_{kind}": None,
                            f"mean_surviving_{kind}": None,
                            f"std_surviving_{kind}": None,
                        }
                    )
                    d[kind] = None
                    continue
                d[f"fleiss_kappa_{kind}"] = c.fleiss_kappa
                d[f"super_survivor_{kind}"] = c.super_survivors
                d[f"mean_surviving_{kind}"] = c.mean_kept
                d[f"std_surviving_{kind}"] = c.std_kept
                d[f"cochrans_q_{kind}"] = asdict(c.cochrans_q_seeds)
                d[kind] = asdict(c)
            d["notes"] = [n for c in (t.heads, t.mlps) if c is not None for n in c.notes]
            tasks[name] = d
        return _nan_to_none(
            {
                "source": self.source,
                "model": self.model,
                "attnpatterns_version": _version(),
                "conventions": {
                    "kept": "1 in head_mask.npy / listed in mask.json",
                    "std": "ddof=0 (population) over seeds",
                    "fleiss_kappa": "statsmodels fleiss_kappa(method='fleiss'), subjects = components, raters = seeds, "
                    "categories = kept/pruned; null when undefined",
                    "cochrans_q": "statsmodels cochrans_q; cochrans_q_heads: cases = heads, treatments = seeds; "
                    "heads.cochrans_q_components: cases = seeds, treatments = heads",
                    "shared": "sum(mask_A[seed] * mask_B[seed]) over the seeds both tasks have; A/A = surviving",
                },
                "tasks": tasks,
                "shared_heads": {k: asdict(v) for k, v in self.shared_heads.items()},
                "shared_mlps": {k: asdict(v) for k, v in self.shared_mlps.items()},
            }
        )


def compute_stats(
    table: Mapping[str, Mapping[int, tuple[Any, Any]]], source: str | None = None, model: str | None = None
) -> StatsReport:
    """Statistics of every task of a mask table {task: {seed: (head_mask or None, mlp_mask or None)}}."""
    from attnpatterns.prune.mask_algebra import stack_seeds

    tasks: dict[str, TaskStats] = {}
    stacks: dict[str, tuple[list[int], Any, Any]] = {}
    for task, per_seed in table.items():
        if len(per_seed) < 2:
            raise UserError(
                f"task {task}: {len(per_seed)} seed(s) ({sorted(per_seed)}); kappa and Cochran's Q need at least "
                f"two seeds. Prune more seeds of {task} or leave it out."
            )
        seeds, hs, ms = stack_seeds(per_seed)
        stacks[task] = (seeds, hs, ms)
        tasks[task] = TaskStats(
            task=task,
            seeds=seeds,
            heads=component_stats(hs, f"{task} heads") if hs is not None else None,
            mlps=component_stats(ms, f"{task} MLPs") if ms is not None else None,
        )
    names = list(tasks)
    shared_h: dict[str, Shared] = {}
    shared_m: dict[str, Shared] = {}
    for i, a in enumerate(names):
        for b in names[i:]:
            sa, ha, ma = stacks[a]
            sb, hb, mb = stacks[b]
            if ha is not None and hb is not None:
                shared_h[f"{a}/{b}"] = shared_over_seeds(sa, ha, sb, hb)
            if ma is not None and mb is not None:
                shared_m[f"{a}/{b}"] = shared_over_seeds(sa, ma, sb, mb)
    return StatsReport(tasks=tasks, shared_heads=shared_h, shared_mlps=shared_m, source=source, model=model)


def _version() -> str:
    from attnpatterns import __version__

    return __version__


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------------------


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pm(mean: float, std: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_markdown(report: StatsReport) -> str:
    """Two Markdown tables: per-task stability, and shared heads between tasks (mean ± std over seeds)."""
    lines = []
    if report.source:
        lines += [f"Masks: `{report.source}`" + (f" (model `{report.model}`)" if report.model else ""), ""]
    lines += [
        "| task | seeds | heads kept (mean ± std) | κ heads | Q over seeds (p) | super heads | in-between | never "
        "| mean per-head std | MLPs kept (mean ± std) | κ MLPs | super MLPs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in report.tasks.items():
        h, m = t.heads, t.mlps
        cells = [name, str(len(t.seeds))]
        if h is not None:
            q = h.cochrans_q_seeds
            qs = "n/a" if math.isnan(q.statistic) else f"{q.statistic:.1f} ({q.pvalue:.2g})"
            cells += [
                f"{_pm(h.mean_kept, h.std_kept)} / {h.total}",
                _f(h.fleiss_kappa),
                qs,
                str(h.super_survivors),
                str(h.in_between),
                str(h.never_kept),
                _f(h.mean_survival_std),
            ]
        else:
            cells += ["n/a"] * 7
        if m is not None:
            cells += [f"{_pm(m.mean_kept, m.std_kept)} / {m.total}", _f(m.fleiss_kappa), str(m.super_survivors)]
        else:
            cells += ["n/a"] * 3
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Q over seeds: Cochran's Q of head survival with cases = heads and treatments = seeds (do the seeds keep "
        "different shares of the heads?). The other orientation (cases = seeds, treatments = heads: do the heads "
        "differ in survival?) is `heads.cochrans_q_components` in the JSON, beside `cochrans_q_heads` (this one).",
    ]
    names = list(report.tasks)
    for what, shared in (("heads", report.shared_heads), ("MLPs", report.shared_mlps)):
        if not shared:
            continue
        lines += [
            "",
            f"Shared {what}, sum(mask_A[seed] * mask_B[seed]) over common seeds, mean ± std "
            f"(diagonal: surviving {what}):",
            "",
        ]
        lines.append("| | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for a in names:
            row = [a]
            for b in names:
                s = shared.get(f"{a}/{b}", shared.get(f"{b}/{a}"))
                row.append("" if s is None else _pm(s.mean, s.std))
            lines.append("| " + " | ".join(row) + " |")
    notes = [n for t in report.tasks.values() for c in (t.heads, t.mlps) if c is not None for n in c.notes]
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


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
