"""m-pruning: remove 10% of the remaining prunable weights by global magnitude, while dev >= 0.9 x full.

Prunable (docs/method.md, m-pruning): in every transformer layer the weights and biases of Q, K, V, the
attention output dense, the intermediate dense and the output dense, except the output dense's bias.
Never: embeddings, LayerNorm, pooler, classifier.

Step k keeps ``round(N * 0.9**k)`` of the ``N`` prunable weights, i.e. each step removes 10% of the
remaining ones (the cumulative target avoids rounding drift). At most 10 steps, stopping at the first
step whose dev score falls below ``ratio`` x the full model's score; the result is the last passing
mask. The fine-tuned weights are masked, never retrained between steps.

The global threshold is the exact k-th smallest of one concatenated vector of the surviving weights'
magnitudes (masked ones set to +inf; :func:`kth_smallest`: a bracket from a strided sample, then one
``torch.kthvalue`` inside it), with ties at the threshold broken by position, so exactly the requested
number of weights goes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # torch loads on first use, so importing the package stays light
    import torch
    from torch import Tensor

from attnpatterns.errors import UserError
from attnpatterns.run import layout
from attnpatterns.run.layout import SeedLayout

log = logging.getLogger("attnpatterns")


def prunable_parameters(model) -> dict[str, torch.nn.Parameter]:
    """``name -> parameter`` of the prunable weights and biases, in layer order (names as in ``named_parameters``)."""
    from attnpatterns.families import family_of, get_layers, get_submodule

    fam = family_of(model)
    by_id = {id(p): n for n, p in model.named_parameters()}
    out: dict[str, torch.nn.Parameter] = {}
    for layer in get_layers(model):
        for path in fam.prunable_linears():
            lin = get_submodule(layer, path)
            out[by_id[id(lin.weight)]] = lin.weight
            if lin.bias is not None and path != fam.mlp_out:  # the output dense bias is never pruned
                out[by_id[id(lin.bias)]] = lin.bias
    return out


def full_masks(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    import torch

    return {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}


def kept_target(total: int, step: int, fraction: float = 0.1) -> int:
    """How many prunable weights survive ``step`` steps: ``round(total * (1 - fraction) ** step)``."""
    return int(round(total * (1.0 - fraction) ** step))


def global_magnitude_masks(
    weights: Mapping[str, Tensor],
    masks: Mapping[str, Tensor],
    n_remove: int,
    largest: bool = False,
) -> dict[str, Tensor]:
    """New masks with the ``n_remove`` smallest-magnitude surviving weights removed (``largest``: the largest).

    ``weights`` and ``masks`` share names and shapes; masks are bool (True = kept).
    """
    import torch

    names = list(weights)
    with torch.no_grad():
        flat_mask = torch.cat([masks[n].reshape(-1) for n in names])  # (N,)
        mag = torch.cat([weights[n].detach().reshape(-1).float() for n in names]).abs_()  # (N,)
        if largest:
            mag = mag.neg_()
        mag.masked_fill_(~flat_mask, float("inf"))  # already removed: rank last
        alive = int(torch.count_nonzero(flat_mask))
        n_remove = min(int(n_remove), alive)
        if n_remove > 0:
            thr = kth_smallest(mag, n_remove)
            remove = mag < thr
            need = n_remove - int(torch.count_nonzero(remove))
            if need > 0:
                ties = torch.nonzero(mag == thr).squeeze(-1)[:need]
                remove[ties] = True
            flat_mask = flat_mask & ~remove
        out, start = {}, 0
        for n in names:
            k = weights[n].numel()
            out[n] = flat_mask[start : start + k].view(weights[n].shape).clone()
            start += k
    return out


def kth_smallest(v: Tensor, k: int, sample: int = 1_000_000, margin: float = 0.002) -> Tensor:
    """The ``k``-th smallest value (1-based) of a 1-D tensor, exactly.

    Large inputs: a bracket [lo, hi] around the k/n quantile of a strided sample of ``sample`` values
    (+-``margin`` in quantile, about 7 standard errors), then one ``torch.kthvalue`` over the few values inside
    it; if the bracket misses (never seen, but possible), a ``torch.kthvalue`` over everything.
    """
    import torch

    n = v.numel()
    if n <= 2 * sample:
        return torch.kthvalue(v, k).values
    s = torch.sort(v[:: n // sample]).values  # (about sample,)
    m, q = s.numel(), k / n
    lo = s[max(0, int((q - margin) * m))]
    hi = s[min(m - 1, int((q + margin) * m) + 1)]
    below = int(torch.count_nonzero(v < lo))
    if below < k:
        cand = v[(v >= lo) & (v <= hi)]
        if below + cand.numel() >= k:
            return torch.kthvalue(cand, k - below).values
    return torch.kthvalue(v, k).values


def magnitude_step(
    weights: Mapping[str, Tensor], masks: Mapping[str, Tensor], step: int, fraction: float = 0.1, largest: bool = False
) -> dict[str, Tensor]:
    """Masks after step ``step`` (1-based) given the masks after step ``step - 1``."""
    total, alive = sum(m.numel() for m in masks.values()), count_kept(masks)[0]
    return global_magnitude_masks(weights, masks, alive - kept_target(total, step, fraction), largest)


def count_kept(masks: Mapping[str, Tensor]) -> tuple[int, int]:
    """(kept, total) over bool masks."""
    import torch

    return sum(int(torch.count_nonzero(m)) for m in masks.values()), sum(m.numel() for m in masks.values())


def read_weight_masks(path: str | os.PathLike, model=None) -> dict[str, Tensor]:
    """Read ``mask.safetensors`` (name -> bool, :func:`attnpatterns.prune.masks.read_weight_masks`); with ``model``,
    check names and shapes against it."""
    from attnpatterns.prune.masks import read_weight_masks as read_file

    masks, _ = read_file(path)
    if model is not None:
        from attnpatterns.fixed_masks import check_weight_masks

        check_weight_masks(model, masks, where=str(path))
    return masks


# ----------------------------------------------------------------------------- on a run folder


@dataclass
class MPruneConfig:
    max_dev_examples: int | None = None
    max_steps: int = 10
    fraction: float = 0.1
    ratio: float = 0.9
    batch_size: int = 64
    max_length: int = 128
    floor: str = "none"  # none (the study) or majority: also stay strictly above the majority class's score

    def __post_init__(self) -> None:
        from attnpatterns.prune.structured import check_floor

        check_floor(self.floor)
        if self.max_dev_examples is not None and self.max_dev_examples < 2:
            raise UserError(f"--max-dev-examples must be at least 2 (got {self.max_dev_examples}).")
        if not 0 < self.fraction < 1:
            raise UserError(f"the pruning fraction must be in (0, 1) (got {self.fraction}).")
        if self.max_steps < 1:
            raise UserError(f"max_steps must be at least 1 (got {self.max_steps}).")


def m_prune(
    seed_dir: str | os.PathLike,
    cfg: MPruneConfig | None = None,
    device: str = "cpu",
    data_dir: str | None = None,
    show_progress: bool = True,
) -> dict:
    """m-prune the fine-tuned model in ``seed_dir/finetuned`` and write ``seed_dir/magnitude``.

    Returns the summary (also written last to ``magnitude/summary.json``). Done already = skipped.
    """
    import torch

    from attnpatterns.data import compute_metrics, main_metric
    from attnpatterns.evaluation import predict
    from attnpatterns.io import save_safetensors, write_json
    from attnpatterns.progress import progress_iter
    from attnpatterns.prune.stage_files import clear_iterations, done_already
    from attnpatterns.prune.structured import floor_score, load_pruning_inputs, meets

    cfg = cfg or MPruneConfig()
    seed_dir = Path(seed_dir)
    out = SeedLayout(seed_dir).magnitude
    record = {
        "method": "magnitude",
        "max_dev_examples": cfg.max_dev_examples,
        "max_steps": cfg.max_steps,
        "fraction": cfg.fraction,
        "ratio": cfg.ratio,
    }
    done = done_already(out, record, cfg.floor, "m-pruning")
    if done is not None:
        return done
    model, rec, spec, enc = load_pruning_inputs(seed_dir, cfg, device, data_dir)
    task, seed, mid = rec["config"]["task"], rec["config"]["seed"], rec["config"]["model"]

    def score() -> tuple[float, dict]:
        preds, labels = predict(model, enc, spec.is_regression, batch_size=cfg.batch_size)
        m = compute_metrics(spec, preds, labels)
        return float(main_metric(spec, m)), m

    params = prunable_parameters(model)
    original = {n: p.detach().clone() for n, p in params.items()}
    out.mkdir(parents=True, exist_ok=True)
    clear_iterations(out)
    t0 = time.perf_counter()
    masks = full_masks(original)
    total = count_kept(masks)[1]
    full_score, full_metrics = score()
    threshold = cfg.ratio * full_score
    floor = floor_score(cfg.floor, spec, enc.labels, data_dir)  # None unless --floor majority

    def write_iter(k, kept, s, m, passed):
        write_json(
            out / f"iter_{k:02d}.json",
            {
                "iteration": k,
                "kept": kept,
                "total": total,
                "kept_fraction": kept / total,
                "score": s,
                "metrics": m,
                "passed": passed,
            },
        )
        log.info(
            "%s seed %d m-pruning step %d: %.4f of prunable weights kept, %s = %.4f%s",
            task,
            seed,
            k,
            kept / total,
            spec.main_key,
            s,
            "" if passed else " (below threshold)",
        )

    write_iter(0, total, full_score, full_metrics, True)
    best_masks, best_step, best_score, best_metrics = masks, 0, full_score, full_metrics
    for k in progress_iter(range(1, cfg.max_steps + 1), cfg.max_steps, f"m-prune {task} seed {seed}", show_progress):
        masks = magnitude_step(original, best_masks, k, cfg.fraction)
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(original[n] * masks[n].to(p.dtype))
        s, m = score()
        passed = meets(s, threshold, floor)
        write_iter(k, count_kept(masks)[0], s, m, passed)
        if not passed:
            break
        best_masks, best_step, best_score, best_metrics = masks, k, s, m
    if full_score <= 0:
        log.warning(
            "%s seed %d: the full model's score is %.4f <= 0, so the 0.9 x full threshold does not bind.",
            task,
            seed,
            full_score,
        )
    kept = count_kept(best_masks)[0]
    save_safetensors(
        out / layout.WEIGHT_MASK,
        {n: m.cpu() for n, m in best_masks.items()},
        metadata={
            "model": str(mid),
            "task": task,
            "seed": str(seed),
            "step": str(best_step),
            "kept": str(kept),
            "total": str(total),
        },
    )
    summary: dict[str, Any] = dict(record)
    summary.update(
        {
            "task": task,
            "seed": seed,
            "model": mid,
            "full_score": full_score,
            "threshold": threshold,
            "floor_score": floor,
            "score": best_score,
            "metrics": best_metrics,
            "main_metric": spec.main_key,
            "final_step": best_step,
            "kept": kept,
            "total": total,
            "kept_fraction": kept / total,
            "dev_examples": len(enc.labels),
            "finetuned_score": rec["metrics"]["score"],
            "seconds": round(time.perf_counter() - t0, 2),
            "prunable": sorted(params),
            "head_weight_kept": _head_weight_kept(model, best_masks),
        }
    )
    write_json(out / "summary.json", summary)  # last: marks m-pruning as done
    summary["skipped"] = False
    return summary


def _head_weight_kept(model, masks: dict) -> list | None:
    """(L, H) kept fraction of each head's weights, for the report; None for a model whose heads are not mapped."""
    from attnpatterns.prune.head_weights import head_weight_survival

    c = model.config
    try:
        return (
            head_weight_survival(
                {n: m.cpu().numpy() for n, m in masks.items()},
                c.num_hidden_layers,
                c.num_attention_heads,
                getattr(c, "model_type", "bert"),
            )
            .round(6)
            .tolist()
        )
    except (UserError, KeyError, AttributeError):
        return None
