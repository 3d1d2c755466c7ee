"""Evaluate good, random and bad subnetworks twice: ``pruned`` and ``retrained``.

REFERENCE (Subnetworks and re-fine-tuning):

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

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from attnpatterns import layout
from attnpatterns.errors import UserError
from attnpatterns.layout import RunLayout, SeedLayout
from attnpatterns.prune.masks import read_weight_masks
from attnpatterns.prune.subnetworks import (
    METHODS,
    SUBNETS,
    Pools,
    bad_structured,
    bad_unstructured,
    random_structured,
    random_unstructured,
    rng_for,
    structured_size,
    super_bad,
    super_random,
    torch_generator_for,
    unstructured_size,
)

log = logging.getLogger("attnpatterns")

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


@dataclass
class Mask:
    """One subnetwork's mask: head/MLP arrays (structured, super) or weight masks (magnitude)."""

    kind: str  # "heads" | "weights"
    head_mask: np.ndarray | None = None  # (L, H) float32 0/1
    mlp_mask: np.ndarray | None = None  # (L,)
    weights: dict = field(default_factory=dict)  # parameter name -> bool tensor (kind weights)
    size: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def digest(self) -> str:
        h = hashlib.sha256()
        if self.kind == "heads":
            h.update(np.ascontiguousarray(self.head_mask, dtype=np.uint8).tobytes())
            h.update(np.ascontiguousarray(self.mlp_mask, dtype=np.uint8).tobytes())
        else:
            for k in sorted(self.weights):
                h.update(k.encode())
                h.update(self.weights[k].to("cpu").numpy().astype(np.uint8).tobytes())
        return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- paths and records


def seed_dir(run: Path, task: str, seed: int) -> Path:
    return RunLayout(run).seed_dir(task, seed)


def subnet_dir(run: Path, task: str, seed: int, method: str, subnet: str) -> Path:
    return RunLayout(run).seed(task, seed).subnet(method, subnet)


def finetuned_record(run: Path, task: str, seed: int) -> dict:
    """run.json + metrics.json of the finished fine-tuning run, with ``dir`` and ``shape`` added."""
    from attnpatterns.finetune import run_is_done
    from attnpatterns.io import read_json

    d = RunLayout(run).seed(task, seed).finetuned
    if not d.is_dir():
        raise UserError(
            f"{d}: no fine-tuning run for {task} seed {seed}; run 'attn finetune --task {task} --seeds {seed}' "
            "into this run folder first, or leave the seed out."
        )
    if not run_is_done(d):
        raise UserError(
            f"{d}: fine-tuning of {task} seed {seed} did not finish (no metrics.json); rerun 'attn finetune'."
        )
    rec = read_json(d / "run.json")
    rec["metrics_file"] = read_json(d / "metrics.json")
    cfg = read_json(d / "config.json")
    rec["dir"] = str(d)
    rec["shape"] = {
        "num_layers": int(cfg["num_hidden_layers"]),
        "num_heads": int(cfg["num_attention_heads"]),
        "hidden": int(cfg["hidden_size"]),
        "intermediate": int(cfg["intermediate_size"]),
    }
    return rec


def _model_of(rec: dict) -> str:
    return rec["config"]["model"]


# ----------------------------------------------------------------------------- good masks


def _check_heads_shape(hm: np.ndarray, mm: np.ndarray | None, rec: dict, where: Path) -> None:
    L, H = rec["shape"]["num_layers"], rec["shape"]["num_heads"]
    if hm.shape != (L, H) or (mm is not None and mm.shape != (L,)):
        raise UserError(
            f"{where}: mask is for a {hm.shape[0]} x {hm.shape[1]} (layers x heads) model, but the fine-tuned "
            f"model in {rec['dir']} is {L} x {H}; the mask is from another model, use masks of this run."
        )


def _check_model_name(file_model: str | None, rec: dict, where: Path) -> None:
    if file_model is not None and file_model != _model_of(rec):
        raise UserError(
            f"{where}: mask of model '{file_model}', but {rec['dir']} fine-tuned '{_model_of(rec)}'; "
            "the mask is from another model, use masks of this run."
        )


def good_structured(run: Path, task: str, seed: int, rec: dict) -> Mask:
    from attnpatterns.prune.masks import read_seed_dir

    sd = seed_dir(run, task, seed)
    where = SeedLayout(sd).structured
    if not SeedLayout(sd).summary("structured").is_file():
        raise UserError(
            f"{where}: s-pruning of {task} seed {seed} has not finished (no summary.json); run "
            f"'attn prune structured --task {task} --seeds {seed}' first."
        )
    hm, mm, file_model = read_seed_dir(sd)
    if hm is None:
        raise UserError(f"{where}: no head mask; s-pruning writes mask.json or head_mask.npy.")
    _check_model_name(file_model, rec, where)
    mm = np.ones(hm.shape[0], dtype=np.float32) if mm is None else mm
    _check_heads_shape(hm, mm, rec, where)
    return _heads_mask(hm, mm, rec)


def _heads_mask(hm, mm, rec: dict, info: dict | None = None) -> Mask:
    hm = np.asarray(hm, dtype=np.float32)
    mm = np.asarray(mm, dtype=np.float32)
    size = structured_size(hm, mm, rec["shape"]["hidden"], rec["shape"]["intermediate"])
    return Mask("heads", head_mask=hm, mlp_mask=mm, size=size, info=info or {})


def _match_weight_names(masks: dict, rec: dict, where: Path) -> dict:
    """Check mask names and shapes against the fine-tuned model's parameters (read from its safetensors)."""
    from safetensors import safe_open

    ft = Path(rec["dir"]) / "model.safetensors"
    with safe_open(str(ft), framework="pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    out = {}
    for name, m in masks.items():
        target = name if name in shapes else next((k for k in shapes if k.endswith("." + name)), None)
        if target is None:
            raise UserError(
                f"{where}: '{name}' is not a parameter of the fine-tuned model in {rec['dir']}; the mask is "
                "from another model, use masks of this run."
            )
        if tuple(m.shape) != shapes[target]:
            raise UserError(
                f"{where}: '{name}' has shape {tuple(m.shape)} but the fine-tuned model's is "
                f"{shapes[target]}; the mask is from another model, use masks of this run."
            )
        out[target] = m
    return out


def good_magnitude(run: Path, task: str, seed: int, rec: dict) -> Mask:
    sl = RunLayout(run).seed(task, seed)
    where = sl.magnitude
    if not sl.summary("magnitude").is_file():
        raise UserError(
            f"{where}: m-pruning of {task} seed {seed} has not finished (no summary.json); run "
            f"'attn prune magnitude --task {task} --seeds {seed}' first."
        )
    masks, meta = read_weight_masks(sl.mask("magnitude"))
    _check_model_name(meta.get("model"), rec, sl.mask("magnitude"))
    masks = _match_weight_names(masks, rec, sl.mask("magnitude"))
    return Mask("weights", weights=masks, size=unstructured_size(masks))


def super_pools(run: Path, task: str, seeds: Sequence[int], rec: dict) -> tuple[Pools, Pools]:
    """Survival counts of heads and MLPs over the seeds' s-pruning masks in the run folder."""
    from attnpatterns.prune.masks import discover_masks, stack_seeds, survival_counts

    for s in seeds:
        where = RunLayout(run).seed(task, s).structured
        if not (where / layout.SUMMARY).is_file():
            raise UserError(
                f"{where}: s-pruning of {task} seed {s} has not finished (no summary.json); super-survivors "
                f"need every seed: run 'attn prune structured --task {task} --seeds {s}' first."
            )
    table = discover_masks(run, seeds=seeds, tasks=[task], model=_model_of(rec))
    ((_, per_seed),) = table.items()
    _, hs, ms = stack_seeds(per_seed)
    if hs is None:
        raise UserError(f"{run}/{task}: the s-pruning masks hold no head masks; super-survivors need them.")
    L = hs.shape[1]
    if ms is None:
        ms = np.ones((hs.shape[0], L), dtype=bool)
    _check_heads_shape(hs[0].astype(np.float32), ms[0].astype(np.float32), rec, Path(run) / task)
    return Pools(survival_counts(hs), hs.shape[0]), Pools(survival_counts(ms), ms.shape[0])


def super_masks(run: Path, task: str, seeds: Sequence[int], rec: dict) -> dict[str, Mask]:
    """The super-survivor set and its random/bad counterparts, written once per task under TASK/super/."""
    from attnpatterns.io import read_json, write_json
    from attnpatterns.prune.masks import HeadSet

    seeds = sorted(int(s) for s in seeds)
    d = RunLayout(run).super_dir(task)
    hp, mp = super_pools(run, task, seeds, rec)
    model = _model_of(rec)
    want_super = HeadSet.from_arrays(hp.super, mp.super, model=model, task=task, seeds=seeds)
    out: dict[str, Mask] = {}
    key = ",".join(map(str, seeds))
    for subnet, fname in layout.SUPER_FILES.items():
        path = d / fname
        if path.is_file():
            obj = read_json(path)
            hs = HeadSet.from_json(obj, source=str(path))
            if sorted(hs.seeds or []) != seeds:
                raise UserError(
                    f"{path}: made from seeds {hs.seeds}, but seeds {seeds} were asked for; pass --seeds "
                    f"{','.join(map(str, hs.seeds or []))} or delete {d} (and the super results) to redraw."
                )
            _check_model_name(hs.model, rec, path)
            if subnet == "good" and (hs.heads != want_super.heads or (hs.mlps or []) != (want_super.mlps or [])):
                raise UserError(
                    f"{path}: differs from the super-survivors of the s-pruning masks in {run}/{task} "
                    f"(pruning was rerun?); delete {d} and the super results to redraw."
                )
            hm, mm = hs.to_arrays()
            info = {k: obj[k] for k in ("drawn_from", "draw") if k in obj}
        else:
            if subnet == "good":
                hm, mm, info = hp.super.astype(np.float32), mp.super.astype(np.float32), {}
            else:
                draw = super_random if subnet == "random" else super_bad
                dh = draw(hp, rng_for(0, task, "super", subnet, "heads", key))
                dm = draw(mp, rng_for(0, task, "super", subnet, "mlps", key))
                hm, mm = dh.mask, dm.mask
                info = {
                    "drawn_from": {"heads": dh.from_pools, "mlps": dm.from_pools},
                    "draw": f"numpy default_rng from (0, '{task}', 'super', '{subnet}', kind, '{key}')",
                }
            hs = HeadSet.from_arrays(hm, mm, model=model, task=task, seeds=seeds, source=str(path))
            write_json(
                path,
                hs.to_json()
                | info
                | {
                    "pool_sizes": {
                        "heads": {
                            "super": int(hp.super.sum()),
                            "in_between": int(hp.in_between.sum()),
                            "never": int(hp.never.sum()),
                        },
                        "mlps": {
                            "super": int(mp.super.sum()),
                            "in_between": int(mp.in_between.sum()),
                            "never": int(mp.never.sum()),
                        },
                    }
                },
            )
        out[subnet] = _heads_mask(hm, mm, rec, info)
    return out


# ----------------------------------------------------------------------------- counterparts and mask files


def _fine_tuned_weights(rec: dict, names: Iterable[str]) -> dict:
    from safetensors import safe_open

    with safe_open(str(Path(rec["dir"]) / "model.safetensors"), framework="pt") as f:
        return {n: f.get_tensor(n) for n in names}


def draw_counterpart(method: str, subnet: str, good: Mask, task: str, seed: int, rec: dict) -> Mask:
    """The ``random`` or ``bad`` counterpart of a structured or magnitude ``good`` mask (seeded)."""
    if method == "structured":
        rng = rng_for(seed, task, method, subnet)
        fn = random_structured if subnet == "random" else bad_structured
        hm, mm = fn(good.head_mask, good.mlp_mask, rng)
        return _heads_mask(hm, mm, rec, {"draw": f"numpy default_rng from ({seed}, '{task}', '{method}', '{subnet}')"})
    if subnet == "random":
        w = random_unstructured(good.weights, torch_generator_for(seed, task, method, subnet))
        info = {"draw": f"torch randperm, generator from ({seed}, '{task}', '{method}', '{subnet}')"}
    else:
        w = bad_unstructured(good.weights, _fine_tuned_weights(rec, good.weights))
        info = {"draw": "keep the smallest |w| of the fine-tuned weights (the largest are removed)"}
    return Mask("weights", weights=w, size=unstructured_size(w), info=info)


def _mask_path(d: Path, mask_kind: str) -> Path:
    return d / (layout.HEAD_MASK if mask_kind == "heads" else layout.WEIGHT_MASK)


def write_mask(d: Path, mask: Mask, meta: dict) -> None:
    from attnpatterns.io import save_safetensors, write_json
    from attnpatterns.prune.masks import HeadSet

    if mask.kind == "heads":
        hs = HeadSet.from_arrays(
            mask.head_mask, mask.mlp_mask, model=meta["model"], task=meta["task"], seed=meta["seed"]
        )
        write_json(
            _mask_path(d, "heads"),
            hs.to_json() | {k: v for k, v in meta.items() if k not in hs.to_json()} | {"size": mask.size} | mask.info,
        )
    else:
        import torch

        md = {k: str(v) for k, v in meta.items()} | {k: str(v) for k, v in mask.info.items()}
        save_safetensors(_mask_path(d, "weights"), {k: v.to(torch.uint8) for k, v in mask.weights.items()}, metadata=md)


def read_mask(d: Path, kind: str, rec: dict, good_digest: str) -> Mask:
    """A mask written by :func:`write_mask`, checked against the model and the good mask it was drawn from."""
    from attnpatterns.io import read_json
    from attnpatterns.prune.masks import HeadSet

    path = _mask_path(d, kind)
    if kind == "heads":
        obj = read_json(path)
        hs = HeadSet.from_json(obj, source=str(path))
        _check_model_name(hs.model, rec, path)
        hm, mm = hs.to_arrays()
        _check_heads_shape(hm, mm, rec, path)
        mask = _heads_mask(hm, mm, rec, {k: obj[k] for k in ("draw", "drawn_from") if k in obj})
        got = obj.get("good_digest")
    else:
        w, meta = read_weight_masks(path)
        _check_model_name(meta.get("model"), rec, path)
        w = _match_weight_names(w, rec, path)
        mask = Mask("weights", weights=w, size=unstructured_size(w))
        got = meta.get("good_digest")
    if got is not None and got != good_digest:
        raise UserError(
            f"{path}: drawn from another good mask than the one in the run now (pruning was rerun?); delete "
            f"{d.parent} to redraw and re-evaluate."
        )
    return mask


def masks_for_seed(cfg: SubnetworkConfig, seed: int, rec: dict, supers: dict[str, Mask] | None) -> dict[str, Mask]:
    """Every asked-for subnetwork mask of one seed: read back when written before, else drawn and written."""
    if cfg.method == "structured":
        good = good_structured(cfg.run, cfg.task, seed, rec)
    elif cfg.method == "magnitude":
        good = good_magnitude(cfg.run, cfg.task, seed, rec)
    else:
        if supers is None:
            raise ValueError("the super method needs the super-survivor masks")
        good = supers["good"]
    gd = good.digest()
    out = {}
    for subnet in cfg.subnets:
        d = subnet_dir(cfg.run, cfg.task, seed, cfg.method, subnet)
        if _mask_path(d, good.kind).is_file():
            out[subnet] = read_mask(d, good.kind, rec, gd)
            if subnet == "good" and out[subnet].digest() != gd:
                raise UserError(
                    f"{_mask_path(d, good.kind)}: differs from the pruning result in the run now (pruning was "
                    f"rerun?); delete {d.parent} to re-evaluate."
                )
            continue
        if subnet == "good":
            m = good
        elif supers is not None:  # the super method (its masks are given exactly then)
            m = supers[subnet]
        else:
            m = draw_counterpart(cfg.method, subnet, good, cfg.task, seed, rec)
        meta = {
            "model": _model_of(rec),
            "task": cfg.task,
            "seed": seed,
            "method": cfg.method,
            "subnet": subnet,
            "good_digest": gd,
        }
        write_mask(d, m, meta)
        out[subnet] = m
    return out


# ----------------------------------------------------------------------------- evaluations


def _result_json(cfg, seed, subnet, setting, mask: Mask, metrics, score, rec, extra: dict) -> dict:
    from attnpatterns.data import get_task

    return {
        "task": cfg.task,
        "seed": seed,
        "method": cfg.method,
        "subnet": subnet,
        "setting": setting,
        "model": _model_of(rec),
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

    from attnpatterns.finetune import evaluate

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
    from attnpatterns.finetune import device_name, finetune, load_finetuned
    from attnpatterns.io import write_json
    from attnpatterns.progress import progress_iter

    cfg.check_run()
    spec = get_task(cfg.task)
    recs = {s: finetuned_record(cfg.run, cfg.task, s) for s in cfg.seeds}
    models = {_model_of(r) for r in recs.values()}
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
                        "dev_examples": _dev_count(d / "retrained"),
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
    control). Returns None when another process holds the lock (it writes the file).
    """
    from attnpatterns.finetune import finetune
    from attnpatterns.io import read_json, write_json

    base = RunLayout(cfg.run).seed(cfg.task, seed).subnetworks
    path = base / "full_retrained.json"
    if path.is_file():
        r = read_json(path)
        if r.get("max_train_examples") != max_train or r.get("max_dev_examples") != cfg.max_dev_examples:
            raise UserError(
                f"{path}: made with {r.get('max_train_examples')} training / {r.get('max_dev_examples')} dev "
                f"examples, but {max_train} / {cfg.max_dev_examples} were asked for; delete it to redo it."
            )
        return r
    from attnpatterns.lease import LeaseLock

    base.mkdir(parents=True, exist_ok=True)
    lock = LeaseLock(base / ".full_retrained.lock")
    if not lock.acquire():
        return None  # another process, on this host or another, holds a live lease: it writes the file
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
            "dev_examples": _dev_count(base / "full_retrained"),
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


# ----------------------------------------------------------------------------- majority baseline


def majority_baseline(task: str, data_dir: str | os.PathLike | None = None) -> dict:
    """Dev metrics of always predicting the training set's most frequent label (STS-B: its mean)."""
    from attnpatterns.data import compute_metrics, get_task, load_task, main_metric
    from attnpatterns.prune.structured import majority_guess

    spec = get_task(task)
    train = load_task(spec, "train", data_dir)
    dev = load_task(spec, "dev", data_dir)
    guess: Any = majority_guess(spec, [e.label for e in train])
    metrics = compute_metrics(spec, [guess] * len(dev), [e.label for e in dev])
    return {
        "task": spec.name,
        "prediction": guess,
        "metrics": metrics,
        "score": float(main_metric(spec, metrics)),
        "main_metric": spec.main_key,
        "train_examples": len(train),
        "dev_examples": len(dev),
    }


def _dev_count(run_dir: Path) -> int | None:
    from attnpatterns.io import read_json

    return read_json(run_dir / "metrics.json").get("dev_examples")


def write_reference_scores(cfg: SubnetworkConfig, seed: int, rec: dict, dev_of) -> None:
    """``subnetworks/full.json`` (the unmasked fine-tuned model) and ``subnetworks/majority.json`` of one seed,
    on the dev examples the subnetworks are evaluated on (the whole dev set: the fine-tuning run's own score)."""
    from attnpatterns.data import compute_metrics, get_task, main_metric
    from attnpatterns.finetune import evaluate, load_finetuned
    from attnpatterns.io import read_json, write_json

    spec = get_task(cfg.task)
    base = RunLayout(cfg.run).seed(cfg.task, seed).subnetworks
    for name in ("full", "majority"):
        path = base / f"{name}.json"
        if path.is_file():
            if read_json(path).get("max_dev_examples") != cfg.max_dev_examples:
                raise UserError(
                    f"{path}: made on {read_json(path).get('max_dev_examples') or 'all'} dev examples, but "
                    f"{cfg.max_dev_examples or 'all'} were asked for; use one --max-dev-examples per run "
                    "folder or delete its subnetworks/ results."
                )
            continue
        dev = dev_of(seed)
        if name == "full":
            if cfg.max_dev_examples is None:
                metrics = rec["metrics_file"]["metrics"]
            else:
                model, tok, _ = load_finetuned(rec["dir"], device=cfg.device)
                metrics = evaluate(
                    model, tok, spec, dev, batch_size=cfg.eval_batch_size, max_length=int(rec["config"]["max_length"])
                )
        else:
            guess = read_json(RunLayout(cfg.run).majority(cfg.task))["prediction"]
            metrics = compute_metrics(spec, [guess] * len(dev), [e.label for e in dev])
        write_json(
            path,
            {
                "task": cfg.task,
                "seed": seed,
                "setting": name,
                "metrics": metrics,
                "score": float(main_metric(spec, metrics)),
                "main_metric": spec.main_key,
                "dev_examples": len(dev),
                "max_dev_examples": cfg.max_dev_examples,
            },
        )


def write_majority(run: Path, task: str, data_dir=None) -> dict:
    from attnpatterns.io import read_json, write_json

    path = RunLayout(run).majority(task)
    if path.is_file():
        return read_json(path)
    r = majority_baseline(task, data_dir)
    write_json(path, r)
    return r
