"""Run profiles and the configuration of one ``attn run``: what a run is asked to do.

``quick`` (the default of ``make run``: the packaged MiniLM, MRPC, two seeds, subsampled training, small dev subsets for
pruning, within 10 minutes and 4 GB on a 2-core CPU) and ``paper`` (the study's settings: every GLUE task at hand,
five seeds, full training sets, 3 epochs, 100 dev examples per seed for the maps).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

from attnpatterns.errors import UserError
from attnpatterns.run import layout

STAGES = ("finetune", "structured", "magnitude", "survivors", "subnetworks", "classify", "report")
SUBNET_METHODS = layout.SUBNET_METHODS


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
