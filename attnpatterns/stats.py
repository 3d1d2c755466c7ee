"""The stability report of s-pruning masks over seeds (``attn stats``): every task's statistics and the heads and
MLPs shared between tasks, as JSON and Markdown. The statistics themselves are in ``survival_stats.py`` (docs/method.md,
Statistics) and the bootstrap of shares in ``bootstrap.py``; both are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from attnpatterns.bootstrap import bootstrap_fractions  # noqa: F401 (re-exported)
from attnpatterns.errors import UserError
from attnpatterns.survival_stats import (  # noqa: F401 (re-exported)
    KAPPA_UNDEFINED_NOTE,
    Q_UNDEFINED_NOTE,
    CochranQ,
    Shared,
    cochrans_q_survival,
    fleiss_kappa_survival,
    kept_per_seed,
    shared_counts,
    shared_over_seeds,
    survival_rate,
    survival_std,
)

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
