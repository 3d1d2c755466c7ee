"""The study's three findings, tested on a run's own numbers: one verdict per (finding, task), with the test or
interval behind it.

1. **Stability** (s-pruning): the masks vary over seeds (the study's bert-base Fleiss' kappa is 0.18-0.37 on the
   nine GLUE tasks, below "substantial" agreement, 0.61), yet more heads survive in every seed than chance gives.
   Tested by the kappa's 95% bootstrap interval over heads and a permutation test of the super-survivor count
   (each seed's mask shuffled over the heads, its size kept).
2. **Subnetworks**: after re-fine-tuning, good subnetworks score above random and bad ones of the same size.
   Tested by the mean per-seed difference (good - random, good - bad; same seed) with its 95% t-interval.
3. **Patterns**: super-survivors are no richer in interpretable patterns than all heads (their heterogeneous share
   is not lower), and the bert-base observation that they hold more block and vertical+diagonal maps.
   Tested by the 95% bootstrap intervals (over seeds and examples) of each share, super-survivors vs all heads.

Verdicts: ``holds``, ``does not hold``, ``not resolved`` (the interval straddles the line), ``not measured``.
Pure functions of arrays and of the records a run folder holds; the report shows them as its first section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from attnpatterns.prune.subnetworks import SUBNETS

HOLDS, FAILS, OPEN, MISSING = "holds", "does not hold", "not resolved", "not measured"
SUBSTANTIAL = 0.61  # Landis and Koch's lower bound of "substantial" agreement


@dataclass(frozen=True)
class Finding:
    finding: str
    task: str
    verdict: str
    evidence: str


# ------------------------------------------------------------------------------------------------- 1. stability


def kappa_interval(stack: np.ndarray, draws: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Fleiss' kappa of a (seeds, components) 0/1 stack and its 95% percentile bootstrap interval over components."""
    from attnpatterns.stats import fleiss_kappa_survival

    s = np.asarray(stack).reshape(len(stack), -1).astype(int)
    k = fleiss_kappa_survival(s)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(draws):
        idx = rng.integers(0, s.shape[1], s.shape[1])
        b = s[:, idx]
        if b.all() or not b.any():
            continue
        with np.errstate(all="ignore"):
            v = fleiss_kappa_survival(b)
        if not math.isnan(v):
            vals.append(v)
    if not vals:
        return k, math.nan, math.nan
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return k, float(lo), float(hi)


def super_survivor_test(stack: np.ndarray, draws: int = 2000, seed: int = 0) -> tuple[int, float, float]:
    """Observed super-survivors (kept in every seed), the mean count when each seed keeps as many components drawn
    at random, and the permutation p-value P(count >= observed)."""
    s = np.asarray(stack).reshape(len(stack), -1).astype(bool)
    observed = int(s.all(axis=0).sum())
    rng = np.random.default_rng(seed)
    n = s.shape[1]
    counts = np.empty(draws)
    for i in range(draws):
        keep = np.ones(n, dtype=bool)
        for row in s:
            perm = np.zeros(n, dtype=bool)
            perm[rng.choice(n, int(row.sum()), replace=False)] = True
            keep &= perm
        counts[i] = keep.sum()
    p = float((np.sum(counts >= observed) + 1) / (draws + 1))
    return observed, float(counts.mean()), p


def stability_finding(task: str, stack: np.ndarray | None) -> Finding:
    name = "s-pruning masks vary over seeds, with more super-survivors than chance"
    if stack is None or len(stack) < 2:
        return Finding(name, task, MISSING, "fewer than two finished s-pruning seeds")
    s = np.asarray(stack).reshape(len(stack), -1)
    if s.all() or not s.any():
        return Finding(name, task, MISSING, "every seed kept (or pruned) every head: kappa is undefined")
    k, lo, hi = kappa_interval(s)
    obs, expected, p = super_survivor_test(s)
    varies = hi < SUBSTANTIAL
    core = p < 0.05
    verdict = HOLDS if varies and core else (FAILS if (lo >= SUBSTANTIAL or p >= 0.05) else OPEN)
    ci = f" (95% CI {lo:.2f} to {hi:.2f}, bootstrap over heads)" if not math.isnan(lo) else ""
    return Finding(
        name,
        task,
        verdict,
        f"Fleiss' kappa {k:.2f}{ci} over {len(s)} seeds; {obs} super-survivors of {s.shape[1]} heads against "
        f"{expected:.1f} for random masks of the same sizes (permutation p = {p:.3g})",
    )


# ------------------------------------------------------------------------------------------------- 2. subnetworks


def paired_interval(diffs: Sequence[float]) -> tuple[float, float, float]:
    """Mean of per-seed differences and its 95% t-interval (nan bounds with fewer than two seeds)."""
    from scipy.stats import t

    d = np.asarray(diffs, dtype=float)
    m = float(d.mean())
    if len(d) < 2:
        return m, math.nan, math.nan
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    q = float(t.ppf(0.975, len(d) - 1))
    return m, m - q * se, m + q * se


def _paired_diffs(frame: Any) -> dict[str, list[float]]:
    """Per-seed score differences good - random and good - bad of one (task, method, setting) frame, over the
    seeds both subnetworks have: {"random": [...], "bad": [...]} (a pair without common seeds left out)."""
    by = {s: g.set_index("seed")["score"] for s, g in frame.groupby("subnet")}
    out = {}
    for other in ("random", "bad"):
        if "good" in by and other in by:
            common = sorted(set(by["good"].index) & set(by[other].index))
            if common:
                out[other] = [float(by["good"][s] - by[other][s]) for s in common]
    return out


def _seeds(n: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} seed{'s' if n > 1 else ''}"


def _pruned_gaps(before: Any) -> str:
    """'pruned, before re-fine-tuning: good - random +x (n seeds), good - bad +y (n seeds)': the mean per-seed gaps
    of the pruned evaluations, shown while the re-fine-tuned ones are missing (the study's finding is about those)."""
    parts = [f"good - {other} {np.mean(d):+.3f} ({_seeds(len(d))})" for other, d in _paired_diffs(before).items()]
    return "pruned, before re-fine-tuning: " + (", ".join(parts) if parts else "no good/random/bad pair")


def _partly_retrained(sub: Any, before: Any) -> str:
    """'re-fine-tuned so far: good (1 seed); no good / random or good / bad pair on a common seed yet', then the
    pruned gaps where there are pruned evaluations: the evidence of a set whose re-fine-tuning is under way."""
    seeds = sub.groupby("subnet")["seed"].nunique()
    have = ", ".join(f"{s} ({_seeds(int(seeds[s]))})" for s in SUBNETS if s in seeds)
    text = f"re-fine-tuned so far: {have}; no good / random or good / bad pair on a common seed yet"
    return text + ("; " + _pruned_gaps(before) if not before.empty else "")


def subnetwork_findings(per_seed: Any, method_labels: dict[str, str]) -> list[Finding]:
    """From the long per-seed frame of :func:`attnpatterns.report.tables.collect_run`: for each task and pruning
    method, good vs random and good vs bad after re-fine-tuning."""
    out: list[Finding] = []
    if per_seed is None or per_seed.empty:
        return out
    r = per_seed[per_seed["setting"] == "retrained"]
    pruned = per_seed[per_seed["setting"] == "pruned"]
    for task in sorted(per_seed["task"].unique()):
        for method, label in method_labels.items():
            sub = r[(r["task"] == task) & (r["method"] == method)]
            before = pruned[(pruned["task"] == task) & (pruned["method"] == method)]
            name = f"{label}: good subnetworks re-fine-tune better than random and bad"
            if sub.empty:
                if not before.empty:
                    out.append(Finding(name, task, MISSING, "not re-fine-tuned yet; " + _pruned_gaps(before)))
                continue
            parts, verdicts = [], []
            for other, diffs in _paired_diffs(sub).items():
                m, lo, hi = paired_interval(diffs)
                if math.isnan(lo):
                    parts.append(f"good - {other} {m:+.3f} (1 seed, no interval)")
                    verdicts.append(OPEN)
                    continue
                parts.append(f"good - {other} {m:+.3f} (95% t-interval {lo:+.3f} to {hi:+.3f}, {len(diffs)} seeds)")
                verdicts.append(HOLDS if lo > 0 else FAILS if hi < 0 else OPEN)
            if not verdicts:  # some subnetworks re-fine-tuned, but no good with random or bad on a common seed yet
                out.append(Finding(name, task, MISSING, _partly_retrained(sub, before)))
                continue
            verdict = HOLDS if all(v == HOLDS for v in verdicts) else FAILS if FAILS in verdicts else OPEN
            out.append(Finding(name, task, verdict, "; ".join(parts)))
    return out


# ------------------------------------------------------------------------------------------------- 3. patterns


def _share(group: dict, i: int) -> tuple[float, float | None, float | None]:
    c = np.asarray(group["counts"], dtype=float)
    f = float(c[i] / c.sum()) if c.sum() > 0 else math.nan
    lo, hi = group.get("ci_low"), group.get("ci_high")
    return f, (float(lo[i]) if lo else None), (float(hi[i]) if hi else None)


def _compare(sup: dict, all_: dict, i: int) -> tuple[str, str]:
    """'above', 'below' or 'overlap' (intervals), and the text 'super x% (a-b) vs all y% (c-d)'."""
    fs, ls, hs = _share(sup, i)
    fa, la, ha = _share(all_, i)

    def pct(f: float, lo: float | None, hi: float | None) -> str:
        return f"{100 * f:.1f}%" + (f" ({100 * lo:.1f}-{100 * hi:.1f})" if lo is not None and hi is not None else "")

    txt = f"{pct(fs, ls, hs)} vs {pct(fa, la, ha)}"
    if ls is None or la is None or hs is None or ha is None:
        return ("above" if fs > fa else "below" if fs < fa else "overlap"), txt + " (no intervals)"
    if ls > ha:
        return "above", txt
    if hs < la:
        return "below", txt
    return "overlap", txt


def pattern_findings(task: str, dist: dict | None, kinds: Sequence[str] = ("raw", "normed")) -> list[Finding]:
    """From a classify stage's ``distribution.json``: the two pattern findings for each kind of map."""
    name_a = "super-survivors are no richer in interpretable patterns than all heads"
    name_b = "super-survivors hold more block and vertical+diagonal maps (bert-base)"
    out: list[Finding] = []
    if dist is None:
        return [Finding(name_a, task, MISSING, "no pattern distribution (classify stage)")]
    types = list(dist["types"])
    for kind in kinds:
        k = dist.get(kind)
        if not k or not sum(k["super"]["counts"]):
            out.append(Finding(name_a, f"{task} {kind}", MISSING, "no super-survivor maps"))
            continue
        sup, all_ = k["super"], k["all"]
        rel, txt = _compare(sup, all_, types.index("heterogeneous"))
        # "no richer": their heterogeneous share is not below that of all heads
        out.append(
            Finding(
                name_a,
                f"{task} {kind}",
                FAILS if rel == "below" else HOLDS,
                f"heterogeneous: super-survivors {txt} of all heads",
            )
        )
        rels, txts = [], []
        for t in ("block", "vertical+diagonal"):
            r, tx = _compare(sup, all_, types.index(t))
            rels.append(r)
            txts.append(f"{t} {tx}")
        verdict = HOLDS if all(r == "above" for r in rels) else FAILS if "below" in rels else OPEN
        out.append(Finding(name_b, f"{task} {kind}", verdict, "; ".join(txts) + " (super-survivors vs all heads)"))
    return out
