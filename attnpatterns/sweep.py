"""``attn sweep``: the study's grid as independent jobs over one shared run folder, run here or on a Ray cluster.

A sweep is the work of ``attn run`` cut into jobs with declared inputs, outputs and dependencies::

    pipeline/TASK/seed_S                      fine-tune, s-prune, m-prune one (task, seed)
    survivors/TASK                            super-survivors: AND over the seeds' s-pruning masks
    subnet/TASK/seed_S/METHOD/SUBNET          one subnetwork (structured|magnitude x good|random|bad): pruned +
    re-fine-tuned
    subnet/TASK/super/SUBNET                  one super-survivor subnetwork, every seed (the set needs them all)
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
so the cluster's own scheduler spreads them. The run folder must be on a file system every worker sees.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")

SWEEP_DIR = ".sweep"
EXECUTORS = ("local", "ray")
KINDS = ("pipeline", "survivors", "subnet", "classify", "distribution", "report")
PIPELINE_STAGES = ("finetune", "structured", "magnitude")


# ------------------------------------------------------------------------------------------------- config


@dataclass
class SweepConfig:
    """One sweep: a profile plus overrides (as ``attn run``), and how the jobs are run. Picklable (sent to workers)."""

    out: Path
    tasks: Sequence[str] | None = None
    seeds: Sequence[int] | None = None
    profile: str = "quick"
    model: str | None = None
    data_dir: str | None = None
    device: str = "cpu"
    max_train_examples: int | None = None
    analysis: bool = True  # classify, distribution and report jobs too
    retries: int = 2
    cpus_per_job: float = 1.0
    gpus_per_job: float | None = None  # None: 1 on cuda, 0 on cpu
    threads: int | None = None  # torch threads in a job; None: cpus_per_job (rounded), or torch's choice locally
    overrides: dict = field(default_factory=dict)  # Profile fields (tests)

    def __post_init__(self) -> None:
        from attnpatterns.data import resolve_data_dir
        from attnpatterns.models import resolve_model

        self.out = Path(self.out).expanduser().resolve()
        if self.max_train_examples is not None:
            if int(self.max_train_examples) < 1:
                raise UserError(f"--max-train-examples must be at least 1 (got {self.max_train_examples}).")
            self.overrides = dict(self.overrides) | {"max_train_examples": int(self.max_train_examples)}
        if int(self.retries) < 0:
            raise UserError(f"--retries must be 0 or more (got {self.retries}).")
        if self.cpus_per_job <= 0:
            raise UserError(f"--cpus-per-job must be positive (got {self.cpus_per_job}).")
        if self.gpus_per_job is not None and self.gpus_per_job < 0:
            raise UserError(f"--gpus-per-job must be 0 or more (got {self.gpus_per_job}).")
        if self.device.lower() not in ("cpu",) and not self.device.lower().startswith("cuda"):
            raise UserError(f"unknown device '{self.device}'; use cpu or cuda.")
        # workers may start elsewhere: every path absolute, the data folder resolved here ($ATTN_GLUE_DIR included)
        d = resolve_data_dir(self.data_dir)
        self.data_dir = str(d.resolve()) if d is not None else None
        if self.model is not None and Path(self.model).expanduser().exists():
            self.model = str(Path(resolve_model(self.model)).resolve())
        rc = self.run_config()  # validates tasks, seeds, profile, overrides
        self.tasks, self.seeds = list(rc.tasks), list(rc.seeds)

    def run_config(self):
        from attnpatterns.pipeline import RunConfig

        return RunConfig(
            out=self.out,
            profile=self.profile,
            model=self.model,
            tasks=self.tasks,
            seeds=self.seeds,
            data_dir=self.data_dir,
            device=self.device,
            show_progress=False,
            overrides=dict(self.overrides),
        )

    @property
    def num_gpus(self) -> float:
        if self.gpus_per_job is not None:
            return float(self.gpus_per_job)
        return 1.0 if self.device.lower().startswith("cuda") else 0.0

    def settings_digest(self) -> str:
        """What makes a job's result: the profile's settings and the model (not the executor, not the device)."""
        rc = self.run_config()
        rec = rc.record()
        blob = {"model_id": rec["model_id"], "settings": rec["settings"], "seeds": sorted(rc.seeds)}
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Job:
    """One unit of work: ``kind`` with ``params``; ``inputs``/``outputs`` relative to the run folder (``inputs``
    may also hold absolute paths outside it: data, model); ``deps`` are job ids."""

    id: str
    kind: str
    params: dict
    deps: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def marker(self, root: Path) -> Path:
        return Path(root) / SWEEP_DIR / "jobs" / (self.id.replace("/", "__") + ".json")


def plan(cfg: SweepConfig) -> list[Job]:
    """Every job of the sweep, dependencies before dependants."""
    from attnpatterns.pipeline import Pipeline

    rc = cfg.run_config()
    pipe = Pipeline(rc)
    p = rc.prof
    root = cfg.out
    gpus = cfg.num_gpus
    res = {"num_cpus": float(cfg.cpus_per_job), "num_gpus": gpus}
    light = {"num_cpus": float(cfg.cpus_per_job), "num_gpus": 0.0}  # no training: survivors, distribution, report

    def rel(x: Path) -> str:
        try:
            return str(Path(x).relative_to(root))
        except ValueError:
            return str(x)

    jobs: list[Job] = []
    multi = len(rc.seeds) >= 2
    settings = ("pruned", "retrained") if p.retrain else ("pruned",)
    from attnpatterns.prune.subnetworks import SUBNETS

    # the jobs are the pipeline's units (Pipeline.units): the same inputs and outputs, grouped or split for a
    # cluster: fine-tuning and both prunings of a (task, seed) run as one job; a subnetwork unit (task, method)
    # is split into one job per seed and subnetwork (super: one per subnetwork, over every seed)
    stages = ["finetune", "structured", "magnitude", "survivors", "subnetworks"]
    stages += ["classify"] if cfg.analysis else []
    units = {stage: {u.key: u for u in pipe.units(stage)} for stage in stages}

    def paths(xs) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rel(x) for x in xs))

    for task in rc.tasks:
        for seed in rc.seeds:
            key = f"{task}/seed_{seed}"
            seed_dir = pipe.layout.seed_dir(task, seed)
            parts = [units[s][key] for s in ("finetune", "structured", "magnitude")]
            made_here = [x for u in parts for x in u.inputs if seed_dir not in x.parents]
            jobs.append(
                Job(
                    f"pipeline/{key}",
                    "pipeline",
                    {"task": task, "seed": seed},
                    (),
                    paths(made_here),
                    paths(x for u in parts for x in u.outputs),
                    **res,
                )
            )
        pipes = [f"pipeline/{task}/seed_{s}" for s in rc.seeds]
        if multi:
            u = units["survivors"][task]
            jobs.append(
                Job(
                    f"survivors/{task}",
                    "survivors",
                    {"task": task},
                    tuple(pipes),
                    paths(u.inputs),
                    paths(u.outputs),
                    **light,
                )
            )
        for method in p.subnetwork_methods:
            if method == "super" and not multi:
                continue
            u = units["subnetworks"][f"{task}/{method}"]
            for subnet in SUBNETS:
                if method == "super":  # one job over every seed: the super set is drawn from all of them
                    groups = [(f"subnet/{task}/super/{subnet}", list(rc.seeds), tuple(pipes) + (f"survivors/{task}",))]
                else:
                    groups = [
                        (f"subnet/{task}/seed_{s}/{method}/{subnet}", [s], (f"pipeline/{task}/seed_{s}",))
                        for s in rc.seeds
                    ]
                for jid, seeds, deps in groups:
                    mine = [pipe.layout.seed_dir(task, s) for s in seeds]
                    other_seeds = [pipe.layout.seed_dir(task, s) for s in rc.seeds if s not in seeds]
                    ins = [x for x in u.inputs if not any(d in x.parents for d in other_seeds)]
                    outs = [x for x in u.outputs if x.parent.name == subnet and any(d in x.parents for d in mine)]
                    jobs.append(
                        Job(
                            jid,
                            "subnet",
                            {
                                "task": task,
                                "seeds": seeds,
                                "method": method,
                                "subnet": subnet,
                                "settings": list(settings),
                            },
                            deps,
                            paths(ins),
                            paths(outs),
                            **res,
                        )
                    )  # loads a model: on the GPU with --device cuda
        if cfg.analysis:
            for seed in rc.seeds:
                u = units["classify"][f"{task}/seed_{seed}"]
                jobs.append(
                    Job(
                        f"classify/{task}/seed_{seed}",
                        "classify",
                        {"task": task, "seed": seed},
                        (f"pipeline/{task}/seed_{seed}",),
                        paths(u.inputs),
                        paths(u.outputs),
                        **res,
                    )
                )
            u = units["classify"][f"{task}/distribution"]
            jobs.append(
                Job(
                    f"distribution/{task}",
                    "distribution",
                    {"task": task},
                    tuple(f"classify/{task}/seed_{s}" for s in rc.seeds) + ((f"survivors/{task}",) if multi else ()),
                    paths(u.inputs),
                    paths(u.outputs),
                    **light,
                )
            )
    if cfg.analysis:
        others = tuple(j.id for j in jobs)
        jobs.append(
            Job(
                "report",
                "report",
                {},
                others,
                tuple(o for j in jobs for o in j.outputs),
                (rel(pipe.layout.report_dir / "index.html"), rel(pipe.layout.report_dir / "report.md")),
                **light,
            )
        )
    return jobs


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
        from attnpatterns.pipeline import Pipeline

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


def _read_marker(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_marker(cfg: SweepConfig, job: Job, status: str, attempts: list[dict], digest: str, executor: str) -> None:
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


# ------------------------------------------------------------------------------------------------- executors


class LocalExecutor:
    """Jobs one after the other in this process."""

    name = "local"
    capacity = 1

    def __init__(self, cfg: SweepConfig):
        self.cfg = cfg
        self._done: list[tuple[str, dict]] = []

    def submit(self, job: Job) -> None:
        self._done.append((job.id, run_job(self.cfg, job, self.cfg.threads)))

    def wait(self) -> list[tuple[str, dict]]:
        out, self._done = self._done, []
        return out

    def close(self) -> None:
        pass


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """A HOST:PORT or ray://HOST:PORT address must accept a TCP connection (Ray itself would retry for minutes)."""
    hostport = address.split("://", 1)[1] if "://" in address else address
    if address in ("auto", "local") or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise UserError(
            f"nothing answers at Ray address '{address}' ({type(e).__name__}: {e}); start the head with "
            "'ray start --head --port PORT' there, or check --address."
        ) from None


def _ray_task(cfg: SweepConfig, job: Job, threads: int | None) -> dict:
    return run_job(cfg, job, threads)


class RayExecutor:
    """Each job a Ray task (``num_cpus``/``num_gpus`` from the job) on the cluster at ``address``."""

    name = "ray"
    capacity = 1 << 30  # Ray queues tasks until their resources are free

    def __init__(self, cfg: SweepConfig, address: str | None):
        try:
            import ray
        except ImportError:
            raise UserError(
                "the ray executor needs Ray: pip install 'attnpatterns[ray]' (or pip install ray)."
            ) from None
        address = address or os.environ.get("RAY_ADDRESS")
        if not address:
            raise UserError(
                "--executor ray needs --address (or $RAY_ADDRESS): the head's address, e.g. HEAD_IP:6379 or "
                "ray://HEAD_IP:10001; start a head with 'ray start --head'."
            )
        self.ray = ray
        _check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise UserError(
                f"cannot connect to Ray at '{address}' ({first}); check --address and that 'ray start "
                "--head' runs there (ray:// addresses also need pip install 'ray[client]')."
            ) from None
        except ImportError as e:
            raise UserError(
                f"connecting to '{address}' needs more of Ray ({e.name or e}); pip install 'ray[client]' "
                "for ray:// addresses."
            ) from None
        self.cfg = cfg
        self._remote = ray.remote(_ray_task)
        self._refs: dict[Any, str] = {}
        self.resources = ray.cluster_resources()
        if cfg.num_gpus > 0 and self.resources.get("GPU", 0) < cfg.num_gpus:
            ray.shutdown()
            raise UserError(
                f"the Ray cluster at '{address}' has {self.resources.get('GPU', 0):g} GPU(s) but each job asks "
                f"for {cfg.num_gpus:g}; add GPU nodes, use --device cpu, or lower --gpus-per-job."
            )
        if self.resources.get("CPU", 0) < cfg.cpus_per_job:
            ray.shutdown()
            raise UserError(
                f"the Ray cluster at '{address}' has {self.resources.get('CPU', 0):g} CPU(s) but each job asks "
                f"for {cfg.cpus_per_job:g}; lower --cpus-per-job."
            )

    def submit(self, job: Job) -> None:
        threads = self.cfg.threads if self.cfg.threads is not None else max(1, int(job.num_cpus))
        ref = self._remote.options(
            num_cpus=job.num_cpus, num_gpus=job.num_gpus, max_retries=0, name=job.id.replace("/", ":")
        ).remote(self.cfg, job, threads)
        self._refs[ref] = job.id

    def wait(self) -> list[tuple[str, dict]]:
        if not self._refs:
            return []
        ready, _ = self.ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in ready:
            jid = self._refs.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except Exception as e:  # the worker died (out of memory, node lost): retryable
                outcome = {
                    "id": jid,
                    "ok": False,
                    "user_error": False,
                    "seconds": 0.0,
                    "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                }
            out.append((jid, outcome))
        return out

    def close(self) -> None:
        for ref in list(self._refs):
            self.ray.cancel(ref, force=True)
        self._refs.clear()
        self.ray.shutdown()


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
    from attnpatterns.pipeline import Pipeline

    pipe = Pipeline(cfg.run_config())
    pipe.check_out()
    pipe.preflight_data()
    cfg.out.mkdir(parents=True, exist_ok=True)
    write_json(cfg.out / "config.json", cfg.run_config().record())


def run_sweep(
    cfg: SweepConfig, executor: str = "local", address: str | None = None, show_progress: bool = True
) -> SweepResult:
    """Run every job that is not done, in dependency order, on ``executor``; retry failures; return what happened."""
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
    log.info(
        "sweep %s: %d job(s), %d done already, %d to run on %s",
        cfg.out,
        len(jobs),
        len(jobs) - len(todo),
        len(todo),
        executor,
    )
    ex = LocalExecutor(cfg) if executor == "local" else RayExecutor(cfg, address)
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
                        _write_marker(cfg, job, "done", tries, dig, ex.name)
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
                    _write_marker(cfg, job, "failed", tries, dig, ex.name)
                    log.error("  %s failed after %d attempt(s): %s", jid, len(tries), err)
                    block_dependants(jid)
                    yield jid
                else:
                    _write_marker(cfg, job, "retrying", tries, dig, ex.name)
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
