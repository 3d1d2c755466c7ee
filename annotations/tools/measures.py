"""Simple, visible measures of a map on its own colour scale (value / map maximum), used to anchor the
guidelines' words ("clearly visible", "most rows") in numbers and to pick the anchor examples.

- ``column``: over the columns, the largest share of rows (the column's own cell excluded) whose cell
  reaches a quarter of the colour scale: 1.0 = a column bright in every row.
- ``cls``: the same share for the first column ([CLS]).
- ``diagonal``: over the offsets -1, 0, +1, the largest share of cells on that line reaching a quarter
  of the colour scale.
- ``bright_on``: the share of the map's bright cells (>= a quarter of the scale) that lie on the best
  column-set (columns bright in at least half of the rows) or the best diagonal line.
"""

from __future__ import annotations

import numpy as np

Q = 0.25


def measures(m: np.ndarray, sep: int | None = None) -> dict:
    """The measures of one map; ``sep`` = position of the first [SEP] of a sentence pair (adds ``within``:
    the share of the mass, [CLS] row and column left out, inside the two sentences' squares, and ``fill``:
    the share of the squares' cells, columns left out, reaching a tenth of the colour scale)."""
    a = np.asarray(m, dtype=np.float64)
    n = a.shape[0]
    s = a / a.max() if a.max() > 0 else a
    bright = s >= Q
    off = ~np.eye(n, dtype=bool)
    col_share = (bright & off).sum(axis=0) / max(n - 1, 1)
    diags = {k: np.diagonal(bright, offset=k) for k in (-1, 0, 1)}
    dshare = {k: float(v.mean()) if v.size else 0.0 for k, v in diags.items()}
    best_k = max(dshare, key=dshare.get)
    cols = np.flatnonzero(col_share >= 0.5)
    on = np.zeros_like(bright)
    on[:, cols] = True
    idx = np.arange(n)
    ok = (idx + best_k >= 0) & (idx + best_k < n)
    on[idx[ok], idx[ok] + best_k] = True
    nb = bright.sum()
    extra = {}
    if sep is not None and 1 < sep < n - 2:
        core = a[1:, 1:]
        b = sep  # core index of the first token of sentence B
        sq = np.zeros_like(core, dtype=bool)
        sq[:b, :b] = True
        sq[b:, b:] = True
        extra["within"] = float(core[sq].sum() / core.sum()) if core.sum() > 0 else 0.0
        cs = s[1:, 1:].copy()
        cs[:, col_share[1:] >= 0.5] = 0.0
        extra["fill"] = float((cs[sq] >= 0.1).mean())
    return {
        **extra,
        "column": float(col_share.max()),
        "cls": float(col_share[0]),
        "diagonal": dshare[best_k],
        "bright_on": float((bright & on).sum() / nb) if nb else 0.0,
        "n": n,
    }
