"""The stages of ``attn run`` over one run folder, each resumable and skipped when nothing changed.

Stages, in order (docs/CONTRACTS.md for the files each one writes)::

    finetune     TASK/seed_S/finetuned/                 per (task, seed)
    structured   TASK/seed_S/structured/                per (task, seed)   s-pruning
    magnitude    TASK/seed_S/magnitude/                 per (task, seed)   m-pruning
    survivors    TASK/super/super-survivors.json        per task           AND over seeds
    subnetworks  TASK/seed_S/subnetworks/METHOD/        per (task, seed, method)
    classify     classify/TASK/seed_S/ + distribution   per (task, seed), then per task
    report       report/index.html + report.md          once

A stage unit is skipped when its outputs exist AND its stamp matches: the stamp
(``.stages/<stage>/<unit>.json``) holds a sha256 over the unit's config and the contents of its input files,
so a changed input (another fine-tuned model, a new classifier, other data) reruns that unit and, through its
outputs, everything downstream. A unit whose outputs exist without a stamp (made by ``attn finetune`` and friends
by hand) is adopted: stamped as it is, not redone. A unit whose stamp no longer matches has its outputs removed
before it reruns (the folder it owns, nothing else). An interrupted unit keeps its partial files: the stage's
own library resumes from them where it can.

Profiles: ``quick`` (the default of ``make run``: the packaged MiniLM, MRPC, two seeds, subsampled training, small
dev subsets for pruning, within 10 minutes and 4 GB on a 2-core CPU) and ``paper`` (the study's settings: every
GLUE task at hand, five seeds, full training sets, 3 epochs, 100 dev examples per seed for the maps).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from attnpatterns import layout
from attnpatterns.errors import UserError
from attnpatterns.layout import RunLayout

log = logging.getLogger("attnpatterns")

STAGES = ("finetune", "structured", "magnitude", "survivors", "subnetworks", "classify", "report")
SUBNET_METHODS = layout.SUBNET_METHODS
KINDS = ("raw", "normed")


# ------------------------------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """Settings of a whole run. ``None`` for a size = the full set."""

    name: str
    description: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int = 3
    max_train_examples: int | None = None
    max_length: int = 128
    batch_size: int = 32
    lr: float = 2e-5
    dev_examples: int | None = None  # seeded dev subsample for every dev score: fine-tuning, pruning, subnetworks
    subnet_train_examples: int | None = None  # training examples per re-fine-tuning (None: as the fine-tuning)
    magnitude_max_steps: int = 10
    subnetwork_methods: tuple[str, ...] = SUBNET_METHODS
    retrain: bool = True  # also the re-fine-tuned ("retrained") evaluation of every subnetwork
    classify_examples: int = 100  # dev examples per (task, seed) whose maps are classified
    examples_per_type: int = 6  # example maps per type in the report


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        description="MiniLM, MRPC, two seeds, 256 training examples x 1 epoch (64 for each re-fine-tuning), max "
        "length 64, a 64-example dev subsample for every dev score, 32 dev examples for the maps: a smoke "
        "run of every stage on a 2-core CPU, not a result",
        tasks=("MRPC",),
        seeds=(1337, 42),
        epochs=1,
        max_train_examples=256,
        max_length=64,
        dev_examples=64,
        subnet_train_examples=64,
        magnitude_max_steps=10,
        classify_examples=32,
    ),
    "paper": Profile(
        name="paper",
        description="the study's settings: five seeds, full training sets, 3 epochs, max length 128, batch 32, "
        "lr 2e-5, the whole dev set for pruning, 100 dev examples per seed for the maps",
        tasks=("CoLA", "SST-2", "MRPC", "STS-B", "RTE"),
        seeds=(1337, 42, 86, 71, 166),
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UserError(f"unknown profile '{name}'; use one of {', '.join(PROFILES)}.") from None


@dataclass
class RunConfig:
    """One ``attn run``: a profile plus the user's overrides. ``model`` None = the packaged MiniLM."""

    out: Path
    profile: str = "quick"
    model: str | None = None
    tasks: Sequence[str] = ()  # empty: the profile's (None is taken as empty too)
    seeds: Sequence[int] = ()
    data_dir: str | None = None
    device: str = "cpu"
    stages: Sequence[str] | None = None  # None = all; the others are neither run nor checked
    show_progress: bool = True
    overrides: dict = field(default_factory=dict)  # Profile fields to change (e.g. for tests)

    def __post_init__(self) -> None:
        from attnpatterns.data.registry import get_task

        self.out = Path(self.out)
        prof = get_profile(self.profile)
        bad = set(self.overrides) - set(Profile.__dataclass_fields__)
        if bad:
            raise UserError(f"unknown profile setting(s) {', '.join(sorted(bad))}.")
        self._profile = replace(prof, **self.overrides)
        self.tasks = [get_task(t).name for t in (self.tasks or self._profile.tasks)]
        if len(set(self.tasks)) != len(self.tasks):
            raise UserError(f"--tasks repeats a task ({', '.join(self.tasks)}); give each task once.")
        self.seeds = [int(s) for s in (self.seeds or self._profile.seeds)]
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError("--seeds repeats a seed; give each seed once.")
        if self.stages is not None:
            unknown = [s for s in self.stages if s not in STAGES]
            if unknown:
                raise UserError(f"unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGES)}.")
        for m in self._profile.subnetwork_methods:
            if m not in SUBNET_METHODS:
                raise UserError(f"unknown subnetwork method '{m}'; use {', '.join(SUBNET_METHODS)}.")
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)

    @property
    def prof(self) -> Profile:
        return self._profile

    def record(self) -> dict:
        from attnpatterns.models import model_id

        return {
            "profile": self.profile,
            "model": self.model,
            "model_id": model_id(self.model),
            "tasks": list(self.tasks),
            "seeds": list(self.seeds),
            "settings": asdict(self.prof),
            "device": self.device,
        }


# ------------------------------------------------------------------------------------------------- stamps


class Hasher:
    """sha256 of files, cached per (path, size, mtime) within one run (a fine-tuned model is read once)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}

    def file(self, path: Path) -> str:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._cache:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            self._cache[key] = h.hexdigest()
        return self._cache[key]

    def files(self, paths: Iterable[Path], root: Path) -> dict[str, str]:
        out = {}
        for p in paths:
            p = Path(p)
            if p.is_dir():
                for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
                    out[_relname(f, root)] = self.file(f)
            elif p.is_file():
                out[_relname(p, root)] = self.file(p)
            else:
                out[_relname(p, root)] = "missing"
        return out


def _relname(p: Path, root: Path) -> str:
    try:
        return str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(p)


def digest(config: dict, inputs: dict[str, str]) -> str:
    """sha256 over the unit's config and the *contents* of its inputs. Inputs inside the run folder count by their
    name relative to it; inputs outside it (GLUE files, the model, the classifier) by their file name only, so
    the same files reached through another path (a moved or linked data folder) give the same digest. The paths
    are recorded in the stamp, not compared."""
    content = sorted((Path(name).name if os.path.isabs(name) else name, sha) for name, sha in inputs.items())
    blob = json.dumps({"config": config, "inputs": content}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass
class Unit:
    """One resumable piece of a stage: ``run()`` makes ``outputs``; ``owns`` is what a rerun may remove."""

    stage: str
    key: str  # e.g. "MRPC/seed_1337"
    label: str  # for progress lines
    outputs: list[Path]
    inputs: list[Path]
    config: dict
    run: Callable[[], Any]
    owns: list[Path] = field(default_factory=list)

    def stamp_path(self, root: Path) -> Path:
        return RunLayout(root).stamp(self.stage, self.key)


@dataclass
class StageReport:
    stage: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RunResult:
    out: Path
    stages: dict[str, StageReport]
    seconds: float
    report: Path | None = None

    @property
    def ran(self) -> int:
        return sum(len(s.ran) for s in self.stages.values())


# ------------------------------------------------------------------------------------------------- the run


class Pipeline:
    """The stages of one run folder. ``run()`` goes through them in order."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.root = cfg.out
        self.layout = RunLayout(cfg.out)
        self.hasher = Hasher()
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
        self._check_out()
        wanted = list(self.cfg.stages) if self.cfg.stages is not None else list(STAGES)
        if any(s in wanted for s in ("finetune", "classify")):
            self._preflight_data()
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.layout.config, self.cfg.record())
        reports: dict[str, StageReport] = {}
        todo = [s for s in STAGES if s in wanted]
        for i, stage in enumerate(todo, 1):
            units = getattr(self, f"units_{stage}")()
            reports[stage] = self._run_stage(stage, units, i, len(todo))
        report = self.layout.report_dir / "index.html"
        return RunResult(self.root, reports, time.perf_counter() - t0, report if report.is_file() else None)

    def _check_out(self) -> None:
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

    def _preflight_data(self) -> None:
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

    def _run_stage(self, stage: str, units: list[Unit], i: int, n: int) -> StageReport:
        rep = StageReport(stage)
        t0 = time.perf_counter()
        states = [(u, self._state(u)) for u in units]
        todo = sum(1 for _, s in states if s[0] in ("run", "stale"))
        log.info("[stage %d/%d] %s: %d unit(s), %d to run", i, n, stage, len(units), todo)
        k = 0
        for u, _ in states:
            # decided again right before the unit: an earlier unit of this stage may have changed its inputs
            state, dig, inputs = self._state(u)
            if state == "skip":
                rep.skipped.append(u.key)
                log.debug("  %s: up to date, skipped", u.label)
                continue
            if state == "adopt":
                self._write_stamp(u, dig, inputs, adopted=True, seconds=0.0)
                rep.adopted.append(u.key)
                log.info("  %s: outputs made outside 'attn run' adopted as they are", u.label)
                continue
            k += 1
            if state == "stale":
                for p in u.owns:
                    if p.is_dir():
                        shutil.rmtree(p)
                    elif p.exists():
                        p.unlink()
                log.info("  %s: inputs changed since it was made; redoing it", u.label)
            log.info("  [%d] %s ...", k, u.label)
            t1 = time.perf_counter()
            u.run()
            missing = [str(p) for p in u.outputs if not p.exists()]
            if missing:
                raise RuntimeError(f"stage {stage} {u.key} finished without writing {', '.join(missing)}")
            # the inputs are hashed again after the run: a unit must not change them, but if a library did, the
            # stamp must describe what is on disk now
            dig, inputs = self._digest(u)
            dt = time.perf_counter() - t1
            self._write_stamp(u, dig, inputs, adopted=False, seconds=dt)
            rep.ran.append(u.key)
            log.info("  [%d] %s done in %.1f s", k, u.label, dt)
        rep.seconds = time.perf_counter() - t0
        return rep

    def _digest(self, u: Unit) -> tuple[str, dict]:
        inputs = self.hasher.files(u.inputs, self.root)
        return digest(u.config, inputs), inputs

    def _state(self, u: Unit) -> tuple[str, str, dict]:
        from attnpatterns.io import read_json

        dig, inputs = self._digest(u)
        done = all(p.exists() for p in u.outputs)
        sp = u.stamp_path(self.root)
        if sp.is_file():
            old = read_json(sp)
            # by content: recomputed from what the stamp recorded, so stamps written with path-keyed digests
            # (before content digests) and stamps made through another data path match as long as the contents do
            was = (
                digest(old["config"], old["inputs"])
                if isinstance(old.get("inputs"), dict) and "config" in old
                else old.get("digest")
            )
            if was == dig and done:
                if old.get("digest") != dig:  # one-time migration of the stamp to the content digest
                    self._write_stamp(u, dig, inputs, adopted=bool(old.get("adopted")), seconds=old.get("seconds", 0.0))
                return "skip", dig, inputs
            return ("stale" if was != dig else "run"), dig, inputs
        return ("adopt" if done else "run"), dig, inputs

    def _write_stamp(self, u: Unit, dig: str, inputs: dict, adopted: bool, seconds: float) -> None:
        from attnpatterns.io import write_json

        write_json(
            u.stamp_path(self.root),
            {
                "stage": u.stage,
                "unit": u.key,
                "digest": dig,
                "config": u.config,
                "inputs": inputs,
                "adopted": adopted,
                "seconds": round(seconds, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )

    # -------------------------------------------------------------------- inputs shared by several stages
    def _data_files(self, task: str) -> list[Path]:
        from attnpatterns.data import get_task, resolve_data_dir

        d = resolve_data_dir(self.cfg.data_dir)
        if d is None:
            return []  # the hub: its versions are pinned by the datasets cache, not hashed here
        spec = get_task(task)
        return [d / spec.name / "train.tsv", d / spec.name / f"{spec.dev_split}.tsv"]

    def _model_files(self) -> list[Path]:
        from attnpatterns.models import resolve_model

        ref = Path(resolve_model(self.cfg.model))
        if ref.is_dir():
            return sorted(
                p
                for p in ref.iterdir()
                if p.is_file() and p.suffix in (".json", ".safetensors", ".txt", ".bin", ".model")
            )
        return []  # a hub id: the id is in the config

    def _ft_inputs(self, task: str, seed: int) -> list[Path]:
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
                        self._data_files(task) + self._model_files(),
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
                        [layout.SeedLayout(sd).summary(stage)],
                        self._ft_inputs(task, seed) + self._data_files(task),
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
                )
            )
        return units

    def _write_super(self, task: str, out: Path) -> None:
        from attnpatterns.prune.masks import write_head_set
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
                inputs = [p for s in self.cfg.seeds for p in self._ft_inputs(task, s)] + self._data_files(task)
                if method in layout.PRUNE_METHODS:
                    inputs += [self.layout.seed(task, s).mask(method) for s in self.cfg.seeds]
                else:
                    inputs += [self.super_path(task)]
                if "retrained" in settings:
                    inputs += self._model_files()
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
                        self._ft_inputs(task, seed) + self._data_files(task) + clf_files,
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
            rel = p.relative_to(self.root).parts
            # hidden top folders (.stages, attn sweep's .sweep) hold bookkeeping, not results
            if (
                not p.is_file()
                or rel[0] == layout.REPORT
                or rel[0].startswith(".")
                or p.name.startswith(".")
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


# ------------------------------------------------------------------------------------------------- classify stage


def classify_run_maps(
    ft_dir: Path,
    task: str,
    seed: int,
    out: Path,
    n_examples: int = 100,
    max_length: int = 128,
    data_dir: str | None = None,
    device: str = "cpu",
    examples_per_type: int = 6,
    chunk: int = 16,
    show_progress: bool = True,
    classifiers: dict | None = None,
) -> dict:
    """Classify the raw and normed map of every head on the first ``n_examples`` dev examples of ``task``, with the
    fine-tuned model in ``ft_dir``, by the shipped classifiers (``classifier.predict.classify_maps``; another
    classifier per kind with ``classifiers``, e.g. one trained on a single annotator's labels).

    Writes ``out/heads.json`` (per-head counts (L, H, types) per kind, and ``labels``: the type index of every
    (example, layer, head) map, for intervals over examples), ``out/examples.npz`` (up to
    ``examples_per_type`` maps per kind and predicted type, drawn at random under ``seed``, keys
    ``<kind>__<type>__<i>``) and ``out/examples.json`` (their captions). Maps are made ``chunk`` examples at a time,
    so memory stays bounded whatever the model.
    """
    import numpy as np

    from attnpatterns.classifier.predict import classify_maps, get_classifier
    from attnpatterns.data import get_task, load_task
    from attnpatterns.finetune import load_finetuned
    from attnpatterns.io import save_npz, write_json
    from attnpatterns.maps import extract_maps
    from attnpatterns.patterns import PATTERN_VALUES
    from attnpatterns.progress import progress_iter

    spec = get_task(task)
    model, tok, rec = load_finetuned(ft_dir, device=device)
    # the first n dev examples with at least the classifiers' minimum number of real tokens (REFERENCE, Statistics)
    clf_paths = {k: (classifiers or {}).get(k) for k in KINDS}
    min_tokens = max(int(get_classifier(k, clf_paths[k]).min_tokens) for k in KINDS)
    examples = []
    for e in load_task(spec, "dev", data_dir):
        enc = (
            tok(e.text_a, e.text_b, truncation=True, max_length=max_length)
            if spec.text_b
            else tok(e.text_a, truncation=True, max_length=max_length)
        )
        if len(enc["input_ids"]) >= min_tokens:
            examples.append(e)
            if len(examples) == n_examples:
                break
    if not examples:
        raise UserError(
            f"{task}: no dev example has the classifiers' minimum of {min_tokens} tokens at max length "
            f"{max_length}; raise the max length."
        )
    types = list(PATTERN_VALUES)
    L = H = 0  # set by the first chunk of maps
    counts: dict[str, np.ndarray] = {}
    per_map: dict[str, list] = {k: [] for k in KINDS}
    # reservoir of candidate examples per (kind, type): (random key, caption, map); the smallest keys are kept
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7])
    pool: dict[tuple[str, str], list] = {}
    probs_sum = {k: 0.0 for k in KINDS}
    n_maps = 0
    starts = list(range(0, len(examples), chunk))
    for s0 in progress_iter(starts, len(starts), f"classify maps {task} seed {seed}", show_progress):
        part = examples[s0 : s0 + chunk]
        exs = extract_maps(
            model,
            tok,
            [e.text_a for e in part],
            [e.text_b for e in part] if spec.text_b else None,
            ids=[e.id for e in part],
            normed=True,
            max_length=max_length,
            batch_size=chunk,
        )
        L, H = exs[0].raw.shape[:2]
        for kind in KINDS:
            if kind not in counts:
                counts[kind] = np.zeros((L, H, len(types)), dtype=np.int64)
            flat = [getattr(ex, kind)[l, h] for ex in exs for l in range(L) for h in range(H)]
            labels, probs = classify_maps(flat, kind, clf_paths[kind])
            probs_sum[kind] += float(probs.max(axis=1).sum())
            per_map[kind].append(np.array([types.index(x) for x in labels], dtype=np.int64).reshape(len(exs), L, H))
            for i, lab in enumerate(labels):
                e, rem = divmod(i, L * H)
                l, h = divmod(rem, H)
                counts[kind][l, h, types.index(lab)] += 1
                key = (kind, lab)
                r = float(rng.random())
                bucket = pool.setdefault(key, [])
                if len(bucket) < examples_per_type or r < bucket[-1][0]:
                    bucket.append((r, f"L{l}H{h} ex {exs[e].example_id} p={probs[i].max():.2f}", flat[i]))
                    bucket.sort(key=lambda x: x[0])
                    del bucket[examples_per_type:]
        n_maps += len(exs) * L * H
    arrays, captions = {}, {}
    for (kind, lab), bucket in sorted(pool.items()):
        for i, (_, cap, m) in enumerate(bucket):
            k = f"{kind}__{lab}__{i}"
            arrays[k] = np.asarray(m, dtype=np.float32)
            captions[k] = cap
    from attnpatterns.classifier.card import default_path, sha256_file

    result = {
        "task": spec.name,
        "seed": int(seed),
        "model": rec.get("config", {}).get("model"),
        "finetuned": str(ft_dir),
        "num_layers": int(L),
        "num_heads": int(H),
        "n_examples": len(examples),
        "max_length": max_length,
        "min_tokens": min_tokens,
        "types": types,
        "maps_per_kind": n_maps,
        "classifier": {
            k: {
                "file": Path(clf_paths[k] or default_path(k)).name,
                "sha256": sha256_file(clf_paths[k] or default_path(k)),
            }
            for k in KINDS
        },
        "mean_confidence": {k: probs_sum[k] / max(n_maps, 1) for k in KINDS},
        "counts": {k: counts[k].tolist() for k in KINDS},
        "example_ids": [str(e.id) for e in examples],
        "labels": {k: np.concatenate(per_map[k]).tolist() for k in KINDS},
    }
    save_npz(out / "examples.npz", **arrays)
    write_json(out / "examples.json", captions)
    write_json(out / "heads.json", result)  # last: the unit's marker
    return result


def write_distribution(heads_files: Sequence[Path], super_path: Path | None, out: Path, task: str) -> dict:
    """Pool the per-head counts of every seed: all heads, the super-survivors and the other heads, per kind."""
    import numpy as np

    from attnpatterns.io import read_json, write_json
    from attnpatterns.prune.masks import read_head_set
    from attnpatterns.report.distributions import head_mask_of, pooled_counts

    per_seed = [read_json(p) for p in heads_files]
    types = per_seed[0]["types"]
    L, H = per_seed[0]["num_layers"], per_seed[0]["num_heads"]
    for r, p in zip(per_seed, heads_files):
        if r["types"] != types or (r["num_layers"], r["num_heads"]) != (L, H):
            raise UserError(f"{p}: another model shape or label set than {heads_files[0]}; rerun the classify stage.")
    heads: list = []
    if super_path is not None:
        hs = read_head_set(super_path, num_layers=L, num_heads=H)
        heads = [list(x) for x in hs.heads]
    smask = head_mask_of(heads, (L, H))
    out_d: dict[str, Any] = {
        "task": task,
        "seeds": [r["seed"] for r in per_seed],
        "types": types,
        "num_layers": L,
        "num_heads": H,
        "num_heads_total": L * H,
        "super_heads": heads,
        "super_source": str(super_path) if super_path is not None else None,
        "n_examples_per_seed": per_seed[0]["n_examples"],
    }
    for kind in KINDS:
        c = np.sum([np.asarray(r["counts"][kind], dtype=np.int64) for r in per_seed], axis=0)  # (L, H, types)
        groups = {"all": pooled_counts(c), "super": pooled_counts(c, smask), "other": pooled_counts(c, ~smask)}
        out_d[kind] = {
            g: {"counts": v.tolist(), "fractions": (v / v.sum() if v.sum() else v * 0.0).tolist()}
            for g, v in groups.items()
        }
        out_d[kind]["per_head"] = c.tolist()
        if all("labels" in r for r in per_seed):  # 95% intervals: two-stage bootstrap over seeds, then examples
            from attnpatterns.stats import bootstrap_fractions

            labs = [np.asarray(r["labels"][kind], dtype=np.int64) for r in per_seed]  # (examples, L, H) per seed
            seeds = np.concatenate([[j] * len(x) for j, x in enumerate(labs)])
            for g, m in (("all", np.ones((L, H), dtype=bool)), ("super", smask), ("other", ~smask)):
                if not m.any():
                    continue
                unit = np.concatenate(
                    [np.stack([np.bincount(row[m], minlength=len(types)) for row in x]) for x in labs]
                )
                _, lo, hi = bootstrap_fractions(unit, clusters=seeds if len(labs) > 1 else None, seed=0)
                out_d[kind][g]["ci_low"], out_d[kind][g]["ci_high"] = lo.tolist(), hi.tolist()
            out_d["interval"] = (
                "95% percentile bootstrap: seeds resampled, then examples within each seed"
                if len(labs) > 1
                else "95% percentile bootstrap over examples"
            )
    write_json(out, out_d)
    return out_d


def _config_dict(obj) -> dict:
    d = asdict(obj) if hasattr(obj, "__dataclass_fields__") else dict(obj)
    return json.loads(json.dumps(d, default=str))


def _package_version() -> str:
    import attnpatterns

    return attnpatterns.__version__


def run_pipeline(cfg: RunConfig) -> RunResult:
    """Run (or continue) every asked-for stage of ``cfg.out``; return what ran and what was skipped."""
    return Pipeline(cfg).run()
