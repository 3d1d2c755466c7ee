"""Plan a sweep on one shared device (a GPU lent for minutes): which jobs share it, in which order, and how long.

A **cost table** (JSON) gives the measured seconds of each job kind on the device when ``slots`` processes share it
(``bench/bench_sweep.py --device cuda`` measures them; a job's cost per task where it depends on the task)::

    {"device": "NVIDIA H200", "slots": 8,
     "seconds": {"pipeline": {"MRPC": 41.0, "STS-B": 60.0}, "subnet": {"MRPC": 8.1}, "survivors": 0.5,
                 "classify": {"MRPC": 3.0}, "distribution": 1.0, "report": 20.0}}

A kind's entry is one number for every task or a {task: seconds} table; a ``subnet`` job covering several seeds costs
its per-seed figure times the seeds it covers (the sweep's own subnetwork jobs cover one seed each). The plan is list
scheduling by the longest remaining chain ("critical path first"): whenever a process is free, the ready job with the
longest chain of dependants after it starts. ``attn sweep --executor processes --workers N --costs F`` submits the jobs
in the same order, so the plan is what the device run does, up to the measurement noise of the costs.
"""

from __future__ import annotations

import heapq
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from attnpatterns.errors import UserError
from attnpatterns.sweep.plan import KINDS, Job


@dataclass
class CostTable:
    seconds: dict[str, float | dict[str, float]]
    slots: int = 1
    device: str = ""
    source: str = ""

    def of(self, job: Job) -> float:
        if job.kind not in self.seconds:
            raise UserError(
                f"the cost table {self.source or ''} has no '{job.kind}' seconds (job {job.id}); "
                f"give every kind: {', '.join(KINDS)}."
            )
        c = self.seconds[job.kind]
        if isinstance(c, Mapping):
            task = job.params.get("task")
            if task not in c:
                raise UserError(f"the cost table has no '{job.kind}' seconds for task {task} (job {job.id}).")
            c = c[task]
        seeds = job.params.get("seeds")
        return float(c) * (len(seeds) if job.kind == "subnet" and isinstance(seeds, list) and seeds else 1)


def load_costs(path: str | os.PathLike) -> CostTable:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"{p}: no such cost table; measure one with bench/bench_sweep.py --device cuda.") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{p}: not JSON ({e.msg}, line {e.lineno}); see attnpatterns/sweep/device_plan.py.") from None
    if not isinstance(d, dict) or not isinstance(d.get("seconds"), dict):
        raise UserError(f"{p}: a cost table is {{'slots': N, 'seconds': {{kind: s or {{task: s}}}}}}.")
    unknown = sorted(set(d["seconds"]) - set(KINDS))
    if unknown:
        raise UserError(f"{p}: unknown job kind(s) {', '.join(unknown)}; kinds are {', '.join(KINDS)}.")
    return CostTable(d["seconds"], int(d.get("slots", 1)), str(d.get("device", "")), str(p))


def chain_lengths(jobs: Sequence[Job], cost: CostTable) -> dict[str, float]:
    """Per job: its cost plus the longest chain of dependants after it (seconds)."""
    after: dict[str, list[str]] = {j.id: [] for j in jobs}
    for j in jobs:
        for d in j.deps:
            if d in after:
                after[d].append(j.id)
    own = {j.id: cost.of(j) for j in jobs}
    memo: dict[str, float] = {}
    for j in reversed(jobs):  # the plan lists dependencies before dependants
        memo[j.id] = own[j.id] + max((memo[k] for k in after[j.id]), default=0.0)
    return memo


def priority_order(jobs: Sequence[Job], cost: CostTable) -> list[Job]:
    """The jobs by longest remaining chain first (ties: the plan's order); dependencies still come first, since a
    job's chain is longer than any of its dependants'."""
    chain = chain_lengths(jobs, cost)
    pos = {j.id: i for i, j in enumerate(jobs)}
    return sorted(jobs, key=lambda j: (-chain[j.id], pos[j.id]))


@dataclass
class Placed:
    job: str
    slot: int
    start: float
    end: float


@dataclass
class Schedule:
    slots: int
    placed: list[Placed] = field(default_factory=list)

    @property
    def makespan(self) -> float:
        return max((p.end for p in self.placed), default=0.0)

    def busy(self) -> list[float]:
        b = [0.0] * self.slots
        for p in self.placed:
            b[p.slot] += p.end - p.start
        return b


def simulate(jobs: Sequence[Job], cost: CostTable, slots: int | None = None) -> Schedule:
    """What the sweep driver does with ``slots`` processes and jobs submitted in :func:`priority_order`: a free
    process takes the first ready job of that order."""
    n = int(slots or cost.slots)
    if n < 1:
        raise UserError(f"--workers must be at least 1 (got {n}).")
    order = priority_order(jobs, cost)
    ids = {j.id for j in jobs}
    end_of: dict[str, float] = {}
    pending = list(order)
    free = [(0.0, s) for s in range(n)]  # (time free, slot)
    heapq.heapify(free)
    running: list[tuple[float, str]] = []
    sched = Schedule(n)
    t = 0.0
    while pending:
        t_free, slot = heapq.heappop(free)
        t = max(t, t_free)
        while True:
            ready = [j for j in pending if all(d in end_of and end_of[d] <= t for d in j.deps if d in ids)]
            if ready:
                break
            later = sorted(e for e, _ in running if e > t)
            if not later:
                blocked = ", ".join(j.id for j in pending[:3])
                raise UserError(f"the jobs {blocked} wait on jobs that are not in the plan.")
            t = later[0]
        j = ready[0]
        pending.remove(j)
        end = t + cost.of(j)
        end_of[j.id] = end
        running.append((end, j.id))
        sched.placed.append(Placed(j.id, slot, t, end))
        heapq.heappush(free, (end, slot))
    return sched


def duration(s: float) -> str:
    """Seconds as a reader wants them: 95 s, 12.5 min, 39.5 h."""
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def describe(sched: Schedule, cost: CostTable, budget: float | None = None, jobs: Sequence[Job] = ()) -> str:
    """The plan in words: makespan, the critical chain, each process's load, the first jobs of each process."""
    busy = sched.busy()
    total = sum(busy)
    chain = max(chain_lengths(jobs, cost).values(), default=0.0) if jobs else 0.0
    lines = [
        f"{len(sched.placed)} job(s) on {sched.slots} process(es) sharing {cost.device or 'the device'}: "
        f"{duration(sched.makespan)} from start to end (work {duration(total)}; the longest chain "
        f"{duration(chain)}; lower bound {duration(max(chain, total / sched.slots))})",
    ]
    if cost.slots and cost.slots != sched.slots:
        lines.append(
            f"note: the costs were measured with {cost.slots} process(es) sharing the device; with {sched.slots} each "
            f"job's time differs (measure with bench/bench_sweep.py --share {sched.slots} --costs-out F)"
        )
    if budget is not None:
        verdict = "fits" if sched.makespan <= budget else "does not fit"
        lines.append(f"budget {duration(budget)}: {verdict}")
    for s in range(sched.slots):
        mine = sorted((p for p in sched.placed if p.slot == s), key=lambda p: p.start)
        head = ", ".join(p.job for p in mine[:3]) + (f", ... ({len(mine)} jobs)" if len(mine) > 3 else "")
        lines.append(f"  process {s}: busy {duration(busy[s])}: {head}")
    return "\n".join(lines)
