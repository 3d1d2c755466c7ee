"""Pattern features of attention maps: what an annotator looks at, as numbers.

The CNN sees every map resized to a small fixed grid, which blurs exactly what separates the types on long
maps (a one-token-wide diagonal, a column, a sentence boundary). These features are computed on the map at its
own size, over the real tokens, batched over maps of one length; the classifier's feature branch
(:class:`attnpatterns.classifier.model.PatternCNN` with ``num_features > 0``) takes them beside the CNN's pooled output.

Every map is first row-normalised (rows are queries and sum to 1; for a weight-normed map this removes the
arbitrary scale, which two features keep separately). With ``R`` the row-normalised ``(n, n)`` map and
``c = R.mean(0)`` the share of attention each key receives:

===========================  ==================================================================================
feature                      meaning
===========================  ==================================================================================
``log_n``                    log of the number of tokens
``col_top1/2/3``             the largest key share, and the sum of the 2 and 3 largest (vertical patterns)
``col_first``, ``col_last``  the share of the first and of the last token ([CLS], [SEP])
``col_entropy``              entropy of ``c`` / log n (low: attention goes to a few columns)
``diag_m2`` .. ``diag_p2``   mean attention at offsets -2, -1, 0, +1, +2 from the diagonal (diagonal patterns)
``diag_band``                offsets -1..+1 together
``row_entropy``, ``_std``    mean and std over rows of the row entropy / log n (heterogeneous maps are flat)
``row_max``                  mean over rows of the row maximum
``band_off_top``             ``diag_band`` after removing the 2 largest columns (diagonal beside vertical)
``mass_off_top``             attention left after removing the 2 largest columns
``block_gain``               best split s of the tokens into [0, s) and [s, n): within-block attention minus
                             what a flat map puts there (blocks along the diagonal, e.g. two sentences)
``block_split``              that s / n
``band_wide``                mean attention at offsets 2 and 3 on either side (a broad local band)
``log_scale``                log of the mean row total of the map as given (0 for raw maps)
``peak_ratio``               the map's maximum / its largest row total
===========================  ==================================================================================
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

FEATURE_NAMES = (
    "log_n", "col_top1", "col_top2", "col_top3", "col_first", "col_last", "col_entropy",
    "diag_m2", "diag_m1", "diag_0", "diag_p1", "diag_p2", "diag_band",
    "row_entropy", "row_entropy_std", "row_max", "band_off_top", "mass_off_top",
    "block_gain", "block_split", "band_wide", "log_scale", "peak_ratio",
)
NUM_FEATURES = len(FEATURE_NAMES)


def _diag_mean(R: Tensor, k: int) -> Tensor:
    """(K, n, n) -> (K,): sum of the k-th diagonal / n."""
    n = R.shape[-1]
    return torch.diagonal(R, offset=k, dim1=-2, dim2=-1).sum(-1) / n


def _block_gain(R: Tensor) -> tuple[Tensor, Tensor]:
    """(K, n, n) row-normalised maps -> best within-block gain over splits 2 <= s <= n-2, and that s / n.

    Within-block mass for every split from 2-D prefix sums ``P[s, t] = R[:s, :t].sum()``, minus what a flat map
    puts there ((s^2 + (n-s)^2) / n), divided by n; 0 (and split 0) when no split gains anything."""
    K, n, _ = R.shape
    P = torch.zeros(K, n + 1, n + 1, dtype=R.dtype)
    P[:, 1:, 1:] = R.cumsum(1).cumsum(2)
    s = torch.arange(n + 1)
    total = P[:, n, n]
    within = P[:, s, s] + (total[:, None] - P[:, s, n] - P[:, n, s] + P[:, s, s])  # (K, n+1)
    flat = (s.to(R.dtype) ** 2 + (n - s).to(R.dtype) ** 2) / n  # a flat map's within-block mass
    gain = (within - flat) / n
    valid = (s >= 2) & (s <= n - 2)
    if not bool(valid.any()):
        return torch.zeros(K, dtype=R.dtype), torch.zeros(K, dtype=R.dtype)
    gain = gain.masked_fill(~valid, -math.inf)
    best, where = gain.max(-1)
    best = torch.where(best > 1e-5, best, torch.zeros_like(best))  # a flat map gains nothing (up to rounding)
    split = torch.where(best > 0, where.to(R.dtype) / n, torch.zeros_like(best))
    return best, split


def map_features(maps: Tensor) -> Tensor:
    """(K, n, n) non-negative maps of one length -> (K, NUM_FEATURES) float32 features."""
    if maps.dim() != 3 or maps.shape[-1] != maps.shape[-2]:
        raise ValueError(f"expected (K, n, n) maps, got shape {tuple(maps.shape)}")
    A = maps.float()  # float32: features need no more, and it halves the cost of the (K, n, n) passes
    K, n, _ = A.shape
    eps = 1e-20
    logn = math.log(n)
    rows = A.sum(-1, keepdim=True)  # (K, n, 1)
    R = A / rows.clamp_min(eps)  # rows sum to 1
    c = R.mean(1)  # (K, n): share of each key
    cs = c.sort(dim=-1, descending=True).values
    col_entropy = -(c * (c + eps).log()).sum(-1) / logn
    diags = [_diag_mean(R, k) for k in (-2, -1, 0, 1, 2)]
    band = diags[1] + diags[2] + diags[3]
    ent = -(R * (R + eps).log()).sum(-1) / logn  # (K, n)
    top2 = c.topk(min(2, n), dim=-1).indices  # (K, 2)
    keep = torch.ones_like(c).scatter_(1, top2, 0.0)  # (K, n): 0 at the two largest columns
    Rm = R * keep[:, None, :]
    band_off = _diag_mean(Rm, -1) + _diag_mean(Rm, 0) + _diag_mean(Rm, 1)
    mass_off = Rm.sum((-1, -2)) / n
    best, split = _block_gain(R)
    wide = sum(_diag_mean(R, k) for k in (-3, -2, 2, 3))
    mean_row = rows.squeeze(-1).mean(-1)
    log_scale = (mean_row.clamp_min(eps)).log()
    peak = A.amax((-1, -2)) / rows.squeeze(-1).amax(-1).clamp_min(eps)
    feats = torch.stack([
        torch.full((K,), logn, dtype=A.dtype), cs[:, 0], cs[:, :2].sum(-1), cs[:, :3].sum(-1), c[:, 0], c[:, -1],
        col_entropy, *diags, band, ent.mean(-1), ent.std(-1, unbiased=False), R.amax(-1).mean(-1),
        band_off, mass_off, best, split, wide, log_scale, peak,
    ], dim=1)
    return feats.float()
