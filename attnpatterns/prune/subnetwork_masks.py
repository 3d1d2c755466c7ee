"""The masks of the subnetworks: the good ones read from the pruning results (and cross-checked against the fine-tuned
model), the super-survivor sets, the random and bad counterparts drawn beside them, and their files in the run folder
(written first, read back on a rerun, never redrawn)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.prune.masks import read_weight_masks
from attnpatterns.prune.subnetwork_config import SubnetworkConfig
from attnpatterns.prune.subnetworks import (
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
from attnpatterns.run import layout
from attnpatterns.run.layout import RunLayout, SeedLayout

log = logging.getLogger("attnpatterns")


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
    from attnpatterns.finetune_runs import run_is_done
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


def model_of(rec: dict) -> str:
    return rec["config"]["model"]


# ----------------------------------------------------------------------------- good masks


def check_heads_shape(hm: np.ndarray, mm: np.ndarray | None, rec: dict, where: Path) -> None:
    L, H = rec["shape"]["num_layers"], rec["shape"]["num_heads"]
    if hm.shape != (L, H) or (mm is not None and mm.shape != (L,)):
        raise UserError(
            f"{where}: mask is for a {hm.shape[0]} x {hm.shape[1]} (layers x heads) model, but the fine-tuned "
            f"model in {rec['dir']} is {L} x {H}; the mask is from another model, use masks of this run."
        )


def check_model_name(file_model: str | None, rec: dict, where: Path) -> None:
    if file_model is not None and file_model != model_of(rec):
        raise UserError(
            f"{where}: mask of model '{file_model}', but {rec['dir']} fine-tuned '{model_of(rec)}'; "
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
    check_model_name(file_model, rec, where)
    mm = np.ones(hm.shape[0], dtype=np.float32) if mm is None else mm
    check_heads_shape(hm, mm, rec, where)
    return heads_mask(hm, mm, rec)


def heads_mask(hm, mm, rec: dict, info: dict | None = None) -> Mask:
    hm = np.asarray(hm, dtype=np.float32)
    mm = np.asarray(mm, dtype=np.float32)
    size = structured_size(hm, mm, rec["shape"]["hidden"], rec["shape"]["intermediate"])
    return Mask("heads", head_mask=hm, mlp_mask=mm, size=size, info=info or {})


def parameter_shapes(rec: dict) -> dict[str, tuple[int, ...]]:
    """{parameter name: shape} of the fine-tuned model: read from its safetensors, or, in a folder that holds only
    the run's records (run.json, metrics.json, config.json; as ``results/minilm-full/restore.sh`` with RECORDS=1
    leaves it), those of the model its config.json describes, built on the meta device (no weights, no download)."""
    ft = Path(rec["dir"]) / "model.safetensors"
    if ft.is_file():
        from safetensors import safe_open

        with safe_open(str(ft), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from attnpatterns.models import quiet_transformers

    with quiet_transformers(), torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(rec["dir"]))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def match_weight_names(masks: dict, rec: dict, where: Path) -> dict:
    """Check mask names and shapes against the fine-tuned model's parameters (see :func:`parameter_shapes`)."""
    shapes = parameter_shapes(rec)
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
    check_model_name(meta.get("model"), rec, sl.mask("magnitude"))
    masks = match_weight_names(masks, rec, sl.mask("magnitude"))
    return Mask("weights", weights=masks, size=unstructured_size(masks))


def super_pools(run: Path, task: str, seeds: Sequence[int], rec: dict) -> tuple[Pools, Pools]:
    """Survival counts of heads and MLPs over the seeds' s-pruning masks in the run folder."""
    from attnpatterns.prune.mask_algebra import stack_seeds, survival_counts
    from attnpatterns.prune.masks import discover_masks

    for s in seeds:
        where = RunLayout(run).seed(task, s).structured
        if not (where / layout.SUMMARY).is_file():
            raise UserError(
                f"{where}: s-pruning of {task} seed {s} has not finished (no summary.json); super-survivors "
                f"need every seed: run 'attn prune structured --task {task} --seeds {s}' first."
            )
    table = discover_masks(run, seeds=seeds, tasks=[task], model=model_of(rec))
    ((_, per_seed),) = table.items()
    _, hs, ms = stack_seeds(per_seed)
    if hs is None:
        raise UserError(f"{run}/{task}: the s-pruning masks hold no head masks; super-survivors need them.")
    L = hs.shape[1]
    if ms is None:
        ms = np.ones((hs.shape[0], L), dtype=bool)
    check_heads_shape(hs[0].astype(np.float32), ms[0].astype(np.float32), rec, Path(run) / task)
    return Pools(survival_counts(hs), hs.shape[0]), Pools(survival_counts(ms), ms.shape[0])


def super_masks(run: Path, task: str, seeds: Sequence[int], rec: dict) -> dict[str, Mask]:
    """The super-survivor set and its random/bad counterparts, written once per task under TASK/super/."""
    from attnpatterns.io import read_json, write_json
    from attnpatterns.prune.head_set import HeadSet

    seeds = sorted(int(s) for s in seeds)
    d = RunLayout(run).super_dir(task)
    hp, mp = super_pools(run, task, seeds, rec)
    model = model_of(rec)
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
            check_model_name(hs.model, rec, path)
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
        out[subnet] = heads_mask(hm, mm, rec, info)
    return out


# ----------------------------------------------------------------------------- counterparts and mask files


def fine_tuned_weights(rec: dict, names: Iterable[str]) -> dict:
    from safetensors import safe_open

    ft = Path(rec["dir"]) / "model.safetensors"
    if not ft.is_file():
        raise UserError(
            f"{ft}: not found; m-pruning's bad subnetwork is drawn from the fine-tuned weights, so put its "
            "mask.safetensors back beside the good one's or fine-tune again ('attn finetune --task "
            f"{rec['config']['task']} --seeds {rec['config']['seed']}' after removing the records-only folder)."
        )
    with safe_open(str(ft), framework="pt") as f:
        return {n: f.get_tensor(n) for n in names}


def draw_counterpart(method: str, subnet: str, good: Mask, task: str, seed: int, rec: dict) -> Mask:
    """The ``random`` or ``bad`` counterpart of a structured or magnitude ``good`` mask (seeded)."""
    if method == "structured":
        rng = rng_for(seed, task, method, subnet)
        fn = random_structured if subnet == "random" else bad_structured
        hm, mm = fn(good.head_mask, good.mlp_mask, rng)
        return heads_mask(hm, mm, rec, {"draw": f"numpy default_rng from ({seed}, '{task}', '{method}', '{subnet}')"})
    if subnet == "random":
        w = random_unstructured(good.weights, torch_generator_for(seed, task, method, subnet))
        info = {"draw": f"torch randperm, generator from ({seed}, '{task}', '{method}', '{subnet}')"}
    else:
        w = bad_unstructured(good.weights, fine_tuned_weights(rec, good.weights))
        info = {"draw": "keep the smallest |w| of the fine-tuned weights (the largest are removed)"}
    return Mask("weights", weights=w, size=unstructured_size(w), info=info)


def mask_path(d: Path, mask_kind: str) -> Path:
    return d / (layout.HEAD_MASK if mask_kind == "heads" else layout.WEIGHT_MASK)


def write_mask(d: Path, mask: Mask, meta: dict) -> None:
    from attnpatterns.io import save_safetensors, write_json
    from attnpatterns.prune.head_set import HeadSet

    if mask.kind == "heads":
        hs = HeadSet.from_arrays(
            mask.head_mask, mask.mlp_mask, model=meta["model"], task=meta["task"], seed=meta["seed"]
        )
        write_json(
            mask_path(d, "heads"),
            hs.to_json() | {k: v for k, v in meta.items() if k not in hs.to_json()} | {"size": mask.size} | mask.info,
        )
    else:
        import torch

        md = {k: str(v) for k, v in meta.items()} | {k: str(v) for k, v in mask.info.items()}
        save_safetensors(mask_path(d, "weights"), {k: v.to(torch.uint8) for k, v in mask.weights.items()}, metadata=md)


def read_mask(d: Path, kind: str, rec: dict, good_digest: str) -> Mask:
    """A mask written by :func:`write_mask`, checked against the model and the good mask it was drawn from."""
    from attnpatterns.io import read_json
    from attnpatterns.prune.head_set import HeadSet

    path = mask_path(d, kind)
    if kind == "heads":
        obj = read_json(path)
        hs = HeadSet.from_json(obj, source=str(path))
        check_model_name(hs.model, rec, path)
        hm, mm = hs.to_arrays()
        check_heads_shape(hm, mm, rec, path)
        mask = heads_mask(hm, mm, rec, {k: obj[k] for k in ("draw", "drawn_from") if k in obj})
        got = obj.get("good_digest")
    else:
        w, meta = read_weight_masks(path)
        check_model_name(meta.get("model"), rec, path)
        w = match_weight_names(w, rec, path)
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
        if mask_path(d, good.kind).is_file():
            out[subnet] = read_mask(d, good.kind, rec, gd)
            if subnet == "good" and out[subnet].digest() != gd:
                raise UserError(
                    f"{mask_path(d, good.kind)}: differs from the pruning result in the run now (pruning was "
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
            "model": model_of(rec),
            "task": cfg.task,
            "seed": seed,
            "method": cfg.method,
            "subnet": subnet,
            "good_digest": gd,
        }
        write_mask(d, m, meta)
        out[subnet] = m
    return out
