"""``attn sweep``: the study's grid as independent jobs over one shared run folder, run here or on a Ray cluster.

A sweep is the work of ``attn run`` cut into jobs with declared inputs, outputs and dependencies::

    pipeline/TASK/seed_S                      fine-tune, s-prune, m-prune one (task, seed)
    survivors/TASK                            super-survivors: AND over the seeds' s-pruning masks
    subnet/TASK/seed_S/METHOD/SUBNET          one subnetwork (structured|magnitude|super x good|random|bad): pruned +
    re-fine-tuned; a super-survivor subnetwork waits for every seed's pipeline and the survivors (its set is drawn
    from all the seeds)
    classify/TASK/seed_S                      classify the maps of every head
    distribution/TASK                         pattern distribution over seeds, super-survivors vs the rest
    report                                    the report of the whole run folder

Every job calls the same library code as ``attn run``: the pipeline's own stage units (:class:`Pipeline`, with its
stamps, so a later ``attn run`` over the folder skips them) and, for a subnetwork,
:func:`attnpatterns.prune.evaluate_subnetworks.run_subnetworks` restricted to that (seed, subnetwork). The results
are therefore the same whichever executor ran them (the test compares a local and a Ray sweep file by file).

A job is done when its declared outputs exist and its done marker ``OUT/.sweep/jobs/<job>.json`` says so for the
same settings; a rerun submits only the jobs that are not done. A job that raises is retried (at most ``retries``
more times; a :class:`UserError` is not retried: it would fail again the same way), every failed attempt's error is
recorded in its marker, and the jobs that depend on a failed job are not submitted.

Executors: ``local`` runs the jobs one after the other in this process, in dependency order; ``ray`` connects to a
running Ray cluster (``ray.init(address=...)``) and submits each ready job as a Ray task with its CPU/GPU request,
so the cluster's own scheduler spreads them. ``processes`` runs ``workers`` jobs at once in processes of this
machine (several training jobs sharing one GPU); with a cost table the jobs go longest remaining chain first, the
order :mod:`attnpatterns.sweep.device_plan` plans. The run folder must be on a file system every worker sees.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from attnpatterns.errors import UserError
from attnpatterns.run.layout import RunLayout
from attnpatterns.sweep.executors import LocalExecutor, ProcessExecutor, RayExecutor
from attnpatterns.sweep.jobs import JOB_FUNCTIONS, is_done, read_marker, run_job, write_marker  # noqa: F401
from attnpatterns.sweep.plan import EXECUTORS, KINDS, SWEEP_DIR, Job, SweepConfig, plan  # noqa: F401

log = logging.getLogger("attnpatterns")

# ------------------------------------------------------------------------------------------------- the driver


@dataclass
class SweepResult:
    out: Path
    jobs: list[Job]
    status: dict[str, str]  # id -> done (before) | ran | failed | blocked
    attempts: dict[str, list[dict]]
    seconds: float

    def ids(self, status: str) -> list[str]:
        return [j.id for j in self.jobs if self.status.get(j.id) == status]

    @property
    def ok(self) -> bool:
        return not self.ids("failed") and not self.ids("blocked")


def job_states(cfg: SweepConfig, jobs: Sequence[Job] | None = None) -> list[tuple[Job, bool]]:
    """(job, done) for every job of the sweep (the ``--dry-run`` listing)."""
    jobs = plan(cfg) if jobs is None else jobs
    dig = cfg.settings_digest()
    return [(j, is_done(cfg, j, dig)) for j in jobs]


def _prepare(cfg: SweepConfig) -> None:
    """What ``attn run`` checks and writes before its stages: the folder's model, the data, ``config.json``."""
    from attnpatterns.io import write_json
    from attnpatterns.run.pipeline import Pipeline

    pipe = Pipeline(cfg.run_config())
    pipe.check_out()
    pipe.preflight_data()
    cfg.out.mkdir(parents=True, exist_ok=True)
    write_json(RunLayout(cfg.out).config, pipe.record())


def run_sweep(
    cfg: SweepConfig,
    executor: str = "local",
    address: str | None = None,
    show_progress: bool = True,
    workers: int = 1,
    costs: str | os.PathLike | None = None,
) -> SweepResult:
    """Run every job that is not done, in dependency order, on ``executor``; retry failures; return what happened.

    ``workers``: processes of the ``processes`` executor. ``costs``: a cost table
    (:mod:`attnpatterns.sweep.device_plan`);
    with it, jobs are submitted longest remaining chain first (the order of ``attn sweep --plan``)."""
    from attnpatterns.io import write_json
    from attnpatterns.progress import progress_iter

    if executor not in EXECUTORS:
        raise UserError(f"unknown executor '{executor}'; use {' or '.join(EXECUTORS)}.")
    t0 = time.perf_counter()
    if executor == "local" and cfg.device.lower().startswith("cuda"):  # on Ray only the workers need one
        from attnpatterns.models import resolve_device

        resolve_device(cfg.device)
    _prepare(cfg)
    jobs = plan(cfg)
    dig = cfg.settings_digest()
    by_id = {j.id: j for j in jobs}
    status: dict[str, str] = {}
    attempts: dict[str, list[dict]] = {}
    for j in jobs:
        if is_done(cfg, j, dig):
            status[j.id] = "done"
    todo = [j for j in jobs if j.id not in status]
    if costs is not None:
        from attnpatterns.sweep.device_plan import load_costs, priority_order

        todo = priority_order(todo, load_costs(costs))
    log.info(
        "sweep %s: %d job(s), %d done already, %d to run on %s",
        cfg.out,
        len(jobs),
        len(jobs) - len(todo),
        len(todo),
        executor,
    )
    ex: Any
    if executor == "local":
        ex = LocalExecutor(cfg)
    elif executor == "processes":
        ex = ProcessExecutor(cfg, workers)
    else:
        ex = RayExecutor(cfg, address)
    max_attempts = 1 + int(cfg.retries)

    def finished(jid: str) -> bool:
        return status.get(jid) in ("done", "ran")

    def block_dependants(jid: str) -> None:
        for j in todo:
            if j.id not in status and jid in j.deps:
                status[j.id] = "blocked"
                block_dependants(j.id)

    def completions() -> Iterator[str]:
        pending = list(todo)
        running: set[str] = set()
        while True:
            for j in list(pending):
                if len(running) >= ex.capacity:
                    break
                if j.id in status:  # blocked meanwhile
                    pending.remove(j)
                    continue
                if all(finished(d) for d in j.deps if d in by_id):
                    pending.remove(j)
                    running.add(j.id)
                    ex.submit(j)
            if not running:
                return
            for jid, outcome in ex.wait():
                running.discard(jid)
                job = by_id[jid]
                tries = attempts.setdefault(jid, [])
                tries.append(
                    {
                        k: outcome.get(k)
                        for k in ("ok", "seconds", "host", "pid", "error", "traceback")
                        if outcome.get(k) is not None
                    }
                )
                if outcome.get("ok"):
                    missing = [o for o in job.outputs if not (cfg.out / o).exists()]
                    if not missing:
                        status[jid] = "ran"
                        write_marker(cfg, job, "done", tries, dig, ex.name)
                        log.info("  %s done in %.1f s", jid, outcome.get("seconds", 0.0))
                        yield jid
                        continue
                    tries[-1].update(
                        ok=False,
                        error=f"outputs not visible to the driver: {', '.join(missing)} (is the run "
                        "folder on a file system every worker shares?)",
                    )
                err = tries[-1].get("error", "")
                if outcome.get("user_error") or len(tries) >= max_attempts:
                    status[jid] = "failed"
                    write_marker(cfg, job, "failed", tries, dig, ex.name)
                    log.error("  %s failed after %d attempt(s): %s", jid, len(tries), err)
                    block_dependants(jid)
                    yield jid
                else:
                    write_marker(cfg, job, "retrying", tries, dig, ex.name)
                    log.warning("  %s failed (attempt %d of %d), retrying: %s", jid, len(tries), max_attempts, err)
                    pending.insert(0, job)

    try:
        for _ in progress_iter(completions(), len(todo), f"sweep ({executor})", show_progress):
            pass
    finally:
        ex.close()
    res = SweepResult(cfg.out, jobs, status, attempts, time.perf_counter() - t0)
    write_json(
        cfg.out / SWEEP_DIR / "last.json",
        {
            "executor": executor,
            "address": address,
            "settings_digest": dig,
            "seconds": round(res.seconds, 2),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            "jobs": {
                j.id: {
                    "status": status.get(j.id, "not run"),
                    "attempts": len(attempts.get(j.id, [])),
                    "seconds": sum(a.get("seconds", 0.0) for a in attempts.get(j.id, []) if a.get("ok")),
                }
                for j in jobs
            },
        },
    )
    return res
