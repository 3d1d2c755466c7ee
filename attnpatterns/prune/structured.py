"""s-pruning: mask heads and MLPs by gate importance while the dev score stays >= 0.9 x full.

The schedule (docs/method.md, s-pruning; Prasanna et al. 2020):

(a) mask the ``max(1, int(0.1 * L * H))`` least important heads and 1 MLP, recompute importance under
    the new mask, repeat while the dev score >= ``ratio`` x the full model's score;
(b) then heads only, half as many per step (``max(1, step_a // 2)``);
(c) then MLPs only, 1 per step.

Already masked components rank last (never chosen again). Each phase starts from the last mask that met
the threshold; a phase ends at its first failing mask (or when nothing is left to mask), and the result is
the last mask that met the threshold. Ties in importance go to the lower (layer, head) index.

:func:`prune_schedule` is the pure schedule: it takes an ``evaluate(head_mask, mlp_mask) -> Evaluation``
callable, so a test can drive it with a fake scorer. :func:`s_prune` runs it on a fine-tuned run folder
with :func:`attnpatterns.prune.importance.compute_importance` and writes ``structured/``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.prune.stage_files import clear_iterations, done_already
from attnpatterns.run import layout
from attnpatterns.run.layout import SeedLayout

log = logging.getLogger("attnpatterns")

PHASES = ("full", "heads+mlps", "heads", "mlps")


@dataclass
class Evaluation:
    """Dev score and normalised importance of one mask."""

    score: float
    head_importance: np.ndarray  # (L, H)
    mlp_importance: np.ndarray  # (L,)
    metrics: dict = field(default_factory=dict)


@dataclass
class Iteration:
    index: int
    phase: str
    head_mask: np.ndarray  # (L, H) float32, 1 = kept
    mlp_mask: np.ndarray  # (L,) float32
    evaluation: Evaluation
    passed: bool

    def to_json(self) -> dict:
        return {
            "iteration": self.index,
            "phase": self.phase,
            "passed": self.passed,
            "score": self.evaluation.score,
            "metrics": self.evaluation.metrics,
            "heads_kept": int(self.head_mask.sum()),
            "mlps_kept": int(self.mlp_mask.sum()),
            "head_mask": self.head_mask.astype(int).tolist(),
            "mlp_mask": self.mlp_mask.astype(int).tolist(),
            "head_importance": np.asarray(self.evaluation.head_importance, dtype=float).tolist(),
            "mlp_importance": np.asarray(self.evaluation.mlp_importance, dtype=float).tolist(),
        }


@dataclass
class ScheduleResult:
    head_mask: np.ndarray
    mlp_mask: np.ndarray
    score: float
    full_score: float
    threshold: float
    final_iteration: int  # index of the kept (last passing) iteration
    iterations: list[Iteration]
    heads_per_step: tuple[int, int]  # phase (a), phase (b)


def mask_least_important(mask: np.ndarray, importance: np.ndarray, k: int) -> np.ndarray:
    """A copy of ``mask`` with the ``k`` least important still-kept entries set to 0 (masked ones rank last)."""
    flat = np.asarray(mask, dtype=np.float32).reshape(-1).copy()
    imp = np.asarray(importance, dtype=np.float64).reshape(-1).copy()
    if imp.shape != flat.shape:
        raise ValueError(f"importance has {imp.size} entries, the mask {flat.size}")
    imp[flat == 0] = np.inf
    k = min(int(k), int((flat != 0).sum()))
    if k > 0:
        order = np.argsort(imp, kind="stable")
        flat[order[:k]] = 0.0
    return flat.reshape(np.shape(mask))


def prune_schedule(
    evaluate: Callable[[np.ndarray, np.ndarray], Evaluation],
    num_layers: int,
    num_heads: int,
    ratio: float = 0.9,
    head_fraction: float = 0.1,
    on_iteration: Callable[[Iteration], None] | None = None,
    floor: float | None = None,
) -> ScheduleResult:
    """Run the three-phase schedule; ``evaluate`` scores a mask and gives the importance under it.

    ``floor`` (not in the study; ``--floor majority``): a mask must also score strictly above it (the majority
    class's score on the same dev examples), so a fine-tune whose 0.9 x score lies below the majority baseline
    cannot be pruned down to a model that only predicts the majority class."""
    hm = np.ones((num_layers, num_heads), dtype=np.float32)  # (L, H)
    mm = np.ones(num_layers, dtype=np.float32)  # (L,)
    iterations: list[Iteration] = []

    def record(phase, h, m, ev, passed) -> Iteration:
        it = Iteration(len(iterations), phase, h, m, ev, passed)
        iterations.append(it)
        if on_iteration is not None:
            on_iteration(it)
        return it

    full = evaluate(hm, mm)
    best = record("full", hm, mm, full, True)
    threshold = ratio * full.score
    step_a = max(1, int(head_fraction * num_layers * num_heads))
    step_b = max(1, step_a // 2)
    for phase, n_heads, n_mlps in (("heads+mlps", step_a, 1), ("heads", step_b, 0), ("mlps", 0, 1)):
        while True:
            cur_h, cur_m, ev = best.head_mask, best.mlp_mask, best.evaluation
            can_h = min(n_heads, int(cur_h.sum()))
            can_m = min(n_mlps, int(cur_m.sum()))
            if can_h + can_m == 0:
                break
            new_h = mask_least_important(cur_h, ev.head_importance, can_h)
            new_m = mask_least_important(cur_m, ev.mlp_importance, can_m)
            new_ev = evaluate(new_h, new_m)
            passed = meets(new_ev.score, threshold, floor)
            it = record(phase, new_h, new_m, new_ev, passed)
            if not passed:
                break
            best = it
    return ScheduleResult(
        best.head_mask,
        best.mlp_mask,
        best.evaluation.score,
        full.score,
        threshold,
        best.index,
        iterations,
        (step_a, step_b),
    )


# ----------------------------------------------------------------------------- on a run folder


@dataclass
class SPruneConfig:
    max_dev_examples: int | None = None
    running_total: bool = False
    batch_size: int = 32
    ratio: float = 0.9
    max_length: int = 128
    floor: str = "none"  # none (the study) or majority: also stay strictly above the majority class's score

    def __post_init__(self) -> None:
        if self.max_dev_examples is not None and self.max_dev_examples < 2:
            raise UserError(f"--max-dev-examples must be at least 2 (got {self.max_dev_examples}).")
        if not 0 < self.ratio <= 1:
            raise UserError(f"the threshold ratio must be in (0, 1] (got {self.ratio}).")
        check_floor(self.floor)


FLOORS = ("none", "majority")


def check_floor(floor: str) -> None:
    if floor not in FLOORS:
        raise UserError(f"unknown --floor '{floor}'; use none (the study's rule) or majority.")


def meets(score: float, threshold: float, floor: float | None) -> bool:
    """A pruning step passes: score >= 0.9 x full (``threshold``) and, with a floor, strictly above it."""
    return bool(score >= threshold) and (floor is None or score > floor)


def majority_guess(spec, train_labels) -> object:
    """The most frequent of the training labels (ties: the smallest label; STS-B: the mean score)."""
    from collections import Counter

    labels = list(train_labels)
    if spec.is_regression:
        return float(np.mean(labels))
    counts = Counter(labels)
    return max(sorted(counts), key=lambda k: counts[k])


def floor_score(floor: str, spec, labels, data_dir: str | None = None) -> float | None:
    """The score a pruned model must beat under ``floor`` on dev ``labels`` (None for ``none``)."""
    from attnpatterns.data import compute_metrics, load_task, main_metric

    if floor == "none":
        return None
    labels = list(np.asarray(labels).tolist())
    guess = majority_guess(spec, [e.label for e in load_task(spec, "train", data_dir)])
    return float(main_metric(spec, compute_metrics(spec, [guess] * len(labels), labels)))


def load_pruning_inputs(seed_dir: Path, cfg, device: str, data_dir: str | None):
    """The fine-tuned model of ``seed_dir``, its run record, task spec and encoded (seeded, subsampled) dev set.

    Shared by s-pruning and m-pruning: ``cfg`` needs ``max_dev_examples`` and ``max_length``.
    """
    from attnpatterns.batching import encode
    from attnpatterns.data import get_task, load_task
    from attnpatterns.finetune_runs import load_finetuned

    model, tok, rec = load_finetuned(SeedLayout(seed_dir).finetuned, device)
    spec = get_task(rec["config"]["task"])
    dev = load_task(spec, "dev", data_dir, max_examples=cfg.max_dev_examples, seed=rec["config"]["seed"])
    return model, rec, spec, encode(tok, dev, cfg.max_length)


def save_npy(path: Path, arr: np.ndarray) -> None:
    from attnpatterns.io import atomic_path

    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, arr)


def s_prune(
    seed_dir: str | os.PathLike,
    cfg: SPruneConfig | None = None,
    device: str = "cpu",
    data_dir: str | None = None,
    show_progress: bool = True,
) -> dict:
    """s-prune the fine-tuned model in ``seed_dir/finetuned`` and write ``seed_dir/structured``.

    Returns the summary (also written last to ``structured/summary.json``). Done already = skipped.
    """
    import torch

    from attnpatterns.batching import collate, length_batches
    from attnpatterns.data import compute_metrics, main_metric
    from attnpatterns.io import write_json
    from attnpatterns.prune.head_set import HeadSet, write_head_set
    from attnpatterns.prune.importance import compute_importance

    cfg = cfg or SPruneConfig()
    seed_dir = Path(seed_dir)
    out = SeedLayout(seed_dir).structured
    record = {
        "method": "structured",
        "importance_summation": "running_total" if cfg.running_total else "per_batch",
        "max_dev_examples": cfg.max_dev_examples,
        "batch_size": cfg.batch_size,
        "ratio": cfg.ratio,
    }
    done = done_already(out, record, cfg.floor, "s-pruning")
    if done is not None:
        return done
    model, rec, spec, enc = load_pruning_inputs(seed_dir, cfg, device, data_dir)
    task, seed, mid = rec["config"]["task"], rec["config"]["seed"], rec["config"]["model"]
    dev_device = next(model.parameters()).device
    batches = [collate(enc, idx, dev_device, spec.is_regression) for idx in length_batches(enc, cfg.batch_size)]
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads

    def evaluate(hm: np.ndarray, mm: np.ndarray) -> Evaluation:
        imp = compute_importance(
            model,
            batches,
            torch.from_numpy(hm),
            torch.from_numpy(mm),
            running_total=cfg.running_total,
            regression=spec.is_regression,
        )
        metrics = compute_metrics(spec, imp.preds.numpy(), imp.labels.numpy())
        return Evaluation(float(main_metric(spec, metrics)), imp.head.numpy(), imp.mlp.numpy(), metrics)

    out.mkdir(parents=True, exist_ok=True)
    clear_iterations(out)
    t0 = time.perf_counter()

    def on_iteration(it: Iteration) -> None:
        write_json(out / f"iter_{it.index:02d}.json", it.to_json())
        log.info(
            "%s seed %d s-pruning iter %d (%s): %d heads, %d MLPs, %s = %.4f%s",
            task,
            seed,
            it.index,
            it.phase,
            int(it.head_mask.sum()),
            int(it.mlp_mask.sum()),
            spec.main_key,
            it.evaluation.score,
            "" if it.passed else " (below threshold)",
        )

    floor = floor_score(cfg.floor, spec, enc.labels, data_dir)
    res = prune_schedule(evaluate, L, H, ratio=cfg.ratio, on_iteration=on_iteration, floor=floor)
    if res.full_score <= 0:
        log.warning(
            "%s seed %d: the full model's score is %.4f <= 0, so the 0.9 x full threshold does not bind; "
            "the fine-tune is too weak for meaningful pruning.",
            task,
            seed,
            res.full_score,
        )
    kept = res.iterations[res.final_iteration]
    hs = HeadSet.from_arrays(
        res.head_mask, res.mlp_mask, model=mid, task=task, seed=seed, source=str(out / layout.HEAD_MASK)
    )
    write_head_set(out / layout.HEAD_MASK, hs)
    save_npy(out / "head_mask.npy", res.head_mask.astype(np.float32))
    save_npy(out / "mlp_mask.npy", res.mlp_mask.astype(np.float32))
    save_npy(out / "head_importance.npy", np.asarray(kept.evaluation.head_importance, dtype=np.float32))
    save_npy(out / "mlp_importance.npy", np.asarray(kept.evaluation.mlp_importance, dtype=np.float32))
    summary: dict[str, Any] = dict(record)
    summary.update(
        {
            "task": task,
            "seed": seed,
            "model": mid,
            "num_layers": L,
            "num_heads": H,
            "full_score": res.full_score,
            "threshold": res.threshold,
            "floor_score": floor,
            "score": res.score,
            "main_metric": spec.main_key,
            "metrics": kept.evaluation.metrics,
            "final_iteration": res.final_iteration,
            "iterations": len(res.iterations),
            "heads_kept": int(res.head_mask.sum()),
            "mlps_kept": int(res.mlp_mask.sum()),
            "heads_per_step": list(res.heads_per_step),
            "dev_examples": len(enc.labels),
            "finetuned_score": rec["metrics"]["score"],
            "seconds": round(time.perf_counter() - t0, 2),
            "phases": {p: sum(1 for it in res.iterations if it.phase == p) for p in PHASES},
        }
    )
    write_json(out / "summary.json", summary)  # last: marks s-pruning as done
    summary["skipped"] = False
    return summary
