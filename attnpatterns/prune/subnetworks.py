"""Good, random and bad subnetworks: size-matched counterparts of a pruning mask.

The method (docs/method.md, Subnetworks):

- ``good`` is the pruning result itself.
- ``random``: s-pruning: every head (MLP) kept by an independent Bernoulli draw with the good mask's
  kept fraction of heads (MLPs), so sizes match within the sampling; m-pruning: exactly as many
  prunable weights as the good mask keeps, drawn uniformly over all prunable weights (global).
- ``bad``: s-pruning: the components the good mask pruned, topped up with randomly chosen good ones
  to the good mask's size; m-pruning: remove the LARGEST weights instead of the smallest, i.e. keep
  the as-many smallest-magnitude prunable weights (one global ranking of the fine-tuned weights;
  m-pruning does not retrain between its steps, so removing 10 % of the remaining largest weights
  k times is the same set as removing the largest 1 - 0.9^k at once).
- super-survivors (kept in every seed): ``random`` drawn from the in-between components (kept in
  some seeds, not all), ``bad`` from the never-kept ones, both exactly the super set's size.

Choices the reference leaves open, named here:

- s-bad when the good mask keeps fewer than half: there are more pruned components than good
  ones, so ``bad`` is a random choice of |good| pruned components (still disjoint from good, and
  exactly size-matched). The authors' masks in that case hold a few more than |good|.
- super-sets when a pool is too small (MiniLM has 6 MLPs: often none is never kept): ``bad`` takes
  every never-kept component, then the in-between ones kept in the FEWEST seeds (ties at random),
  then random super-survivors; ``random`` takes in-between ones at random, then never-kept, then
  super-survivors. Sizes stay exact; the counts drawn from each pool are returned and recorded.

Everything here is pure: arrays and tensors in, arrays and tensors out, randomness only from the
generator passed in (:func:`rng_for`), so the same seed draws the same masks.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

SUBNETS = ("good", "random", "bad")
METHODS = ("structured", "magnitude", "super")


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """A numpy generator determined by ``seed`` and the string ``keys`` (e.g. task, method, subnet)."""
    entropy = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(k.encode("utf-8")) for k in keys]
    return np.random.default_rng(entropy)


def torch_generator_for(seed: int, *keys: str):
    """A torch CPU generator determined like :func:`rng_for` (for the large m-pruning draws)."""
    import torch

    s = int(rng_for(seed, *keys).integers(0, 2**62))
    return torch.Generator().manual_seed(s)


# ----------------------------------------------------------------------------- s-pruning


def _as01(mask, name: str) -> np.ndarray:
    m = np.asarray(mask, dtype=np.float64)
    if not np.all((m == 0) | (m == 1)):
        raise ValueError(f"{name} must hold only 0 and 1")
    return m.astype(bool)


def bernoulli_like(mask, rng: np.random.Generator) -> np.ndarray:
    """Each entry kept independently with probability = the kept fraction of ``mask``. Float 0/1, same shape."""
    m = _as01(mask, "mask")
    p = float(m.mean()) if m.size else 0.0
    return (rng.random(m.shape) < p).astype(np.float32)


def topped_up_complement(mask, rng: np.random.Generator) -> np.ndarray:
    """The entries ``mask`` pruned, topped up with random kept ones to exactly ``mask.sum()`` entries.

    With more pruned entries than kept ones, a random ``mask.sum()`` of the pruned entries.
    """
    m = _as01(mask, "mask")
    flat = m.ravel()
    k = int(flat.sum())
    pruned = np.flatnonzero(~flat)
    kept = np.flatnonzero(flat)
    out = np.zeros(flat.shape, dtype=np.float32)
    if len(pruned) >= k:
        out[rng.choice(pruned, size=k, replace=False)] = 1
    else:
        out[pruned] = 1
        out[rng.choice(kept, size=k - len(pruned), replace=False)] = 1
    return out.reshape(m.shape)


def random_structured(head_mask, mlp_mask, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """s-pruning ``random``: Bernoulli per head and per MLP with the good mask's kept fractions."""
    return bernoulli_like(head_mask, rng), bernoulli_like(mlp_mask, rng)


def bad_structured(head_mask, mlp_mask, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """s-pruning ``bad``: the pruned heads (MLPs) topped up with random good ones to the same size."""
    return topped_up_complement(head_mask, rng), topped_up_complement(mlp_mask, rng)


# ----------------------------------------------------------------------------- super-survivors


@dataclass
class Pools:
    """Survival counts over seeds of one kind of component (heads (L, H) or MLPs (L,))."""

    counts: np.ndarray  # how many seeds kept each component
    n_seeds: int

    @property
    def super(self) -> np.ndarray:
        return self.counts == self.n_seeds

    @property
    def never(self) -> np.ndarray:
        return self.counts == 0

    @property
    def in_between(self) -> np.ndarray:
        return (self.counts > 0) & (self.counts < self.n_seeds)


@dataclass
class Drawn:
    mask: np.ndarray  # float 0/1, same shape as the counts
    from_pools: dict = field(default_factory=dict)  # pool name -> how many drawn from it


def pools_from_masks(masks) -> Pools:
    """Survival counts from a stack of per-seed 0/1 masks, shape (seeds, ...)."""
    m = np.stack([_as01(x, "mask") for x in masks]).astype(np.int64)
    return Pools(m.sum(0), m.shape[0])


def _draw(pools: Pools, order: list[tuple[str, np.ndarray, bool]], rng: np.random.Generator) -> Drawn:
    """Fill |super| entries from the pools in ``order``; each pool (name, bool mask, rarest_first)."""
    k = int(pools.super.sum())
    out = np.zeros(pools.counts.size, dtype=np.float32)
    counts = pools.counts.ravel()
    taken: dict[str, int] = {}
    need = k
    for name, pool, rarest_first in order:
        if need == 0:
            break
        idx = np.flatnonzero(pool.ravel())
        if len(idx) == 0:
            continue
        idx = rng.permutation(idx)
        if rarest_first:  # stable sort keeps the random order within a count
            idx = idx[np.argsort(counts[idx], kind="stable")]
        pick = idx[:need]
        out[pick] = 1
        taken[name] = int(len(pick))
        need -= len(pick)
    return Drawn(out.reshape(pools.counts.shape), taken)


def super_random(pools: Pools, rng: np.random.Generator) -> Drawn:
    """|super| components drawn at random from the in-between ones (then never-kept, then super)."""
    return _draw(
        pools,
        [("in_between", pools.in_between, False), ("never", pools.never, False), ("super", pools.super, False)],
        rng,
    )


def super_bad(pools: Pools, rng: np.random.Generator) -> Drawn:
    """|super| components from the never-kept ones (then the rarest in-between ones, then super)."""
    return _draw(
        pools,
        [("never", pools.never, False), ("in_between", pools.in_between, True), ("super", pools.super, False)],
        rng,
    )


# ----------------------------------------------------------------------------- m-pruning


def count_kept(masks: Mapping[str, Any]) -> tuple[int, int]:
    """(kept, total) entries over a dict of 0/1 weight masks."""
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(int(m.numel()) for m in masks.values())
    return kept, total


def random_unstructured(masks: Mapping[str, Any], generator) -> dict:
    """m-pruning ``random``: exactly as many kept entries as ``masks``, uniformly over all their entries.

    ``masks``: parameter name -> 0/1 tensor (the good mask; its keys are the prunable set).
    Returns name -> bool tensor of the same shapes.
    """
    import torch

    names = list(masks)
    sizes = [masks[n].numel() for n in names]
    kept, total = count_kept(masks)
    flat = torch.zeros(total, dtype=torch.bool)
    flat[torch.randperm(total, generator=generator)[:kept]] = True
    return _split(flat, names, sizes, masks)


def bad_unstructured(masks: Mapping[str, Any], weights: Mapping[str, Any]) -> dict:
    """m-pruning ``bad``: keep the ``kept`` SMALLEST-magnitude entries of ``weights`` (the largest are removed).

    ``weights``: the fine-tuned weights the good mask was computed on, same names and shapes.
    Ties are broken by position (deterministic); the size matches the good mask exactly.
    """
    import torch

    names = list(masks)
    missing = [n for n in names if n not in weights]
    if missing:
        raise KeyError(f"no weight for mask entry '{missing[0]}'")
    sizes = [masks[n].numel() for n in names]
    kept, total = count_kept(masks)
    mags = torch.cat([weights[n].detach().abs().reshape(-1).float().cpu() for n in names])  # (total,)
    order = torch.sort(mags, stable=True).indices
    flat = torch.zeros(total, dtype=torch.bool)
    flat[order[:kept]] = True
    return _split(flat, names, sizes, masks)


def _split(flat, names, sizes, like) -> dict:
    out = {}
    start = 0
    for n, s in zip(names, sizes):
        out[n] = flat[start : start + s].reshape(like[n].shape).clone()
        start += s
    return out


# ----------------------------------------------------------------------------- sizes


def prunable_counts(num_layers: int, num_heads: int, hidden: int, intermediate: int) -> dict[str, int]:
    """Parameters in m-pruning's prunable set, split by what s-pruning's components cover.

    Per head: its rows of Q, K, V (+ biases) and its columns of the attention output dense.
    Per MLP: the intermediate dense (+ bias) and the output dense weight (its bias is not prunable).
    Left over: the attention output dense bias of each layer (no head owns it).
    """
    d = hidden // num_heads
    per_head = 3 * (d * hidden + d) + hidden * d
    per_mlp = intermediate * hidden + intermediate + hidden * intermediate
    other = num_layers * hidden
    total = num_layers * (num_heads * per_head + per_mlp) + other
    return {"per_head": per_head, "per_mlp": per_mlp, "other": other, "total": total}


def structured_size(head_mask, mlp_mask, hidden: int, intermediate: int) -> dict:
    """Size of a head/MLP mask: kept heads and MLPs and the kept fraction of the prunable parameters.

    Fraction of the model kept = (kept heads x per-head + kept MLPs x per-MLP + attention-output
    biases) / prunable parameters, the same denominator as m-pruning's kept fraction.
    """
    hm = _as01(head_mask, "head mask")
    mm = _as01(mlp_mask, "MLP mask")
    L, H = hm.shape
    c = prunable_counts(L, H, hidden, intermediate)
    kept = int(hm.sum()) * c["per_head"] + int(mm.sum()) * c["per_mlp"] + c["other"]
    return {
        "heads_kept": int(hm.sum()),
        "heads_total": int(hm.size),
        "mlps_kept": int(mm.sum()),
        "mlps_total": int(mm.size),
        "kept_fraction": kept / c["total"],
    }


def unstructured_size(masks: Mapping[str, Any]) -> dict:
    kept, total = count_kept(masks)
    return {"weights_kept": kept, "weights_total": total, "kept_fraction": kept / total if total else float("nan")}
