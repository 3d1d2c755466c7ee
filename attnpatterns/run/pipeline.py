"""The stages of ``attn run`` over one run folder, each resumable and skipped when nothing changed.

Stages, in order (docs/CONTRACTS.md for the files each one writes)::

    finetune     TASK/seed_S/finetuned/                 per (task, seed)
    structured   TASK/seed_S/structured/                per (task, seed)   s-pruning
    magnitude    TASK/seed_S/magnitude/                 per (task, seed)   m-pruning
    survivors    TASK/super/super-survivors.json        per task           AND over seeds
    subnetworks  TASK/seed_S/subnetworks/METHOD/        per (task, seed, method)
    classify     classify/TASK/seed_S/ + distribution   per (task, seed), then per task
    report       report/index.html + report.md          once

Each stage is a list of :class:`~attnpatterns.run.stamps.Unit` (:meth:`Pipeline.units`): what it makes, from which
inputs, under which config. ``attn run`` passes them through the stamp engine (:mod:`attnpatterns.run.stamps`: skipped
when done and unchanged, adopted when made by hand, redone when an input's content changed); ``attn sweep`` runs the
same units as jobs. Profiles and the run configuration: :mod:`attnpatterns.run.profiles`; paths:
:mod:`attnpatterns.run.layout`; the classify stage's computation: :mod:`attnpatterns.classifier.run_maps`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from attnpatterns.classifier.run_maps import classify_run_maps, write_distribution  # noqa: F401 (re-exported)
from attnpatterns.errors import UserError
from attnpatterns.run import layout
from attnpatterns.run.layout import RunLayout
from attnpatterns.run.profiles import PROFILES, STAGES, SUBNET_METHODS, Profile, RunConfig, get_profile  # noqa: F401
from attnpatterns.run.stamps import Hasher, RunResult, StageReport, StampEngine, Unit, digest, hidden  # noqa: F401

log = logging.getLogger("attnpatterns")

KINDS = ("raw", "normed")


# ------------------------------------------------------------------------------------------------- the run


class Pipeline:
    """The stages of one run folder. ``run()`` goes through them in order."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.root = cfg.out
        self.layout = RunLayout(cfg.out)
        self.hasher = Hasher()
        self.stamps = StampEngine(cfg.out, self.hasher)
        self.p = cfg.prof

    # -------------------------------------------------------------------- paths
    def seed_dir(self, task: str, seed: int) -> Path:
        return self.layout.seed_dir(task, seed)

    def ft_dir(self, task: str, seed: int) -> Path:
        return self.layout.seed(task, seed).finetuned

    def super_path(self, task: str) -> Path:
        return self.layout.super_set(task)

    # -------------------------------------------------------------------- driver
    def run(self) -> RunResult:
        from attnpatterns.io import write_json

        t0 = time.perf_counter()
        self.check_out()
        wanted = list(self.cfg.stages) if self.cfg.stages is not None else list(STAGES)
        if any(s in wanted for s in ("finetune", "classify")):
            self.preflight_data()
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.layout.config, self.record())
        reports: dict[str, StageReport] = {}
        todo = [s for s in STAGES if s in wanted]
        for i, stage in enumerate(todo, 1):
            units = self.units(stage)
            reports[stage] = self.run_stage(stage, units, i, len(todo))
        report = self.layout.report_dir / "index.html"
        return RunResult(self.root, reports, time.perf_counter() - t0, report if report.is_file() else None)

    def record(self) -> dict:
        """The run folder's ``config.json``: this run's profile record, whose tasks and seeds also keep those of an
        earlier run of the same profile, model and settings in the folder (``--tasks SST-2`` over a five-task study
        adds to it, it does not narrow the record)."""
        from attnpatterns.io import read_json

        rec = _config_dict(self.cfg.record())  # as it reads back (tuples as lists)
        path = self.layout.config
        try:
            old = read_json(path) if path.is_file() else None
        except UserError:
            old = None
        same = ("profile", "model_id", "settings")
        if isinstance(old, dict) and all(old.get(k) == rec[k] for k in same):
            for k in ("tasks", "seeds"):
                if isinstance(old.get(k), list):
                    rec[k] = list(dict.fromkeys([*old[k], *rec[k]]))
        return rec

    def check_out(self) -> None:
        from attnpatterns.io import read_json
        from attnpatterns.models import model_id

        cfg_path = self.layout.config
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"--out '{self.root}' is a file; pass a folder for the run.")
        if cfg_path.is_file():
            old = read_json(cfg_path)
            if isinstance(old, dict) and old.get("model_id") and old["model_id"] != model_id(self.cfg.model):
                raise UserError(
                    f"{cfg_path}: this run folder holds a run of model '{old['model_id']}', not "
                    f"'{model_id(self.cfg.model)}'; "
                    "choose another --out or pass the same --model."
                )

    def preflight_data(self) -> None:
        """Fail before any work when a task's data cannot be found, saying how to get it."""
        from attnpatterns.data import load_task

        for t in self.cfg.tasks:
            for split in ("train", "dev"):
                try:
                    load_task(t, split, self.cfg.data_dir, max_examples=1)
                except UserError as e:
                    raise UserError(
                        f"{e} To get GLUE: with internet, leave --data-dir out and the hub is used; offline, download "
                        "glue_data (e.g. with the GLUE download_glue_data.py script) and pass --data-dir DIR or set "
                        "ATTN_GLUE_DIR=DIR."
                    ) from None

    def run_stage(self, stage: str, units: list[Unit], i: int = 1, n: int = 1) -> StageReport:
        """Run the units of one stage (``units(stage)`` or a part of them) through the stamp engine."""
        return self.stamps.run_stage(stage, units, i, n)

    def units(self, stage: str) -> list[Unit]:
        """The units of a stage (``finetune``, ..., ``report``): what ``attn run`` and ``attn sweep`` execute."""
        if stage not in STAGES:
            raise UserError(f"unknown stage '{stage}'; stages are {', '.join(STAGES)}.")
        return getattr(self, f"units_{stage}")()

    # -------------------------------------------------------------------- inputs shared by several stages
    def data_files(self, task: str) -> list[Path]:
        from attnpatterns.data import get_task, resolve_data_dir

        d = resolve_data_dir(self.cfg.data_dir)
        if d is None:
            return []  # the hub: its versions are pinned by the datasets cache, not hashed here
        spec = get_task(task)
        return [d / spec.name / "train.tsv", d / spec.name / f"{spec.dev_split}.tsv"]

    def model_files(self) -> list[Path]:
        from attnpatterns.models import resolve_model

        ref = Path(resolve_model(self.cfg.model))
        if ref.is_dir():
            return sorted(
                p
                for p in ref.iterdir()
                if p.is_file() and p.suffix in (".json", ".safetensors", ".txt", ".bin", ".model")
            )
        return []  # a hub id: the id is in the config

    def ft_inputs(self, task: str, seed: int) -> list[Path]:
        d = self.ft_dir(task, seed)
        return [d / "model.safetensors", d / "config.json", d / "metrics.json"]

    # -------------------------------------------------------------------- stage: finetune
    def finetune_config(self, task: str, seed: int):
        from attnpatterns.finetune import FinetuneConfig

        p = self.p
        return FinetuneConfig(
            task=task,
            seed=seed,
            model=self.cfg.model,
            epochs=p.epochs,
            batch_size=p.batch_size,
            lr=p.lr,
            max_length=p.max_length,
            max_train_examples=p.max_train_examples,
            max_dev_examples=p.dev_examples,
            device=self.cfg.device,
            data_dir=self.cfg.data_dir,
        )

    def units_finetune(self) -> list[Unit]:
        from attnpatterns.finetune import finetune

        units = []
        for task in self.cfg.tasks:
            for seed in self.cfg.seeds:
                fc = self.finetune_config(task, seed)
                out = self.ft_dir(task, seed)
                units.append(
                    Unit(
                        "finetune",
                        f"{task}/seed_{seed}",
                        f"fine-tune {task} seed {seed}",
                        [out / "metrics.json"],
                        self.data_files(task) + self.model_files(),
                        fc.identity(),
                        functools.partial(finetune, fc, out, show_progress=self.cfg.show_progress),
                        owns=[out],
                    )
                )
        return units

    # -------------------------------------------------------------------- stage: structured (s-pruning)
    def units_structured(self) -> list[Unit]:
        from attnpatterns.prune.structured import SPruneConfig, s_prune

        pc = SPruneConfig(max_dev_examples=self.p.dev_examples, max_length=self.p.max_length)
        return self._prune_units("structured", "s-pruning", pc, s_prune)

    # -------------------------------------------------------------------- stage: magnitude (m-pruning)
    def units_magnitude(self) -> list[Unit]:
        from attnpatterns.prune.magnitude import MPruneConfig, m_prune

        pc = MPruneConfig(
            max_dev_examples=self.p.dev_examples, max_steps=self.p.magnitude_max_steps, max_length=self.p.max_length
        )
        return self._prune_units("magnitude", "m-pruning", pc, m_prune)

    def _prune_units(self, stage: str, what: str, pc, fn) -> list[Unit]:
        units = []
        for task in self.cfg.tasks:
            for seed in self.cfg.seeds:
                sd = self.seed_dir(task, seed)
                units.append(
                    Unit(
                        stage,
                        f"{task}/seed_{seed}",
                        f"{what} {task} seed {seed}",
                        [layout.SeedLayout(sd).summary(stage), layout.SeedLayout(sd).mask(stage)],
                        self.ft_inputs(task, seed) + self.data_files(task),
                        _config_dict(pc),
                        functools.partial(
                            fn,
                            sd,
                            pc,
                            device=self.cfg.device,
                            data_dir=self.cfg.data_dir,
                            show_progress=self.cfg.show_progress,
                        ),
                        owns=[sd / stage],
                    )
                )
        return units

    # -------------------------------------------------------------------- stage: survivors
    def units_survivors(self) -> list[Unit]:
        units: list[Unit] = []
        if len(self.cfg.seeds) < 2:
            log.warning(
                "survivors: one seed only (%s); super-survivors need at least two, stage skipped", self.cfg.seeds
            )
            return units
        for task in self.cfg.tasks:
            masks = [self.layout.seed(task, s).mask("structured") for s in self.cfg.seeds]
            out = self.super_path(task)
            units.append(
                Unit(
                    "survivors",
                    task,
                    f"super-survivors {task}",
                    [out],
                    masks,
                    {"seeds": sorted(self.cfg.seeds)},
                    functools.partial(self._write_super, task, out),
                    # a new super set invalidates its random/bad counterparts, drawn beside it
                    owns=[out.parent],
                    foreign=functools.partial(_other_seeds, out, self.cfg.seeds),
                )
            )
        return units

    def _write_super(self, task: str, out: Path) -> None:
        from attnpatterns.prune.head_set import write_head_set
        from attnpatterns.prune.survivors import survivors_from_dir

        ts, model = survivors_from_dir(self.root, task, seeds=self.cfg.seeds)
        write_head_set(out, ts.head_set("super", model=model))

    # -------------------------------------------------------------------- stage: subnetworks
    def units_subnetworks(self) -> list[Unit]:
        from attnpatterns.prune.evaluate_subnetworks import SETTINGS, SubnetworkConfig
        from attnpatterns.prune.subnetworks import SUBNETS

        units = []
        settings = SETTINGS if self.p.retrain else ("pruned",)
        for task in self.cfg.tasks:
            for method in self.p.subnetwork_methods:
                if method == "super" and len(self.cfg.seeds) < 2:
                    continue
                sc = SubnetworkConfig(
                    run=self.root,
                    task=task,
                    seeds=list(self.cfg.seeds),
                    method=method,
                    settings=tuple(settings),
                    max_train_examples=self.p.subnet_train_examples,
                    max_dev_examples=self.p.dev_examples,
                    device=self.cfg.device,
                    data_dir=self.cfg.data_dir,
                )
                dirs = [self.layout.seed(task, s).subnetworks / method for s in self.cfg.seeds]
                outputs = [d / sub / f"{st}.json" for d in dirs for sub in SUBNETS for st in settings]
                inputs = [p for s in self.cfg.seeds for p in self.ft_inputs(task, s)] + self.data_files(task)
                if method in layout.PRUNE_METHODS:
                    inputs += [self.layout.seed(task, s).mask(method) for s in self.cfg.seeds]
                else:
                    inputs += [self.super_path(task)]
                if "retrained" in settings:
                    inputs += self.model_files()
                conf = {k: v for k, v in _config_dict(sc).items() if k not in ("run", "device", "data_dir")}
                units.append(
                    Unit(
                        "subnetworks",
                        f"{task}/{method}",
                        f"subnetworks {task} {method}",
                        outputs,
                        inputs,
                        conf,
                        functools.partial(self._subnetworks, sc),
                        owns=dirs,
                    )
                )
        return units

    def _subnetworks(self, sc) -> None:
        from attnpatterns.prune.evaluate_subnetworks import run_subnetworks

        run_subnetworks(sc, show_progress=self.cfg.show_progress)

    # -------------------------------------------------------------------- stage: classify
    def classify_dir(self, task: str, seed: int | None = None) -> Path:
        return self.layout.classify_dir(task, seed)

    def units_classify(self) -> list[Unit]:
        from attnpatterns.classifier.card import card_path, default_path

        clf_files = [f for k in KINDS for f in (default_path(k), card_path(default_path(k)))]
        for k in KINDS:
            if not default_path(k).is_file():
                raise UserError(
                    f"{default_path(k)}: no {k} pattern classifier; train it with 'attn classifier train "
                    f"--kind {k}' (or set ATTN_CLASSIFIER_DIR to a folder holding pattern-cnn-{k}.safetensors)."
                )
        units = []
        conf = {
            "examples": self.p.classify_examples,
            "max_length": self.p.max_length,
            "kinds": list(KINDS),
            "examples_per_type": self.p.examples_per_type,
        }
        for task in self.cfg.tasks:
            for seed in self.cfg.seeds:
                out = self.classify_dir(task, seed)
                units.append(
                    Unit(
                        "classify",
                        f"{task}/seed_{seed}",
                        f"classify maps {task} seed {seed}",
                        [out / "heads.json", out / "examples.npz", out / "examples.json"],
                        self.ft_inputs(task, seed) + self.data_files(task) + clf_files,
                        conf,
                        functools.partial(self._classify, task, seed, out),
                        owns=[out],
                    )
                )
            # pooling over seeds, all heads vs super-survivors: cheap, its own unit so a new super set redoes only this
            out = self.classify_dir(task) / "distribution.json"
            heads = [self.classify_dir(task, s) / "heads.json" for s in self.cfg.seeds]
            sup = [self.super_path(task)] if len(self.cfg.seeds) >= 2 else []
            units.append(
                Unit(
                    "classify",
                    f"{task}/distribution",
                    f"pattern distribution {task}",
                    [out],
                    heads + sup,
                    {"seeds": sorted(self.cfg.seeds)},
                    functools.partial(self._distribution, task, out),
                    owns=[out],
                    foreign=functools.partial(_other_seeds, out, self.cfg.seeds),
                )
            )
        return units

    def _classify(self, task: str, seed: int, out: Path) -> None:
        classify_run_maps(
            self.ft_dir(task, seed),
            task,
            seed,
            out,
            n_examples=self.p.classify_examples,
            max_length=self.p.max_length,
            data_dir=self.cfg.data_dir,
            device=self.cfg.device,
            examples_per_type=self.p.examples_per_type,
            show_progress=self.cfg.show_progress,
        )

    def _distribution(self, task: str, out: Path) -> None:
        write_distribution(
            [self.classify_dir(task, s) / "heads.json" for s in self.cfg.seeds],
            self.super_path(task) if len(self.cfg.seeds) >= 2 else None,
            out,
            task,
        )

    # -------------------------------------------------------------------- stage: report
    def units_report(self) -> list[Unit]:
        out = self.layout.report_dir
        return [
            Unit(
                "report",
                "report",
                "report",
                [out / "index.html", out / "report.md"],
                self._report_inputs(),
                {"examples_per_type": self.p.examples_per_type, "version": _package_version()},
                lambda: self._report(),
                owns=[],
            )
        ]

    def _report_inputs(self) -> list[Path]:
        """Every small file the report reads (not the fine-tuned weights, not the report itself)."""
        keep = (".json", ".npy", ".npz", ".tsv", ".csv")
        out = []
        for p in sorted(self.root.rglob("*")):
            relpath = p.relative_to(self.root)
            rel = relpath.parts
            if (
                not p.is_file()
                or rel[0] == layout.REPORT
                or hidden(relpath)
                or p.name == "config.json"
                and len(rel) == 1
            ):
                continue
            if p.suffix in keep or (p.name == layout.WEIGHT_MASK and "magnitude" in rel):
                out.append(p)
        return out

    def _report(self) -> None:
        from attnpatterns.report.build import build_report

        build_report(
            self.root, examples_per_type=self.p.examples_per_type, data_dir=self.cfg.data_dir, show_progress=False
        )


def _config_dict(obj) -> dict:
    d = asdict(obj) if hasattr(obj, "__dataclass_fields__") else dict(obj)
    return json.loads(json.dumps(d, default=str))


def _other_seeds(path: Path, seeds) -> str | None:
    """Why a JSON output found without a stamp is not this unit's: it was made from other seeds (its ``seeds``), or
    is unreadable; None when its seeds are the run's."""
    from attnpatterns.io import read_json

    try:
        have = read_json(path).get("seeds")
        same = isinstance(have, list) and sorted(int(s) for s in have) == sorted(int(s) for s in seeds)
    except (UserError, OSError, ValueError, TypeError, AttributeError):
        return "unreadable"
    return None if same else f"made from seeds {have}, not {sorted(seeds)}"


def _package_version() -> str:
    import attnpatterns

    return attnpatterns.__version__


def run_pipeline(cfg: RunConfig) -> RunResult:
    """Run (or continue) every asked-for stage of ``cfg.out``; return what ran and what was skipped."""
    return Pipeline(cfg).run()
