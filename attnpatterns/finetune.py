"""Fine-tuning on a GLUE task with the study's hyperparameters, optionally with fixed masks.

The method (docs/method.md, Fine-tuning): max length 128, batch 32, lr 2e-5, 3 epochs, AdamW (eps 1e-8, no decay on
bias/LayerNorm), linear schedule, no warmup, gradient clipping at 1.0.

Choices the reference leaves open, named here:
- weight decay 0.01 on every parameter except biases and LayerNorm weights (BERT's own value;
  the reference names the exclusion but not the value);
- dynamic padding: each batch is padded to its longest example, not to 128 (same result up to
  float rounding, several times faster on CPU); evaluation batches are ordered by length for speed;
- ``max_train_examples`` subsamples the training set (seeded with the run's seed), for CPU budgets.

Masks are held fixed during training: head and MLP masks through :func:`attnpatterns.gates.gated`;
weight masks (m-pruning) are multiplied into the weights before training, the masked gradients are
zeroed, and the masks are re-applied after every optimizer step, so masked weights stay exactly zero.

A run folder holds ``model.safetensors`` + ``config.json`` + tokenizer files, ``run.json`` (config,
masks' digests, provenance) and ``metrics.json``, written last: its presence means the run is done.

Long runs are resumable within a fine-tuning: every ``checkpoint_minutes`` of training the model, optimiser,
schedule, random state, step and losses go to ``.checkpoint.pt`` in the run folder (written to a temporary file and
renamed, so an interruption never leaves half of one). A rerun of the same config continues from it and ends with
the weights an uninterrupted run gives (tests/test_finetune.py); the file is deleted when the run is done.

One process trains into a folder at a time: it holds ``.finetune.lock`` (a lease lock, :mod:`attnpatterns.sweep.lease`)
while it trains; a second process started on the same folder waits, then finds the run done or continues from
the checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnpatterns.batching import Encoded, collate, encode, length_batches  # noqa: F401 (re-exported)
from attnpatterns.errors import UserError
from attnpatterns.evaluation import evaluate, predict  # noqa: F401 (re-exported)
from attnpatterns.finetune_runs import (  # noqa: F401 (re-exported)
    check_existing,
    device_name,
    load_finetuned,
    provenance,
    run_identity,
    run_is_done,
    save_model,
)
from attnpatterns.fixed_masks import (  # noqa: F401 (re-exported)
    apply_weight_masks,
    as_gate,
    check_gate_shapes,
    check_weight_masks,
    mask_digest,
)

log = logging.getLogger("attnpatterns")

NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias", "layer_norm", "layernorm")


@dataclass
class FinetuneConfig:
    """One fine-tuning run. ``model`` None = the packaged MiniLM."""

    task: str
    seed: int
    model: str | None = None
    epochs: int = 3
    batch_size: int = 32
    lr: float = 2e-5
    max_length: int = 128
    max_train_examples: int | None = None
    weight_decay: float = 0.01
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    eval_batch_size: int = 64
    device: str = "cpu"
    data_dir: str | None = None
    max_dev_examples: int | None = None  # seeded dev subsample (as attn prune's); None = the whole dev set
    bf16: bool = True  # bf16 autocast for the training forward pass, only on cuda (a no-op on CPU); eval stays fp32
    checkpoint_minutes: float = 10.0  # training time between resumable checkpoints (0: after every step)

    def __post_init__(self) -> None:
        from attnpatterns.data import get_task

        self.task = get_task(self.task).name  # canonical name; unknown task -> UserError
        self.seed = int(self.seed)
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be at least 1 (got {getattr(self, name)}).")
        if self.lr <= 0:
            raise UserError(f"lr must be positive (got {self.lr}).")
        if self.max_train_examples is not None and int(self.max_train_examples) < 1:
            raise UserError(f"max_train_examples must be at least 1 or left out (got {self.max_train_examples}).")
        if self.max_dev_examples is not None and int(self.max_dev_examples) < 1:
            raise UserError(f"max_dev_examples must be at least 1 or left out (got {self.max_dev_examples}).")
        if self.checkpoint_minutes < 0:
            raise UserError(f"checkpoint_minutes must be 0 or more (got {self.checkpoint_minutes}).")

    def identity(self) -> dict[str, Any]:
        """The fields that define the result (device, data folder and eval batch size do not)."""
        from attnpatterns.models import model_id

        d = dataclasses.asdict(self)
        for k in ("device", "data_dir", "eval_batch_size", "checkpoint_minutes"):
            d.pop(k)
        if d["max_dev_examples"] is None:  # records written before the field existed stay equal
            d.pop("max_dev_examples")
        if not (self.bf16 and str(self.device).startswith("cuda")):  # fp32 runs: records stay as before
            d.pop("bf16")
        d["model"] = model_id(self.model)
        return d


@dataclass
class FinetuneResult:
    out_dir: Path
    metrics: dict
    score: float
    skipped: bool
    train_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def finetune(
    cfg: FinetuneConfig,
    out_dir: str | os.PathLike,
    head_mask=None,
    mlp_mask=None,
    weight_masks: dict | None = None,
    init_from: str | None = None,
    show_progress: bool = True,
) -> FinetuneResult:
    """Fine-tune ``cfg.model`` (or the weights in ``init_from``) on ``cfg.task`` and write ``out_dir``.

    ``head_mask`` (L, H) / ``mlp_mask`` (L,): 1 = kept, 0 = masked, fixed during training and evaluation.
    ``weight_masks``: parameter name -> bool mask (m-pruning), kept exactly zero throughout.
    ``init_from``: a hub id or folder whose weights start the run instead of ``cfg.model`` (e.g. the
    pre-trained model for re-fine-tuning; a fresh classifier is drawn under ``cfg.seed`` when the
    folder has none). A finished run with the same config is skipped; a folder holding another
    run is an error.
    """
    from attnpatterns.data import get_task
    from attnpatterns.models import model_id

    out_dir = Path(out_dir)
    spec = get_task(cfg.task)
    wm_digest = mask_digest(weight_masks) if weight_masks else None
    record: dict[str, Any] = {
        "kind": "finetune",
        "config": cfg.identity(),
        "masks": {"head_mask": mask_digest(head_mask), "mlp_mask": mask_digest(mlp_mask), "weight_masks": wm_digest},
        "init_from": None if init_from is None else model_id(init_from),
    }
    done = _done_already(out_dir, record)
    if done is not None:
        _drop_dead_lock(out_dir)
        return done
    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]  # the folders the lock file creates
    lock = _claim_folder(out_dir)
    try:
        done = _done_already(out_dir, record)  # finished by the process this one waited for
        if done is not None:
            return done
        return _train(cfg, out_dir, spec, record, head_mask, mlp_mask, weight_masks, init_from, show_progress)
    finally:
        lock.release()
        for d in made:  # deepest first; only the empty ones: bad input (caught in _train) leaves nothing behind
            with contextlib.suppress(OSError):
                d.rmdir()


def _done_already(out_dir: Path, record: dict) -> FinetuneResult | None:
    """The finished run of this config in ``out_dir`` (its leftover checkpoint removed), or None."""
    if not (out_dir.exists() and check_existing(out_dir, record)):
        return None
    from attnpatterns.io import read_json

    m = read_json(out_dir / "metrics.json")
    (out_dir / CHECKPOINT).unlink(missing_ok=True)  # left by a run stopped between its last two writes
    log.info("%s: done already, skipped", out_dir)
    return FinetuneResult(out_dir, m["metrics"], m["score"], True, m.get("train_seconds", 0.0))


def _drop_dead_lock(out_dir: Path) -> None:
    """Remove the lock of a process killed after its run's last write but before it let go (a finished folder then
    holds no lock file); a lock a live process holds is left to it."""
    if not (out_dir / LOCK).exists():
        return
    from attnpatterns.sweep.lease import LeaseLock

    lock = LeaseLock(out_dir / LOCK, renew=False)
    if lock.acquire():
        lock.release()


def _claim_folder(out_dir: Path):
    """The folder's lock (``.finetune.lock``), taken once no live process holds it: a second process started on the
    same folder waits instead of training beside the first (both would write the same checkpoint and weights),
    then finds the run done or continues from its checkpoint. A holder killed on this host is taken over at once,
    one on another host when its lease ends (:mod:`attnpatterns.sweep.lease`)."""
    from attnpatterns.sweep.lease import LeaseLock

    lock = LeaseLock(out_dir / LOCK)
    said = False
    while not lock.acquire():
        if not said:
            holder = lock.read() or {}
            log.warning(
                "%s: another process (pid %s on %s) is fine-tuning into this folder; waiting for it (Ctrl-C stops "
                "this one, the other goes on)",
                out_dir,
                holder.get("pid", "?"),
                holder.get("host", "?"),
            )
            said = True
        time.sleep(WAIT_S)
    return lock


def _train(cfg, out_dir, spec, record, head_mask, mlp_mask, weight_masks, init_from, show_progress) -> FinetuneResult:
    import numpy as np
    import torch

    from attnpatterns.data import compute_metrics, load_task, main_metric
    from attnpatterns.gates import gated
    from attnpatterns.io import write_json
    from attnpatterns.models import load_model, model_id
    from attnpatterns.progress import progress_iter
    from attnpatterns.seed import set_seed

    set_seed(cfg.seed)
    train = load_task(spec, "train", cfg.data_dir, max_examples=cfg.max_train_examples, seed=cfg.seed)
    if not spec.is_regression and len({e.label for e in train}) < 2:
        raise UserError(
            f"{spec.name} training data: every example has label {train[0].label if train else '-'}; "
            "a classifier needs at least two classes, check the train.tsv (or a larger --max-train-examples)."
        )
    dev = load_task(spec, "dev", cfg.data_dir, max_examples=cfg.max_dev_examples, seed=cfg.seed)
    model, tok = load_model(
        init_from if init_from is not None else cfg.model,
        num_labels=spec.num_labels,
        device=cfg.device,
        eval_mode=False,
    )
    device = next(model.parameters()).device
    check_gate_shapes(model, head_mask, mlp_mask)
    hg, mg = as_gate(head_mask, device), as_gate(mlp_mask, device)
    wmasks = check_weight_masks(model, weight_masks) if weight_masks else {}
    if wmasks:
        apply_weight_masks(model, wmasks)

    record["provenance"] = provenance(device)
    record["provenance"]["model_ref"] = init_from if init_from is not None else (cfg.model or "minilm")
    record["data"] = {
        "train_examples": len(train),
        "dev_examples": len(dev),
        "subsampled": cfg.max_train_examples is not None,
    }
    record["masked"] = {
        "heads_kept": None if hg is None else int(hg.sum().item()),
        "mlps_kept": None if mg is None else int(mg.sum().item()),
        "weights_kept": None
        if not wmasks
        else {
            "kept": int(sum(m.sum().item() for m in wmasks.values())),
            "total": int(sum(m.numel() for m in wmasks.values())),
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "run.json", record)

    enc = encode(tok, train, cfg.max_length)
    n = len(enc)
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs

    decay: list = []
    no_decay: list = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if any(k in name for k in NO_DECAY) else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        eps=cfg.adam_eps,
        fused=device.type in ("cpu", "cuda"),  # same update as the default loop, several times faster on CPU
    )

    def lr_lambda(step: int) -> float:  # linear decay to 0; warmup_steps = 0 in the study
        if step < cfg.warmup_steps:
            return (step + 1) / max(1, cfg.warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - cfg.warmup_steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    params = dict(model.named_parameters())
    wmasks_f = {name: m.to(params[name].dtype) for name, m in wmasks.items()}  # as 0/1 floats once, not every step
    gen = torch.Generator().manual_seed(cfg.seed)

    def batches():
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=gen).tolist()
            for i in range(0, n, cfg.batch_size):
                yield perm[i : i + cfg.batch_size]

    ckpt = out_dir / CHECKPOINT
    key = _resume_key(record, total_steps)
    start, done_seconds, resumed_losses = _resume(ckpt, key, model, opt, sched)
    # each step's loss stays on the device until a checkpoint or the end: no host sync per step on a GPU
    loss_buf = torch.zeros(total_steps, dtype=torch.float32, device=device)
    if start:
        loss_buf[:start] = torch.tensor(resumed_losses[:start], dtype=torch.float32)
        log.info("%s: resuming at step %d of %d (%.0f s trained)", out_dir, start, total_steps, done_seconds)
    model.train()
    t0 = time.perf_counter()
    last_save = t0
    # bf16 autocast only on cuda (weights, gradients and the optimiser stay fp32; no loss scaling needed for bf16)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if cfg.bf16 and device.type == "cuda" else contextlib.nullcontext()
    )
    todo = itertools.islice(batches(), start, None)  # the batches of a resumed run: the same order, from its step
    with gated(model, hg, mg):
        for step, idx in enumerate(
            progress_iter(todo, total_steps - start, f"fine-tune {spec.name} seed {cfg.seed}", show_progress), start
        ):
            b = collate(enc, idx, device, spec.is_regression)
            with amp:
                out = model(**b)
            out.loss.backward()
            for name, m in wmasks_f.items():
                if params[name].grad is not None:
                    params[name].grad.mul_(m)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if wmasks_f:
                apply_weight_masks(model, wmasks_f)
            loss_buf[step] = out.loss.detach()
            now = time.perf_counter()
            if step + 1 < total_steps and now - last_save >= 60 * cfg.checkpoint_minutes:
                losses = loss_buf[: step + 1].tolist()
                _save_checkpoint(ckpt, key, step + 1, done_seconds + now - t0, losses, model, opt, sched)
                last_save = time.perf_counter()
    losses = loss_buf.tolist()
    train_seconds = done_seconds + time.perf_counter() - t0
    model.eval()

    dev_enc = encode(tok, dev, cfg.max_length)
    t1 = time.perf_counter()
    preds, labels = predict(model, dev_enc, spec.is_regression, hg, mg, cfg.eval_batch_size)
    metrics = compute_metrics(spec, preds, labels)
    score = float(main_metric(spec, metrics))
    save_model(model, tok, out_dir)
    result = {
        "task": spec.name,
        "seed": cfg.seed,
        "model": model_id(cfg.model),
        "metrics": metrics,
        "score": score,
        "main_metric": spec.main_key,
        "train_examples": n,
        "dev_examples": len(dev),
        "steps": total_steps,
        "train_seconds": round(train_seconds, 2),
        "eval_seconds": round(time.perf_counter() - t1, 2),
        "final_train_loss": float(np.mean(losses[-steps_per_epoch:])) if losses else None,
    }
    write_json(out_dir / "metrics.json", result)  # last: marks the run as done
    ckpt.unlink(missing_ok=True)
    log.info(
        "%s seed %d: %s = %.4f (%d train examples, %.0f s)", spec.name, cfg.seed, spec.main_key, score, n, train_seconds
    )
    return FinetuneResult(out_dir, metrics, score, False, train_seconds)


CHECKPOINT = ".checkpoint.pt"  # hidden: bookkeeping, left out of the stamps' digests of the run folder
LOCK = ".finetune.lock"  # hidden too: held while a process trains into the folder
WAIT_S = 5.0  # how often a process waiting for another's fine-tuning of the same folder looks again


def _resume_key(record: dict, total_steps: int) -> dict:
    """What a checkpoint must share with the run that reads it: the config, masks, starting weights and steps."""
    return {"run": run_identity(record), "total_steps": total_steps}


def _save_checkpoint(path: Path, key: dict, step: int, seconds: float, losses: list, model, opt, sched) -> None:
    """Everything a rerun needs to continue after ``step`` optimiser steps, written atomically."""
    import torch

    state = {
        "key": key,
        "step": step,
        "seconds": seconds,
        "losses": list(losses),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    from attnpatterns.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _resume(path: Path, key: dict, model, opt, sched) -> tuple[int, float, list]:
    """(steps done, seconds trained, losses) from the checkpoint at ``path``, with the model, optimiser, schedule and
    random state restored; (0, 0.0, []) when there is none or it belongs to another run (it is then replaced)."""
    import torch

    if not path.is_file():
        return 0, 0.0, []
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint: start over, the run is still correct
        log.warning("%s: unreadable (%s); training from the start", path, type(e).__name__)
        return 0, 0.0, []
    if state.get("key") != key:
        log.warning("%s: from another run of this folder; training from the start", path)
        return 0, 0.0, []
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"]), float(state["seconds"]), list(state["losses"])
