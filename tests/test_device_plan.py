"""The device plan (attnpatterns.sweep.device_plan): a fake cost table, checked on the CPU: which jobs share the device,
in which order, and how long the grid takes."""

from __future__ import annotations

import json

import pytest

from attnpatterns.errors import UserError
from attnpatterns.sweep.device_plan import CostTable, chain_lengths, describe, load_costs, priority_order, simulate
from attnpatterns.sweep.plan import Job


def _job(jid, kind, task, deps=(), seeds=None):
    params = {"task": task} | ({"seeds": seeds} if seeds else {})
    return Job(jid, kind, params, tuple(deps), (), ())


def _grid(tasks=("A", "B"), seeds=(1, 2)):
    """The sweep's shape: pipeline per (task, seed), survivors per task, subnet jobs per seed and super jobs."""
    jobs = []
    for t in tasks:
        pipes = [f"pipeline/{t}/seed_{s}" for s in seeds]
        jobs += [_job(p, "pipeline", t) for p in pipes]
        jobs.append(_job(f"survivors/{t}", "survivors", t, pipes))
        for s in seeds:
            jobs += [_job(f"subnet/{t}/seed_{s}/m/{k}", "subnet", t, [f"pipeline/{t}/seed_{s}"]) for k in "grb"]
        jobs += [_job(f"subnet/{t}/super/{k}", "subnet", t, pipes + [f"survivors/{t}"], list(seeds)) for k in "grb"]
    return jobs


COSTS = CostTable({"pipeline": {"A": 100.0, "B": 10.0}, "survivors": 1.0, "subnet": {"A": 20.0, "B": 2.0}}, slots=3)


def test_the_schedule_respects_dependencies_and_the_number_of_processes():
    jobs = _grid()
    s = simulate(jobs, COSTS, 3)
    end = {p.job: p.end for p in s.placed}
    start = {p.job: p.start for p in s.placed}
    assert sorted(end) == sorted(j.id for j in jobs)
    for j in jobs:
        assert all(start[j.id] >= end[d] for d in j.deps)
    events = sorted({p.start for p in s.placed})
    assert max(sum(p.start <= t < p.end for p in s.placed) for t in events) <= 3
    chain = max(chain_lengths(jobs, COSTS).values())
    work = sum(p.end - p.start for p in s.placed)
    assert max(chain, work / 3) <= s.makespan <= work
    # the super jobs cost their per-seed figure times the seeds they cover
    assert end["subnet/A/super/g"] - start["subnet/A/super/g"] == 40.0


def test_the_longest_chain_goes_first():
    jobs = _grid()
    order = [j.id for j in priority_order(jobs, COSTS)]
    assert order[:2] == ["pipeline/A/seed_1", "pipeline/A/seed_2"]
    assert order.index("survivors/A") < order.index("subnet/A/super/g")  # a dependency before its dependants
    s = simulate(jobs, COSTS, 3)
    first = sorted(s.placed, key=lambda p: (p.start, p.slot))[:3]
    assert [p.job for p in first] == ["pipeline/A/seed_1", "pipeline/A/seed_2", "pipeline/B/seed_1"]
    # A's pipelines end at 100 (B's work, 45 s, fits beside them on the third process); then A's survivors (1 s) and
    # its 240 s of subnetworks on 3 processes: 100 + 1 + 240 / 3 = 181, the best any order can do here
    assert s.makespan == pytest.approx(181.0)


def test_more_processes_never_take_longer_and_the_budget_is_judged():
    jobs = _grid(tasks=("A", "B", "C"), seeds=(1, 2, 3))
    costs = CostTable({"pipeline": 50.0, "survivors": 1.0, "subnet": 10.0}, slots=8)
    spans = [simulate(jobs, costs, n).makespan for n in (1, 2, 4, 8, 16)]
    assert spans == sorted(spans, reverse=True) and spans[0] == sum(costs.of(j) for j in jobs)
    text = describe(simulate(jobs, costs, 8), costs, budget=spans[3] - 1, jobs=jobs)
    assert "does not fit" in text and "process 7" in text and "note:" not in text
    costs.slots = 4
    assert "measured with 4 process(es) sharing the device; with 8" in describe(simulate(jobs, costs, 8), costs)
    assert ": fits" in describe(simulate(jobs, costs, 8), costs, budget=spans[3], jobs=jobs)


def test_a_bad_cost_table_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no such cost table"):
        load_costs(tmp_path / "none.json")
    (tmp_path / "c.json").write_text(json.dumps({"seconds": {"pipline": 1}}))
    with pytest.raises(UserError, match="unknown job kind"):
        load_costs(tmp_path / "c.json")
    (tmp_path / "c.json").write_text(json.dumps({"seconds": {"pipeline": {"A": 1}, "survivors": 1, "subnet": 1}}))
    with pytest.raises(UserError, match="no 'pipeline' seconds for task B"):
        simulate(_grid(), load_costs(tmp_path / "c.json"), 2)
