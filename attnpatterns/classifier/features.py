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
``dist_mean``                mean distance |i - j| / n of the attention (local vs spread)
``far_mass``                 attention further than 3 tokens from the diagonal
``leak_min``                 the least cross-block attention (R[:s, s:] and R[s:, :s]) over splits 3 <= s <= n-3
``leak_ratio``               the least ratio of that cross-block attention to a flat map's over the same splits
``block_far``                attention further than 2 tokens from the diagonal inside the two blocks of the
                             split with the least cross-block attention (filled squares, not a band)
``*_off``                    the five above on the map with its 2 largest columns removed and rows renormalised
                             (blocks and bands under the [CLS]/[SEP] stripes of raw maps)
``argmax_mode``              share of rows whose largest entry is in the most common column (one stripe)
``argmax_diag1``             share of rows whose largest entry is within 1 of the diagonal
``argmax_diag0``             share of rows whose largest entry is on the diagonal
``col_inner_top1``           the largest key share among the tokens between the first and the last
``row_max_off``              mean row maximum with the 2 largest columns removed
``anchor_cls``               share of rows (its own cell left out) whose [CLS] cell reaches a quarter of the map's
                             maximum: the colour scale an annotator sees (GUIDELINES.md, operational anchors)
``anchor_column``            the same share for the brightest column (a column "bright in most rows")
``anchor_diagonal``          over the lines -1, 0, +1, the largest share of cells reaching a quarter of the maximum
                             (a "clearly visible" diagonal line)
``anchor_bright_on``         share of the bright cells (at least a quarter of the maximum) that lie on the columns
                             bright in at least half of the rows or on that best line (most of the colour)
``anchor_bright``            share of the map's cells that are bright
===========================  ==================================================================================

:func:`map_features` runs the compiled loop of :mod:`attnpatterns.classifier.features_fused`;
:func:`map_features_torch` below is the same computation as tensor operations, the statement of each feature.

The first 23 features are those of the version-1 models, the first 38 those of the models before the anchor
features (a model stores how many it takes; see ``NUM_FEATURES_V1``). The ``anchor_*`` features are
``annotations/tools/measures.py``'s measures, the numbers behind the guidelines' operational anchors.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

FEATURE_NAMES = (
    "log_n",
    "col_top1",
    "col_top2",
    "col_top3",
    "col_first",
    "col_last",
    "col_entropy",
    "diag_m2",
    "diag_m1",
    "diag_0",
    "diag_p1",
    "diag_p2",
    "diag_band",
    "row_entropy",
    "row_entropy_std",
    "row_max",
    "band_off_top",
    "mass_off_top",
    "block_gain",
    "block_split",
    "band_wide",
    "log_scale",
    "peak_ratio",
    "dist_mean",
    "far_mass",
    "leak_min",
    "leak_ratio",
    "block_far",
    "dist_mean_off",
    "far_mass_off",
    "leak_min_off",
    "leak_ratio_off",
    "block_far_off",
    "argmax_mode",
    "argmax_diag1",
    "argmax_diag0",
    "col_inner_top1",
    "row_max_off",
    "anchor_cls",
    "anchor_column",
    "anchor_diagonal",
    "anchor_bright_on",
    "anchor_bright",
)
NUM_FEATURES = len(FEATURE_NAMES)
NUM_FEATURES_V1 = 23  # the features of the first feature-branch models; later features are appended, never inserted


OFFSETS = (-3, -2, -1, 0, 1, 2, 3)  # the diagonals the features read


@functools.lru_cache(maxsize=256)
def _weights(n: int) -> Tensor:
    """(10, n*n) fixed weights whose product with flattened maps gives, in one matrix product, the sums of the
    diagonals -3..+3, the distance-weighted sum (|i - j|), the mass beyond distance 3, and the total."""
    i = torch.arange(n)
    d = i[None, :] - i[:, None]  # (n, n): key - query
    cols = [(d == k) for k in OFFSETS] + [d.abs(), d.abs() > 3, torch.ones(n, n, dtype=torch.bool)]
    return torch.stack([c.to(torch.float32).reshape(-1) for c in cols], dim=0)


@functools.lru_cache(maxsize=256)
def _triangles(n: int) -> tuple[Tensor, Tensor]:
    """(n, n) masks: j <= i (lower, diagonal included) and i < j (strictly upper)."""
    ones = torch.ones(n, n)
    return ones.tril(), ones.triu(1)


def _sums(R: Tensor) -> Tensor:
    """(K, n, n) -> (K, 10) weighted sums of :func:`_weights` (columns: diagonals -3..3, distance, far, total)."""
    K, n, _ = R.shape
    return (_weights(n) @ R.reshape(K, n * n).T).T  # (10, n*n) @ (n*n, K): the fast layout for a thin product


def _zcum(x: Tensor) -> Tensor:
    """(K, n) -> (K, n+1) cumulative sums with a leading 0: entry s sums x[:, :s]."""
    return torch.nn.functional.pad(x.cumsum(-1), (1, 0))


class _Splits:
    """Block masses of maps (K, n, n) for every split s of the tokens into [0, s) and [s, n), from O(K n) sums
    (the maps' row and column sums are passed in, as the caller has them):
    ``within[:, s]`` the attention inside the two blocks, ``cross[:, s]`` the rest (the off-diagonal blocks)."""

    def __init__(self, R: Tensor, row_sums: Tensor, col_sums: Tensor):
        K, n, _ = R.shape
        low, up = _triangles(n)
        # P[s, s] = R[:s, :s].sum() grows by row s up to column s and column s above row s
        diag = _zcum((R * low).sum(2) + (R * up).sum(1))  # (K, n+1)
        rows = _zcum(row_sums)  # R[:s, :].sum()
        cols = _zcum(col_sums)  # R[:, :s].sum()
        total = rows[:, -1:]
        self.within = diag + (total - rows - cols + diag)  # top-left + bottom-right block
        self.cross = total - self.within


def _block_gain(sp: _Splits, n: int) -> tuple[Tensor, Tensor]:
    """Best within-block gain over splits 2 <= s <= n-2 of row-normalised maps, and that s / n: the within-block
    mass minus what a flat map puts there ((s^2 + (n-s)^2) / n), divided by n; 0 (and split 0) when no split
    gains anything."""
    K = sp.within.shape[0]
    s = torch.arange(n + 1)
    flat = (s.to(sp.within.dtype) ** 2 + (n - s).to(sp.within.dtype) ** 2) / n  # a flat map's within-block mass
    gain = (sp.within - flat) / n
    valid = (s >= 2) & (s <= n - 2)
    if not bool(valid.any()):
        return sp.within.new_zeros(K), sp.within.new_zeros(K)
    gain = gain.masked_fill(~valid, -math.inf)
    best, where = gain.max(-1)
    best = torch.where(best > 1e-5, best, torch.zeros_like(best))  # a flat map gains nothing (up to rounding)
    split = torch.where(best > 0, where.to(gain.dtype) / n, torch.zeros_like(best))
    return best, split


def _spread_features(R: Tensor, sp: _Splits, sums: Tensor) -> list[Tensor]:
    """Row-normalised maps (K, n, n), their :class:`_Splits` and :func:`_sums` -> dist_mean, far_mass, leak_min,
    leak_ratio, block_far, each (K,)."""
    K, n, _ = R.shape
    out = [sums[:, 7] / (n * n), sums[:, 8] / n]
    s = torch.arange(n + 1)
    valid = (s >= 3) & (s <= n - 3)
    if not bool(valid.any()):  # too short to split (n < 6): the flat answer, explicit masks
        i = torch.arange(n)
        dist = (i[:, None] - i[None, :]).abs()
        side = i < n // 2
        same = side[:, None] == side[None, :]
        return out + [R.new_zeros(K), R.new_ones(K), (R * (same & (dist > 2))).sum((-1, -2)) / n]
    flat = (2 * s * (n - s) / n).to(R.dtype).clamp_min(1e-9)  # a flat map's cross-block mass
    leak, w = (sp.cross / n).masked_fill(~valid, math.inf).min(-1)
    ratio = (sp.cross / flat).masked_fill(~valid, math.inf).min(-1).values
    # attention inside the two blocks of split w beyond distance 2: the within-block mass minus the band |i-j| <= 2
    # inside the blocks, i.e. the whole band minus its six entries that cross split s:
    # (s-1, s), (s-1, s+1), (s-2, s) and their transposes
    d = {
        k: torch.nn.functional.pad(torch.diagonal(R, offset=k, dim1=-2, dim2=-1), (0, abs(k) + 3))
        for k in (-2, -1, 1, 2)
    }
    t = torch.arange(3, n - 2)  # valid splits; entry t of d[k] is R[t, t+k] (k > 0) or R[t-k, t] (k < 0)
    crossing = torch.zeros_like(sp.cross)
    crossing[:, t] = (
        d[1][:, t - 1] + d[2][:, t - 1] + d[2][:, t - 2] + d[-1][:, t - 1] + d[-2][:, t - 1] + d[-2][:, t - 2]
    )
    band = sums[:, 1:6].sum(-1, keepdim=True)
    far_within = (sp.within - band + crossing).gather(1, w[:, None]).squeeze(1)
    return out + [leak, ratio, far_within / n]


def _anchor_features(A: Tensor) -> list[Tensor]:
    """(K, n, n) maps as given -> anchor_cls, anchor_column, anchor_diagonal, anchor_bright_on, anchor_bright, each
    (K,): the guidelines' measures on each map's own colour scale (``annotations/tools/measures.py``), from one
    comparison pass and one column count."""
    K, n, _ = A.shape
    mx = A.amax((-1, -2)).clamp_min(1e-30)
    B = A >= 0.25 * mx[:, None, None]  # bright cells
    own = torch.diagonal(B, dim1=-2, dim2=-1)  # (K, n): each column's own cell
    per_col = B.sum(1).to(A.dtype)  # (K, n): bright cells per column
    share = (per_col - own.to(A.dtype)) / max(n - 1, 1)  # rows bright in the column, its own cell left out
    cols = share >= 0.5  # (K, n): the bright columns
    lines, off_cols = [], []
    for k in (-1, 0, 1):
        d = torch.diagonal(B, offset=k, dim1=-2, dim2=-1)  # cells (i, i + k): columns max(k, 0) .. n - 1 + min(k, 0)
        lines.append(d.to(A.dtype).mean(-1) if d.shape[-1] else A.new_zeros(K))
        off_cols.append((d & ~cols[:, max(k, 0) : n + min(k, 0)]).to(A.dtype).sum(-1))
    dshare, best = torch.stack(lines, 1).max(1)  # (K,), offset index 0..2 (ties: the first, as measures.py)
    nb = per_col.sum(-1)
    on_cols = (per_col * cols.to(A.dtype)).sum(-1)
    on_line = torch.stack(off_cols, 1).gather(1, best[:, None]).squeeze(1)  # the best line's bright cells off them
    bright_on = torch.where(nb > 0, (on_cols + on_line) / nb.clamp_min(1), A.new_zeros(K))
    return [share[:, 0], share.amax(-1), dshare, bright_on, nb / (n * n)]


def map_features(maps: Tensor) -> Tensor:
    """(K, n, n) non-negative maps of one length -> (K, NUM_FEATURES) float32 features, on the CPU.

    Runs the compiled loop of :mod:`attnpatterns.classifier.features_fused`; :func:`map_features_torch` is the
    same computation as tensor operations (the statement of each feature, and the check in the tests)."""
    from attnpatterns.classifier.features_fused import fused_features

    _check_shape(maps)
    return torch.from_numpy(fused_features(maps.detach().float().cpu().numpy()))


def _check_shape(maps: Tensor) -> None:
    if maps.dim() != 3 or maps.shape[-1] != maps.shape[-2]:
        raise ValueError(f"expected (K, n, n) maps, got shape {tuple(maps.shape)}")


def map_features_torch(maps: Tensor) -> Tensor:
    """:func:`map_features` as tensor operations, on any device."""
    _check_shape(maps)
    A = maps.float()  # float32: features need no more, and it halves the cost of the (K, n, n) passes
    K, n, _ = A.shape
    eps = 1e-20
    logn = math.log(n)
    rows = A.sum(-1, keepdim=True)  # (K, n, 1)
    R = A / rows.clamp_min(eps)  # rows sum to 1 (0 for an all-zero row)
    r_sums = (rows.squeeze(-1) > eps).to(A.dtype)  # (K, n): R's row sums, known without a pass
    c = R.mean(1)  # (K, n): share of each key
    top = c.topk(min(3, n), dim=-1)  # the three largest key shares, largest first
    cs = top.values
    col_entropy = -(c * c.clamp_min(1e-30).log()).sum(-1) / logn
    S = _sums(R)  # (K, 10)
    diags = [S[:, j] / n for j in (1, 2, 3, 4, 5)]  # offsets -2..2
    band = diags[1] + diags[2] + diags[3]
    ent = -(R * R.clamp_min(1e-30).log()).sum(-1) / logn  # (K, n): 0 log 0 = 0
    top2 = top.indices[:, :2]  # (K, 2): the two largest columns
    keep = torch.ones_like(c).scatter_(1, top2, 0.0)  # (K, n): 0 at the two largest columns
    Rm = R * keep[:, None, :]
    # without a pass over Rm: its band |i-j| <= 1 is R's minus the removed columns' entries R[j-1..j+1, j], its
    # mass R's minus those columns' sums
    near = top2[:, :, None] + torch.arange(-1, 2)[None, None, :]  # (K, 2, 3): rows j-1, j, j+1 of column j
    ok = (near >= 0) & (near < n)
    lost = R[torch.arange(K)[:, None, None], near.clamp(0, n - 1), top2[:, :, None].expand_as(near)] * ok
    band_off = band - lost.sum((1, 2)) / n
    mass_off = (r_sums.sum(-1) - n * c.gather(1, top2).sum(-1)) / n
    spR = _Splits(R, r_sums, c * n)
    best, split = _block_gain(spR, n)
    wide = (S[:, 0] + S[:, 1] + S[:, 5] + S[:, 6]) / n
    mean_row = rows.squeeze(-1).mean(-1)
    log_scale = (mean_row.clamp_min(eps)).log()
    a_max, am = A.max(-1)  # (K, n): each query's largest entry and its key (the same in R: rows are rescaled)
    peak = a_max.amax(-1) / rows.squeeze(-1).amax(-1).clamp_min(eps)
    m_rows = Rm.sum(-1, keepdim=True)  # (K, n, 1): summed, not subtracted (a row all in the two columns is ~0)
    Rn = Rm / m_rows.clamp_min(eps)  # the 2 largest columns removed, rows renormalised
    rmax = a_max / rows.squeeze(-1).clamp_min(eps)  # (K, n): R's row maxima
    per_key = torch.zeros_like(c).scatter_add_(1, am, torch.ones_like(c))  # (K, n): rows whose largest entry is there
    off = am - torch.arange(n)[None, :]
    feats = torch.stack(
        [
            torch.full((K,), logn, dtype=A.dtype),
            cs[:, 0],
            cs[:, :2].sum(-1),
            cs[:, :3].sum(-1),
            c[:, 0],
            c[:, -1],
            col_entropy,
            *diags,
            band,
            ent.mean(-1),
            ent.std(-1, unbiased=False),
            rmax.mean(-1),
            band_off,
            mass_off,
            best,
            split,
            wide,
            log_scale,
            peak,
            *_spread_features(R, spR, S),
            *_spread_features(Rn, _Splits(Rn, (m_rows.squeeze(-1) > eps).to(A.dtype), Rn.sum(1)), _sums(Rn)),
            per_key.amax(-1) / n,
            (off.abs() <= 1).to(A.dtype).mean(-1),
            (off == 0).to(A.dtype).mean(-1),
            c[:, 1:-1].amax(-1) if n > 2 else torch.zeros(K, dtype=A.dtype),
            Rm.amax(-1).mean(-1),
            *_anchor_features(A),
        ],
        dim=1,
    )
    return feats.float()
