"""The jobs of a sweep: its configuration, and the plan (the pipeline's units as jobs with dependencies)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")


SWEEP_DIR = ".sweep"
EXECUTORS = ("local", "processes", "ray")
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
        from attnpatterns.run.pipeline import RunConfig

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
    from attnpatterns.run.pipeline import Pipeline

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
    # is split into one job per seed and subnetwork, the super-survivors' too (their set comes from every seed's
    # s-pruning, so those jobs wait for the task's survivors job; each re-fine-tunes one seed's subnetwork)
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
                groups = []
                for s in rc.seeds:
                    # the super set is drawn from every seed: its jobs wait for all the pipelines and the survivors
                    deps = (*pipes, f"survivors/{task}") if method == "super" else (f"pipeline/{task}/seed_{s}",)
                    groups.append((f"subnet/{task}/seed_{s}/{method}/{subnet}", [s], deps))
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
