"""The configuration of one subnetworks evaluation (``attn subnetworks``, the pipeline's subnetworks stage)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from attnpatterns.errors import UserError
from attnpatterns.prune.subnetworks import METHODS, SUBNETS

SETTINGS = ("pruned", "retrained")


@dataclass
class SubnetworkConfig:
    """One call: a task, its seeds and one pruning method, under one run folder."""

    run: Path
    task: str
    seeds: list[int]
    method: str
    subnets: tuple[str, ...] = SUBNETS
    settings: tuple[str, ...] = SETTINGS
    max_train_examples: int | None = None  # None: as the fine-tuning run
    max_dev_examples: int | None = None  # seeded dev subsample (as attn prune's); None: the whole dev set
    pretrained: str | None = None  # None: the model named in the fine-tuning run's run.json
    device: str = "cpu"
    data_dir: str | None = None
    keep_checkpoints: bool = False
    eval_batch_size: int = 64
    super_from: list[int] | None = None  # seeds whose s-pruning masks define the super set; None: ``seeds``

    def __post_init__(self) -> None:
        from attnpatterns.data import get_task

        self.run = Path(self.run)
        self.task = get_task(self.task).name
        if self.method not in METHODS:
            raise UserError(f"unknown method '{self.method}'; use one of {', '.join(METHODS)}.")
        self.seeds = [int(s) for s in self.seeds]
        if not self.seeds:
            raise UserError("no seeds given; pass --seeds, e.g. 1337,42,86.")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"seeds {self.seeds} repeat a seed; give each seed once.")
        for name, allowed, got in (("subnetwork", SUBNETS, self.subnets), ("setting", SETTINGS, self.settings)):
            bad = [x for x in got if x not in allowed]
            if bad or not got:
                raise UserError(f"unknown {name} '{bad[0] if bad else ''}'; use some of {', '.join(allowed)}.")
        self.subnets = tuple(s for s in SUBNETS if s in self.subnets)
        self.settings = tuple(s for s in SETTINGS if s in self.settings)
        if self.max_train_examples is not None and int(self.max_train_examples) < 1:
            raise UserError(f"--max-train-examples must be at least 1 or left out (got {self.max_train_examples}).")
        if self.max_dev_examples is not None and int(self.max_dev_examples) < 1:
            raise UserError(f"--max-dev-examples must be at least 1 or left out (got {self.max_dev_examples}).")
        if self.super_from is not None:
            if self.method != "super":
                raise UserError("--super-from only applies to --method super.")
            self.super_from = [int(s) for s in self.super_from]
            if len(set(self.super_from)) != len(self.super_from):
                raise UserError(f"--super-from {self.super_from} repeats a seed; give each seed once.")
        if self.method == "super" and len(self.super_from or self.seeds) < 2:
            raise UserError("super-survivors need at least two seeds; pass --seeds (or --super-from) with two or more.")

    def check_run(self) -> None:
        """The run folder must exist when the subnetworks are evaluated (not when a plan is made)."""
        if not self.run.is_dir():
            raise UserError(
                f"{self.run}: no such run folder; pass --run with the folder 'attn finetune' and 'attn prune' wrote."
            )
