"""Super-survivors: the components kept in every seed (AND), and the rest split by how often they survive.

The method (docs/method.md, Subnetworks): "Super-survivors: components kept in all 5 seeds (AND). Their
size-matched bad and random counterparts are drawn from the never-kept and the in-between components." This
module gives those three disjoint sets; drawing the counterparts is the subnetworks stage's job.

- super-survivors: kept in every seed;
- in-between: kept in at least one seed but not in all;
- never kept: pruned in every seed.

Pure functions work on stacks over seeds, (S, L, H) for heads and (S, L) for MLPs, 1 = kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.prune.head_set import HeadSet
from attnpatterns.prune.mask_algebra import and_over_seeds, or_over_seeds, stack_seeds
from attnpatterns.prune.masks import discover_masks, model_of


@dataclass(frozen=True)
class SurvivorSplit:
    """Three disjoint boolean masks of one component type whose union is every component."""

    super: np.ndarray  # kept in every seed
    in_between: np.ndarray  # kept in some seeds, not all
    never: np.ndarray  # kept in no seed

    @property
    def counts(self) -> dict[str, int]:
        return {
            "super": int(self.super.sum()),
            "in_between": int(self.in_between.sum()),
            "never": int(self.never.sum()),
        }


def split_survivors(stack: Any) -> SurvivorSplit:
    """Split the components of a (S, ...) 0/1 stack over seeds into super / in-between / never kept."""
    s = np.asarray(stack).astype(bool)
    if s.ndim < 2 or s.shape[0] == 0:
        raise ValueError(f"split_survivors needs a stack (seeds, ...) with at least one seed, got shape {s.shape}")
    all_ = and_over_seeds(s)
    any_ = or_over_seeds(s)
    return SurvivorSplit(super=all_, in_between=any_ & ~all_, never=~any_)


def super_survivors(stack: Any) -> np.ndarray:
    """Components kept in every seed: (S, ...) -> (...) bool."""
    return split_survivors(stack).super


def in_between(stack: Any) -> np.ndarray:
    """Components kept in some seeds but not all: (S, ...) -> (...) bool."""
    return split_survivors(stack).in_between


def never_kept(stack: Any) -> np.ndarray:
    """Components pruned in every seed: (S, ...) -> (...) bool."""
    return split_survivors(stack).never


@dataclass(frozen=True)
class TaskSurvivors:
    """The survivor split of one task's heads (and MLPs when the masks have them)."""

    task: str
    seeds: list[int]
    heads: SurvivorSplit
    mlps: SurvivorSplit | None

    def head_set(self, which: str = "super", model: str | None = None) -> HeadSet:
        """The heads (and MLPs) of one split (super | in_between | never) as a HeadSet with ``seeds``."""
        if which not in ("super", "in_between", "never"):
            raise ValueError(f"which must be super, in_between or never, not {which!r}")
        hm = getattr(self.heads, which)
        mm = getattr(self.mlps, which) if self.mlps is not None else None
        return HeadSet.from_arrays(hm, mm, model=model, task=self.task, seeds=self.seeds, source=f"{self.task} {which}")


def task_survivors(task: str, seeds: Iterable[int], head_stack: Any | None, mlp_stack: Any | None) -> TaskSurvivors:
    """Survivor splits from the stacks of one task (either stack may be None, not both)."""
    seeds = list(seeds)
    if head_stack is None:
        raise UserError(f"{task}: the masks hold no head masks; super-survivors need head_mask.npy or mask.json.")
    return TaskSurvivors(
        task=task,
        seeds=seeds,
        heads=split_survivors(head_stack),
        mlps=split_survivors(mlp_stack) if mlp_stack is not None else None,
    )


def survivors_from_dir(
    masks_dir: str | os.PathLike,
    task: str,
    seeds: Iterable[int] | None = None,
    model: str | None = None,
    min_seeds: int = 2,
) -> tuple[TaskSurvivors, str | None]:
    """Load one task's masks from a folder (authors' layout or run folder) and split its components.

    Returns the split and the model id the masks carry (run folders) or ``model`` (the caller's label).
    """
    table = discover_masks(masks_dir, seeds=seeds, tasks=[task], model=model)
    ((name, per_seed),) = table.items()
    if len(per_seed) < min_seeds:
        raise UserError(
            f"{masks_dir}: task {name} has {len(per_seed)} seed(s) ({sorted(per_seed)}); super-survivors need at "
            f"least {min_seeds} seeds."
        )
    s, hs, ms = stack_seeds(per_seed)
    found_model = model if model is not None else model_of(masks_dir, {name: s})
    return task_survivors(name, s, hs, ms), found_model
