"""Running one job of a sweep (the pipeline's own units, with their stamps) and its done marker."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from attnpatterns.errors import UserError
from attnpatterns.sweep.plan import PIPELINE_STAGES, Job, SweepConfig

log = logging.getLogger("attnpatterns")

# ------------------------------------------------------------------------------------------------- running one job


def _pick(units, key: str):
    for u in units:
        if u.key == key:
            return u
    raise RuntimeError(f"no pipeline unit '{key}' (the pipeline's stage units changed?)")


def _run_units(pipe, stage: str, key: str) -> None:
    """One unit of one pipeline stage, with the pipeline's own skip/stale/stamp logic."""
    unit = _pick(pipe.units(stage), key)
    pipe.run_stage(stage, [unit], 1, 1)


def _job_pipeline(cfg: SweepConfig, pipe, job: Job) -> None:
    key = f"{job.params['task']}/seed_{job.params['seed']}"
    for stage in PIPELINE_STAGES:
        _run_units(pipe, stage, key)


def _job_survivors(cfg: SweepConfig, pipe, job: Job) -> None:
    _run_units(pipe, "survivors", job.params["task"])


def _job_subnet(cfg: SweepConfig, pipe, job: Job) -> None:
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    p = job.params
    # the pipeline's own subnetworks unit of (task, method), narrowed to one (seed, subnetwork): masks are drawn
    # per (seed, task, method, subnet) and the super sets from all seeds, so a result does not depend on what else
    # one call covers
    unit = _pick(pipe.units_subnetworks(), f"{p['task']}/{p['method']}")
    kw = dict(unit.config) | {
        "run": cfg.out,
        "device": cfg.device,
        "data_dir": cfg.data_dir,
        "seeds": list(p["seeds"]),
        "subnets": (p["subnet"],),
    }
    if p["method"] == "super":  # the super set (and its random / bad draws) from every seed of the unit
        kw["super_from"] = kw.get("super_from") or list(unit.config["seeds"])
    if list(kw.get("settings", [])) != list(p["settings"]):
        raise RuntimeError(
            f"job {job.id}: planned settings {p['settings']} but the pipeline asks for {kw.get('settings')}"
        )
    sc = SubnetworkConfig(**{k: v for k, v in kw.items() if k in SubnetworkConfig.__dataclass_fields__})
    run_subnetworks(sc, show_progress=False)


def _job_classify(cfg: SweepConfig, pipe, job: Job) -> None:
    _run_units(pipe, "classify", f"{job.params['task']}/seed_{job.params['seed']}")


def _job_distribution(cfg: SweepConfig, pipe, job: Job) -> None:
    _run_units(pipe, "classify", f"{job.params['task']}/distribution")


def _job_report(cfg: SweepConfig, pipe, job: Job) -> None:
    _run_units(pipe, "report", "report")


JOB_FUNCTIONS: dict[str, Callable[[SweepConfig, Any, Job], None]] = {
    "pipeline": _job_pipeline,
    "survivors": _job_survivors,
    "subnet": _job_subnet,
    "classify": _job_classify,
    "distribution": _job_distribution,
    "report": _job_report,
}


def run_job(cfg: SweepConfig, job: Job, threads: int | None = None) -> dict:
    """Run ``job`` here and return its outcome; never raises (the error and its traceback are in the outcome).

    Used as is by both executors (a Ray task is this function on a worker)."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"id": job.id, "host": socket.gethostname(), "pid": os.getpid()}
    try:
        if threads is not None:
            import torch

            torch.set_num_threads(max(1, int(threads)))
        from attnpatterns.run.pipeline import Pipeline

        JOB_FUNCTIONS[job.kind](cfg, Pipeline(cfg.run_config()), job)
        missing = [o for o in job.outputs if not (cfg.out / o).exists()]
        if missing:
            raise RuntimeError(f"job {job.id} finished without writing {', '.join(missing)}")
        out.update(ok=True)
    except BaseException as e:  # noqa: BLE001 - a job's failure is data for the driver; Ctrl-C still stops it
        if isinstance(e, KeyboardInterrupt):
            raise
        out.update(
            ok=False,
            user_error=isinstance(e, UserError),
            error=f"{type(e).__name__}: {e}",
            traceback=traceback.format_exc()[-4000:],
        )
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


# ------------------------------------------------------------------------------------------------- markers


def is_done(cfg: SweepConfig, job: Job, digest: str | None = None) -> bool:
    """Done = every declared output exists and the marker says done for these settings."""
    m = job.marker(cfg.out)
    if not m.is_file() or not all((cfg.out / o).exists() for o in job.outputs):
        return False
    try:
        rec = json.loads(m.read_text())
    except (OSError, ValueError):
        return False
    return rec.get("status") == "done" and rec.get("settings_digest") == (digest or cfg.settings_digest())


def read_marker(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_marker(cfg: SweepConfig, job: Job, status: str, attempts: list[dict], digest: str, executor: str) -> None:
    from attnpatterns.io import write_json

    write_json(
        job.marker(cfg.out),
        {
            "job": job.id,
            "kind": job.kind,
            "params": job.params,
            "status": status,
            "settings_digest": digest,
            "executor": executor,
            "deps": list(job.deps),
            "outputs": list(job.outputs),
            "resources": {"num_cpus": job.num_cpus, "num_gpus": job.num_gpus},
            "seconds": sum(a.get("seconds", 0.0) for a in attempts if a.get("ok")),
            "attempts": attempts,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
