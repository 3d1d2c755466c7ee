"""Evaluate good, random and bad subnetworks twice: ``pruned`` and ``retrained``.

The method (docs/method.md, Subnetworks):

- ``pruned``: the mask applied to the fine-tuned model, evaluated on dev as is.
- ``retrained``: the mask applied to the PRE-TRAINED weights (rewind), a fresh classifier drawn under the
  same seed, fine-tuned again with the same hyperparameters (the fine-tuning run's ``run.json``), the mask
  held fixed during training (:func:`attnpatterns.finetune.finetune`).

Layout (docs/CONTRACTS.md), for every (task, seed, method, subnetwork)::

    RUN/TASK/seed_S/subnetworks/METHOD/SUBNET/mask.json | mask.safetensors   written first
    RUN/TASK/seed_S/subnetworks/METHOD/SUBNET/pruned.json                   one dev evaluation
    RUN/TASK/seed_S/subnetworks/METHOD/SUBNET/retrained/                    the re-fine-tuning run folder
    RUN/TASK/seed_S/subnetworks/METHOD/SUBNET/retrained.json                written last
    RUN/TASK/super/super-survivors.json, random.json, bad.json              the super sets (one per task)
    RUN/TASK/majority.json                                                  the majority-class baseline

Every file is written atomically, a result file only after its work finished, so an interrupted run
is continued by running the same command again: masks are read back (never redrawn), finished
results are skipped, and an unfinished re-fine-tuning starts over.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnpatterns.errors import UserError
from attnpatterns.prune.baselines import (  # noqa: F401 (re-exported)
    dev_count,
    majority_baseline,
    write_majority,
    write_reference_scores,
)
from attnpatterns.prune.subnetwork_config import SETTINGS, SubnetworkConfig  # noqa: F401 (re-exported)
from attnpatterns.prune.subnetwork_masks import (  # noqa: F401 (re-exported)
    Mask,
    check_heads_shape,
    check_model_name,
    draw_counterpart,
    fine_tuned_weights,
    finetuned_record,
    good_magnitude,
    good_structured,
    heads_mask,
    mask_path,
    masks_for_seed,
    match_weight_names,
    model_of,
    read_mask,
    seed_dir,
    subnet_dir,
    super_masks,
    super_pools,
    write_mask,
)
from attnpatterns.run.layout import RunLayout

log = logging.getLogger("attnpatterns")
WAIT_FOR_OTHER_S = 2.0  # how often a process waiting for another's full_retrained.json looks again


@dataclass
class SubnetResult:
    task: str
    seed: int
    method: str
    subnet: str
    setting: str
    score: float
    metrics: dict
    size: dict
    skipped: bool
    path: Path


# ----------------------------------------------------------------------------- evaluations


def _result_json(cfg, seed, subnet, setting, mask: Mask, metrics, score, rec, extra: dict) -> dict:
    from attnpatterns.data import get_task

    return {
        "task": cfg.task,
        "seed": seed,
        "method": cfg.method,
        "subnet": subnet,
        "setting": setting,
        "model": model_of(rec),
        "metrics": metrics,
        "score": float(score),
        "main_metric": get_task(cfg.task).main_key,
        "size": mask.size,
        "mask_digest": mask.digest(),
        "finetuned_score": float(rec["metrics_file"]["score"]),
    } | extra


def _read_done(path: Path, mask: Mask, cfg: SubnetworkConfig, max_train: int | None = None) -> dict | None:
    from attnpatterns.io import read_json

    if not path.is_file():
        return None
    r = read_json(path)
    if r.get("mask_digest") != mask.digest():
        raise UserError(f"{path}: made with another mask than {path.parent}'s mask file; delete {path} to redo it.")
    if r.get("max_dev_examples") != cfg.max_dev_examples:
        raise UserError(
            f"{path}: evaluated on {r.get('max_dev_examples') or 'all'} dev examples, but "
            f"{cfg.max_dev_examples or 'all'} were asked for; pass --max-dev-examples "
            f"{r.get('max_dev_examples') or 0} or delete the results of this method."
        )
    if path.name == "retrained.json" and r.get("max_train_examples") != max_train:
        raise UserError(
            f"{path}: retrained on {r.get('max_train_examples') or 'all'} training examples, but "
            f"{max_train or 'all'} were asked for; pass --max-train-examples "
            f"{r.get('max_train_examples') or 0} or delete the retrained results."
        )
    return r


def evaluate_pruned(model, tok, dev, mask: Mask, task: str, batch_size: int, max_length: int) -> dict:
    """Dev metrics of the fine-tuned ``model`` with ``mask`` applied (weights restored afterwards)."""
    import torch

    from attnpatterns.evaluation import evaluate

    if mask.kind == "heads":
        return evaluate(
            model,
            tok,
            task,
            dev,
            head_mask=mask.head_mask,
            mlp_mask=mask.mlp_mask,
            batch_size=batch_size,
            max_length=max_length,
        )
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in mask.weights}
    try:
        with torch.no_grad():
            for n, m in mask.weights.items():
                params[n].mul_(m.to(device=params[n].device, dtype=params[n].dtype))
        return evaluate(model, tok, task, dev, batch_size=batch_size, max_length=max_length)
    finally:
        with torch.no_grad():
            for n, w in saved.items():
                params[n].copy_(w)


def pretrained_ref(cfg: SubnetworkConfig, rec: dict) -> str:
    """Where the pre-trained weights are; UserError when they cannot be found."""
    from transformers import AutoConfig

    from attnpatterns.models import resolve_model

    ref = cfg.pretrained or rec.get("provenance", {}).get("model_ref") or rec["config"]["model"]
    try:
        path = resolve_model(None if ref == "minilm" else ref)
        AutoConfig.from_pretrained(path)
    except (UserError, OSError, ValueError) as e:
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UserError(
            f"'retrained' needs the pre-trained weights of {rec['dir']} ('{ref}'), which cannot be found "
            f"({msg}); pass --pretrained with their folder or hub id, or ask only for --settings pruned."
        ) from None
    return ref


def _retrain_config(cfg: SubnetworkConfig, rec: dict, ref: str):
    from attnpatterns.finetune import FinetuneConfig

    c = dict(rec["config"])
    c["model"] = None if ref == "minilm" else ref
    if cfg.max_train_examples is not None:
        c["max_train_examples"] = cfg.max_train_examples
    c.update(
        device=cfg.device,
        data_dir=cfg.data_dir,
        eval_batch_size=cfg.eval_batch_size,
        max_dev_examples=cfg.max_dev_examples,
    )
    known = set(FinetuneConfig.__dataclass_fields__)
    return FinetuneConfig(**{k: v for k, v in c.items() if k in known})


def run_subnetworks(cfg: SubnetworkConfig, show_progress: bool = True) -> list[SubnetResult]:
    """Evaluate every asked-for (seed, subnetwork, setting) of ``cfg``; skip what is done."""
    from attnpatterns.data import get_task, load_task, main_metric
    from attnpatterns.finetune import finetune
    from attnpatterns.finetune_runs import device_name, load_finetuned
    from attnpatterns.io import write_json
    from attnpatterns.progress import progress_iter

    cfg.check_run()
    spec = get_task(cfg.task)
    recs = {s: finetuned_record(cfg.run, cfg.task, s) for s in cfg.seeds}
    models = {model_of(r) for r in recs.values()}
    if len(models) > 1:
        raise UserError(
            f"{cfg.run}/{cfg.task}: the seeds were fine-tuned from different models ({', '.join(sorted(models))}); "
            "keep one model's runs in one run folder."
        )
    refs = {}
    if "retrained" in cfg.settings:  # fail before any work when the pre-trained weights are missing
        refs = {s: pretrained_ref(cfg, r) for s, r in recs.items()}
    first = recs[cfg.seeds[0]]
    supers = super_masks(cfg.run, cfg.task, cfg.super_from or cfg.seeds, first) if cfg.method == "super" else None
    masks = {s: masks_for_seed(cfg, s, recs[s], supers) for s in cfg.seeds}
    write_majority(cfg.run, cfg.task, cfg.data_dir)

    results: list[SubnetResult] = []
    devs: dict[int, list] = {}

    def dev_of(seed: int) -> list:  # the same seeded subsample as attn prune's --max-dev-examples
        if seed not in devs:
            devs[seed] = load_task(spec, "dev", cfg.data_dir, max_examples=cfg.max_dev_examples, seed=seed)
        return devs[seed]

    for s in cfg.seeds:  # the full model and the majority class on the same dev examples
        write_reference_scores(cfg, s, recs[s], dev_of)
    # pruned: cheap, all first
    todo = []
    for s in cfg.seeds:
        for subnet in cfg.subnets:
            d = subnet_dir(cfg.run, cfg.task, s, cfg.method, subnet)
            r = _read_done(d / "pruned.json", masks[s][subnet], cfg) if "pruned" in cfg.settings else None
            if r is not None:
                results.append(
                    SubnetResult(
                        cfg.task, s, cfg.method, subnet, "pruned", r["score"], r["metrics"], r["size"], True, d
                    )
                )
            elif "pruned" in cfg.settings:
                todo.append((s, subnet))
    loaded: dict[int, Any] = {}
    for s, subnet in progress_iter(todo, len(todo), f"{cfg.task} {cfg.method}: pruned", show_progress):
        if s not in loaded:
            loaded.clear()
            loaded[s] = load_finetuned(recs[s]["dir"], device=cfg.device)
        model, tok, _ = loaded[s]
        dev = dev_of(s)
        mask = masks[s][subnet]
        t0 = time.perf_counter()
        metrics = evaluate_pruned(
            model, tok, dev, mask, spec.name, cfg.eval_batch_size, int(recs[s]["config"]["max_length"])
        )
        score = float(main_metric(spec, metrics))
        d = subnet_dir(cfg.run, cfg.task, s, cfg.method, subnet)
        write_json(
            d / "pruned.json",
            _result_json(
                cfg,
                s,
                subnet,
                "pruned",
                mask,
                metrics,
                score,
                recs[s],
                {
                    "dev_examples": len(dev),
                    "max_dev_examples": cfg.max_dev_examples,
                    "seconds": round(time.perf_counter() - t0, 2),
                },
            ),
        )
        log.info("%s seed %d %s/%s pruned: %s = %.4f", cfg.task, s, cfg.method, subnet, spec.main_key, score)
        results.append(SubnetResult(cfg.task, s, cfg.method, subnet, "pruned", score, metrics, mask.size, False, d))
    loaded.clear()

    if "retrained" in cfg.settings:
        retrain_todo: list[tuple[int, str, int | None]] = []
        for s in cfg.seeds:
            ft_max = recs[s]["config"].get("max_train_examples")
            max_train = cfg.max_train_examples if cfg.max_train_examples is not None else ft_max
            for subnet in cfg.subnets:
                d = subnet_dir(cfg.run, cfg.task, s, cfg.method, subnet)
                r = _read_done(d / "retrained.json", masks[s][subnet], cfg, max_train)
                if r is not None:
                    results.append(
                        SubnetResult(
                            cfg.task, s, cfg.method, subnet, "retrained", r["score"], r["metrics"], r["size"], True, d
                        )
                    )
                else:
                    retrain_todo.append((s, subnet, max_train))
        for s, subnet, max_train in progress_iter(
            retrain_todo, len(retrain_todo), f"{cfg.task} {cfg.method}: retrained", show_progress
        ):
            d = subnet_dir(cfg.run, cfg.task, s, cfg.method, subnet)
            mask = masks[s][subnet]
            fcfg = _retrain_config(cfg, recs[s], refs[s])
            kw = (
                {"head_mask": mask.head_mask, "mlp_mask": mask.mlp_mask}
                if mask.kind == "heads"
                else {"weight_masks": mask.weights}
            )
            t0 = time.perf_counter()
            try:
                fr = finetune(fcfg, d / "retrained", show_progress=False, **kw)
            except UserError as e:
                raise UserError(f"{d / 'retrained'}: {e}") from None
            if not cfg.keep_checkpoints:
                (d / "retrained" / "model.safetensors").unlink(missing_ok=True)
            write_json(
                d / "retrained.json",
                _result_json(
                    cfg,
                    s,
                    subnet,
                    "retrained",
                    mask,
                    fr.metrics,
                    fr.score,
                    recs[s],
                    {
                        "max_train_examples": max_train,
                        "max_dev_examples": cfg.max_dev_examples,
                        "dev_examples": dev_count(d / "retrained"),
                        "pretrained": refs[s],
                        "run_dir": str(d / "retrained"),
                        "train_seconds": round(fr.train_seconds, 2),
                        "seconds": round(time.perf_counter() - t0, 2),
                        "checkpoint_kept": bool(cfg.keep_checkpoints),
                        "device": device_name(cfg.device),
                    },
                ),
            )
            log.info("%s seed %d %s/%s retrained: %s = %.4f", cfg.task, s, cfg.method, subnet, spec.main_key, fr.score)
            results.append(
                SubnetResult(cfg.task, s, cfg.method, subnet, "retrained", fr.score, fr.metrics, mask.size, False, d)
            )
        for s in cfg.seeds:
            max_train = (
                cfg.max_train_examples
                if cfg.max_train_examples is not None
                else recs[s]["config"].get("max_train_examples")
            )
            if max_train != recs[s]["config"].get("max_train_examples"):
                full_retrained(cfg, s, recs[s], refs[s], max_train)
    return results


def full_retrained(cfg: SubnetworkConfig, seed: int, rec: dict, ref: str, max_train: int | None) -> dict | None:
    """The unmasked model re-fine-tuned under the same budget as the subnetworks (``subnetworks/full_retrained.json``).

    Only written when the re-fine-tuning budget differs from the fine-tuning run's (otherwise that run is this
    control). While another live process holds its lock, waits for that process's file (or takes the work over when
    the holder dies or its lease runs out), so the file exists when this returns; None only when the lease was lost
    mid-run to a process that now writes it.
    """
    from attnpatterns.finetune import finetune
    from attnpatterns.io import read_json, write_json

    base = RunLayout(cfg.run).seed(cfg.task, seed).subnetworks
    path = base / "full_retrained.json"
    from attnpatterns.sweep.lease import LeaseLock

    base.mkdir(parents=True, exist_ok=True)
    lock = LeaseLock(base / ".full_retrained.lock")
    while True:
        if path.is_file():
            r = read_json(path)
            if r.get("max_train_examples") != max_train or r.get("max_dev_examples") != cfg.max_dev_examples:
                raise UserError(
                    f"{path}: made with {r.get('max_train_examples')} training / {r.get('max_dev_examples')} dev "
                    f"examples, but {max_train} / {cfg.max_dev_examples} were asked for; delete it to redo it."
                )
            return r
        if lock.acquire():
            if path.is_file():  # written between the look and the lock
                lock.release()
                continue
            break
        time.sleep(WAIT_FOR_OTHER_S)  # a live holder, on this host or another, writes it
    try:
        fr = finetune(_retrain_config(cfg, rec, ref), base / "full_retrained", show_progress=False)
        if not cfg.keep_checkpoints:
            (base / "full_retrained" / "model.safetensors").unlink(missing_ok=True)
        out = {
            "task": cfg.task,
            "seed": seed,
            "setting": "full_retrained",
            "metrics": fr.metrics,
            "score": fr.score,
            "max_train_examples": max_train,
            "max_dev_examples": cfg.max_dev_examples,
            "dev_examples": dev_count(base / "full_retrained"),
            "train_seconds": round(fr.train_seconds, 2),
        }
        if not lock.held:  # the lease was lost (expired and taken over): the new holder writes the file
            log.warning("%s seed %d: lost the lock of full_retrained.json; another process writes it", cfg.task, seed)
            return None
        write_json(path, out)
        log.info("%s seed %d full model retrained (%s training examples): %.4f", cfg.task, seed, max_train, fr.score)
        return out
    finally:
        lock.release()
