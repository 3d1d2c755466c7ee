"""The run folder, defined once: every path of ``docs/CONTRACTS.md`` ("Run folder") and how tasks and seeds are found.

::

    RUN/
      TASK/seed_S/finetuned/                     model.safetensors, config, tokenizer, run.json, metrics.json
      TASK/seed_S/structured/                    s-pruning: mask.json, summary.json, iter_*.json
      TASK/seed_S/magnitude/                     m-pruning: mask.safetensors, summary.json, step_*.json
      TASK/seed_S/subnetworks/METHOD/SUBNET/     mask, pruned.json, retrained.json (+ full.json, majority.json,
                                                 full_retrained.json beside METHOD/)
      TASK/super/                                super-survivors.json, random.json, bad.json
      TASK/majority.json                         the majority-class baseline of the task
      classify/TASK/seed_S/ , classify/TASK/     heads.json, examples.npz ; distribution.json
      report/                                    index.html, report.md
      .stages/STAGE/UNIT.json                    the stamps of attn run

Every other module, the CLI and the ``results/`` scripts take their paths from here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SEED_RE = re.compile(r"^seed_(-?\d+)$")
STAMPS = ".stages"
CLASSIFY = "classify"
REPORT = "report"
SUPER = "super"
RESERVED = (STAMPS, CLASSIFY, REPORT)  # top-level folders that are not tasks
PRUNE_METHODS = ("structured", "magnitude")
SUBNET_METHODS = ("structured", "magnitude", "super")
HEAD_MASK = "mask.json"  # s-pruning and head-set subnetworks
WEIGHT_MASK = "mask.safetensors"  # m-pruning and its subnetworks
SUMMARY = "summary.json"
SUPER_FILES = {"good": "super-survivors.json", "random": "random.json", "bad": "bad.json"}


def seed_name(seed: int) -> str:
    return f"seed_{int(seed)}"


def seed_of(name: str) -> int | None:
    """The seed of a ``seed_S`` folder name, else None."""
    m = SEED_RE.match(name)
    return int(m.group(1)) if m else None


def mask_name(method: str) -> str:
    """The mask file of a pruning method or subnetwork method: weights for magnitude, heads otherwise."""
    return WEIGHT_MASK if method == "magnitude" else HEAD_MASK


@dataclass(frozen=True)
class SeedLayout:
    """The folder of one (task, seed): ``RUN/TASK/seed_S``."""

    dir: Path

    @property
    def finetuned(self) -> Path:
        return self.dir / "finetuned"

    @property
    def structured(self) -> Path:
        return self.dir / "structured"

    @property
    def magnitude(self) -> Path:
        return self.dir / "magnitude"

    def pruning(self, method: str) -> Path:
        """``structured/`` or ``magnitude/``."""
        return self.dir / method

    def mask(self, method: str) -> Path:
        """The pruning result: ``structured/mask.json`` or ``magnitude/mask.safetensors``."""
        return self.pruning(method) / mask_name(method)

    def summary(self, method: str) -> Path:
        return self.pruning(method) / SUMMARY

    @property
    def subnetworks(self) -> Path:
        return self.dir / "subnetworks"

    def subnet(self, method: str, subnet: str) -> Path:
        return self.subnetworks / method / subnet

    def subnet_mask(self, method: str, subnet: str) -> Path:
        return self.subnet(method, subnet) / mask_name(method)

    @property
    def full(self) -> Path:
        """The unmasked fine-tuned model on the subnetworks' dev examples."""
        return self.subnetworks / "full.json"

    @property
    def majority(self) -> Path:
        return self.subnetworks / "majority.json"

    @property
    def full_retrained(self) -> Path:
        return self.subnetworks / "full_retrained.json"


@dataclass(frozen=True)
class RunLayout:
    """Every path of one run folder."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    # ------------------------------------------------------------------ tasks and seeds
    def task_dir(self, task: str) -> Path:
        return self.root / task

    def seed(self, task: str, seed: int) -> SeedLayout:
        return SeedLayout(self.root / task / seed_name(seed))

    def seed_dir(self, task: str, seed: int) -> Path:
        return self.seed(task, seed).dir

    def tasks(self) -> dict[str, dict[int, Path]]:
        """``{task: {seed: seed folder}}`` for every top-level folder holding ``seed_S`` folders, sorted."""
        out: dict[str, dict[int, Path]] = {}
        if not self.root.is_dir():
            return out
        for d in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name not in RESERVED):
            seeds = self.seeds_in(d)
            if seeds:
                out[d.name] = seeds
        return out

    @staticmethod
    def seeds_in(task_dir: Path) -> dict[int, Path]:
        """``{seed: folder}`` of the ``seed_S`` folders in a task folder, sorted by seed."""
        found = {}
        for c in task_dir.iterdir() if task_dir.is_dir() else ():
            s = seed_of(c.name)
            if s is not None and c.is_dir():
                found[s] = c
        return dict(sorted(found.items()))

    def majority(self, task: str) -> Path:
        """The task's majority-class baseline on its whole dev set (``TASK/majority.json``)."""
        return self.root / task / "majority.json"

    # ------------------------------------------------------------------ super-survivors
    def super_dir(self, task: str) -> Path:
        return self.root / task / SUPER

    def super_set(self, task: str, subnet: str = "good") -> Path:
        """``TASK/super/super-survivors.json`` (good), ``random.json`` or ``bad.json``."""
        return self.super_dir(task) / SUPER_FILES[subnet]

    # ------------------------------------------------------------------ classify, report, stamps
    def classify_dir(self, task: str, seed: int | None = None) -> Path:
        d = self.root / CLASSIFY / task
        return d if seed is None else d / seed_name(seed)

    @property
    def classify_root(self) -> Path:
        return self.root / CLASSIFY

    @property
    def report_dir(self) -> Path:
        return self.root / REPORT

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def stamp(self, stage: str, key: str) -> Path:
        return self.root / STAMPS / stage / (key.replace("/", "__") + ".json")
