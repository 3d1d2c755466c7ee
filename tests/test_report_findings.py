"""The report's findings and its account of what a run is: verdicts from numbers, deviations from records."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attnpatterns.report import findings as F
from attnpatterns.report.run_settings import RunSettings, deviations
from attnpatterns.report.sections_patterns import balanced


def test_masks_with_a_shared_core_hold_the_stability_finding_and_independent_ones_do_not():
    rng = np.random.default_rng(0)
    core = np.zeros(72, dtype=bool)
    core[:20] = True
    stack = np.stack([core | (rng.random(72) < 0.4) for _ in range(5)])
    f = F.stability_finding("T", stack)
    assert f.verdict == F.HOLDS and "20 super-survivors" not in f.evidence  # the core plus chance survivors
    obs, expected, p = F.super_survivor_test(stack)
    assert obs >= 20 and expected < obs and p < 0.01
    indep = np.stack([rng.random(72) < 0.6 for _ in range(5)])
    assert F.stability_finding("T", indep).verdict == F.FAILS
    assert F.stability_finding("T", indep[:1]).verdict == F.MISSING


def test_kappa_interval_brackets_the_kappa():
    rng = np.random.default_rng(1)
    stack = np.stack([rng.random(72) < 0.5 for _ in range(5)]).astype(int)
    k, lo, hi = F.kappa_interval(stack)
    assert lo <= k <= hi and not math.isnan(lo)


def test_paired_interval_is_the_t_interval():
    from scipy import stats

    d = [0.05, 0.02, 0.04, 0.03]
    m, lo, hi = F.paired_interval(d)
    ref = stats.t.interval(0.95, len(d) - 1, loc=np.mean(d), scale=stats.sem(d))
    assert m == pytest.approx(np.mean(d)) and (lo, hi) == pytest.approx(ref)
    assert math.isnan(F.paired_interval([0.1])[1])


def _per_seed(good, random, bad, method="magnitude"):
    rows = []
    for sub, scores in (("good", good), ("random", random), ("bad", bad)):
        for seed, s in enumerate(scores):
            rows.append(dict(method=method, subnet=sub, setting="retrained", task="MRPC", seed=seed, score=s))
            rows.append(dict(method=method, subnet=sub, setting="pruned", task="MRPC", seed=seed, score=0.0))
    return pd.DataFrame(rows)


def test_subnetwork_verdicts_follow_the_paired_intervals():
    labels = {"magnitude": "m-pruning"}
    clear = F.subnetwork_findings(_per_seed([0.80, 0.82, 0.81], [0.70, 0.71, 0.69], [0.68, 0.69, 0.70]), labels)
    assert [f.verdict for f in clear] == [F.HOLDS] and "3 seeds" in clear[0].evidence
    worse = F.subnetwork_findings(_per_seed([0.60, 0.61, 0.62], [0.70, 0.71, 0.69], [0.80, 0.81, 0.82]), labels)
    assert worse[0].verdict == F.FAILS
    noisy = F.subnetwork_findings(_per_seed([0.80, 0.60, 0.75], [0.70, 0.71, 0.69], [0.70, 0.71, 0.69]), labels)
    assert noisy[0].verdict == F.OPEN


def test_pruned_only_subnetworks_are_not_measured_and_show_the_pruned_gaps():
    """Before any re-fine-tuning, a task with pruned evaluations gets a 'not measured' row whose evidence gives the
    pruned gaps (the finding itself is about the re-fine-tuned scores)."""
    ps = _per_seed([0.80, 0.82], [0.70, 0.71], [0.68, 0.69])
    ps.loc[ps.setting == "pruned", "score"] = ps.loc[ps.setting == "pruned", "subnet"].map(
        {"good": 0.75, "random": 0.70, "bad": 0.65}
    )
    only_pruned = ps[ps.setting == "pruned"]
    (f,) = F.subnetwork_findings(only_pruned, {"magnitude": "m-pruning"})
    assert f.verdict == F.MISSING and f.task == "MRPC"
    assert "not re-fine-tuned yet" in f.evidence
    assert "good - random +0.050 (2 seeds)" in f.evidence and "good - bad +0.100 (2 seeds)" in f.evidence
    assert F.subnetwork_findings(only_pruned, {"structured": "s-pruning"}) == []  # no rows of that method


def _dist(super_counts, all_counts, lo_hi_super, lo_hi_all):
    types = ["vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous"]

    def grp(c, lh):
        return {"counts": c, "ci_low": [x[0] for x in lh], "ci_high": [x[1] for x in lh]}

    return {"types": types, "raw": {"super": grp(super_counts, lo_hi_super), "all": grp(all_counts, lo_hi_all)}}


def test_pattern_verdicts_compare_the_intervals():
    tight = [(0.0, 1.0)] * 5
    # super-survivors: heterogeneous 10% vs 40% of all heads, with intervals apart -> richer in patterns
    d = _dist(
        [40, 10, 30, 10, 10],
        [30, 10, 10, 10, 40],
        [(0, 1), (0, 1), (0.25, 0.35), (0.08, 0.12), (0.08, 0.12)],
        [(0, 1), (0, 1), (0.08, 0.12), (0.05, 0.07), (0.35, 0.45)],
    )
    a, b = F.pattern_findings("MRPC", d, kinds=("raw",))
    assert a.verdict == F.FAILS and "heterogeneous: super-survivors 10.0% (8.0-12.0) vs 40.0%" in a.evidence
    assert b.verdict == F.HOLDS
    d2 = _dist([10, 10, 10, 10, 60], [20, 20, 20, 20, 20], tight, tight)
    a2, b2 = F.pattern_findings("MRPC", d2, kinds=("raw",))
    assert a2.verdict == F.HOLDS and b2.verdict == F.OPEN
    assert F.pattern_findings("MRPC", None)[0].verdict == F.MISSING


def test_deviations_name_every_setting_that_differs_from_the_study():
    rs = RunSettings(profile="paper", profile_description=None)
    assert deviations(rs) == []
    rs.finetune = {"lr": {1e-4: ["MRPC seed 1"]}, "epochs": {3: ["MRPC seed 1"]}}
    rs.train_subsample = {"MRPC": 1280}
    rs.pruning_dev = {"MRPC": (128, 408)}
    rs.floors = {"majority": ["MRPC seed 1 structured"]}
    rs.seeds = {"subnetworks (re-fine-tuned)": {"MRPC": 3}, "fine-tuned models": {"MRPC": 5}}
    rs.classify_examples = {"MRPC": 32}
    d = deviations(rs)
    assert d[0] == "learning rate 0.0001 (the study: 2e-05)"
    assert not any(x.startswith("epochs") for x in d)
    assert "MRPC 1280 examples" in d[1] and "MRPC 128 of 408" in d[2] and "floor 'majority'" in d[3]
    assert d[4] == "subnetworks (re-fine-tuned): MRPC 3 seeds (the study: 5)" and "MRPC 32 dev examples" in d[5]
    assert len(d) == 6
    # a table no seed has reached yet is a deviation too (0 seeds), named for every task of the run
    rs.tasks = ["MRPC", "STS-B"]
    rs.seeds["subnetworks (re-fine-tuned)"] = {}
    assert "subnetworks (re-fine-tuned): MRPC 0, STS-B 0 seeds (the study: 5)" in deviations(rs)
    assert "fine-tuned models: STS-B 0 seeds (the study: 5)" in deviations(rs)


def test_example_grid_takes_turns_over_the_tasks():
    items = [(i, "CoLA", s, None, "") for i in range(4) for s in (1, 2)] + [
        (0, "MRPC", 1, None, ""),
        (1, "RTE", 1, None, ""),
    ]
    order = [(t, i) for i, t, *_ in balanced(items)]
    assert order[:3] == [("CoLA", 0), ("MRPC", 0), ("RTE", 1)]
    assert len(order) == len(items)


def test_the_seeds_line_names_tasks_with_other_seeds_and_unfinished_fine_tunes(tmp_path):
    from attnpatterns.report.build import seeds_line

    def seed(task, s, finished=True):
        d = tmp_path / task / f"seed_{s}"
        (d / "finetuned").mkdir(parents=True)
        if finished:
            (d / "finetuned" / "metrics.json").write_text("{}")
        return d

    same = {t: {s: seed(t, s) for s in (42, 1337)} for t in ("MRPC", "RTE")}
    assert seeds_line(same) == "42, 1337"
    mixed = {**same, "SST-2": {1337: seed("SST-2", 1337), 42: seed("SST-2", 42, finished=False)}}
    assert seeds_line(mixed) == "42, 1337 (SST-2: 1337; 42 still fine-tuning)"


def test_what_this_run_is_names_the_devices_when_the_stages_ran_on_more_than_one(tmp_path):
    import json
    from types import SimpleNamespace

    from attnpatterns.report.run_settings import collect_settings
    from attnpatterns.report.sections_run import section_about

    def seed(task, s, ft_device, refit_device=None):
        d = tmp_path / task / f"seed_{s}"
        (d / "finetuned").mkdir(parents=True)
        (d / "finetuned" / "run.json").write_text(json.dumps({"config": {}, "provenance": {"device": ft_device}}))
        if refit_device:
            cell = d / "subnetworks" / "magnitude" / "good"
            cell.mkdir(parents=True)
            (cell / "retrained.json").write_text(json.dumps({"score": 0.5, "device": refit_device}))
        return d

    one = {"MRPC": {1: seed("MRPC", 1, "cpu", "cpu")}}
    rs = collect_settings(tmp_path, one, {})
    assert rs.devices == {"fine-tuning": {"cpu": {"MRPC"}}, "re-fine-tuned subnetworks": {"cpu": {"MRPC"}}}
    ctx = SimpleNamespace(run_dir=tmp_path, tasks=one, cfg={}, settings=None)
    assert not [b for b in section_about(ctx).blocks if "Where the stages ran" in getattr(b, "caption", "")]

    two = {**one, "RTE": {1: seed("RTE", 1, "cpu", "cuda (NVIDIA H200)")}}
    ctx = SimpleNamespace(run_dir=tmp_path, tasks=two, cfg={}, settings=None)
    blocks = section_about(ctx).blocks
    table = next(b for b in blocks if "Where the stages ran" in getattr(b, "caption", ""))
    assert [list(r) for r in table.rows] == [
        ["fine-tuning", "cpu", "MRPC, RTE"],
        ["re-fine-tuned subnetworks", "cpu", "MRPC"],
        ["re-fine-tuned subnetworks", "cuda (NVIDIA H200)", "RTE"],
    ]
    assert any("bf16" in getattr(b, "text", "") for b in blocks)
    rows = collect_settings(tmp_path, two, {}).devices["re-fine-tuned subnetworks"]
    assert rows == {"cpu": {"MRPC"}, "cuda (NVIDIA H200)": {"RTE"}}


def test_a_set_partly_re_fine_tuned_says_what_it_has_and_keeps_the_pruned_gaps():
    """Good re-fine-tuned on one seed, random and bad not yet: 'not measured', naming the re-fine-tuned subnetworks
    and their seed counts, with the pruned gaps still given; once a common seed has good and random, a verdict."""
    ps = _per_seed([0.80, 0.82], [0.70, 0.71], [0.68, 0.69])
    ps.loc[ps.setting == "pruned", "score"] = ps.loc[ps.setting == "pruned", "subnet"].map(
        {"good": 0.75, "random": 0.70, "bad": 0.65}
    )
    partly = ps[(ps.setting == "pruned") | ((ps.subnet == "good") & (ps.seed == 0))]
    (f,) = F.subnetwork_findings(partly, {"magnitude": "m-pruning"})
    assert f.verdict == F.MISSING
    assert "re-fine-tuned so far: good (1 seed)" in f.evidence and "random (" not in f.evidence
    assert "pruned, before re-fine-tuning: good - random +0.050 (2 seeds)" in f.evidence
    paired = ps[(ps.setting == "pruned") | ((ps.subnet != "bad") & (ps.seed == 0))]
    (g,) = F.subnetwork_findings(paired, {"magnitude": "m-pruning"})
    assert g.verdict == F.OPEN and "good - random +0.100 (1 seed, no interval)" in g.evidence
