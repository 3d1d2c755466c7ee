"""Render attention maps to PNG: one map with a colour bar and token labels, or a contact sheet of many.

Rows are queries, columns are keys (``map[i, j]`` = how much token i attends to token j), as in
Kovaleva et al. 2019. The colour scale runs from 0 to the map's own maximum (raw and weight-normed maps
differ in scale by orders of magnitude, and the pattern type is about shape, not size), with a colour
bar that shows the real values. Positions of [CLS]/[SEP] (and <s>/</s>) are marked in red on both axes.

Plot functions take arrays and an optional ``ax``, return ``(fig, ax)`` and never need a display
(matplotlib's object API with the Agg canvas, no pyplot state). File writers go through
:func:`attnpatterns.io.atomic_path`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from attnpatterns.errors import UserError

SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "<s>", "</s>", "[PAD]", "<pad>"})
DEFAULT_CMAP = "viridis"
MARK_COLOUR = "#d62728"


def special_positions(tokens: Sequence[str] | None) -> list[int]:
    """Indices of the special tokens ([CLS], [SEP], <s>, </s>) in ``tokens``."""
    if not tokens:
        return []
    return [i for i, t in enumerate(tokens) if str(t) in SPECIAL_TOKENS]


def check_map(attn: np.ndarray, where: str = "map") -> np.ndarray:
    """The map as a finite 2-D square float32 array, or a UserError saying what is wrong."""
    a = np.asarray(attn)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise UserError(f"{where}: expected a non-empty square 2-D attention map, got shape {a.shape}.")
    if not np.issubdtype(a.dtype, np.number):
        raise UserError(f"{where}: expected numbers, got dtype {a.dtype}.")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise UserError(f"{where}: the map holds NaN or infinite values; recompute it.")
    return a


def _figure(figsize, dpi):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def plot_map(
    attn: np.ndarray,
    tokens: Sequence[str] | None = None,
    *,
    title: str | None = None,
    ax=None,
    cmap: str = DEFAULT_CMAP,
    vmax: float | None = None,
    colorbar: bool = True,
    mark_special: bool = True,
):
    """Draw one map on ``ax`` (a new figure when None). Returns ``(fig, ax)``.

    ``tokens`` (one per row) label both axes; special tokens get red labels and thin red guide
    lines. ``vmax`` defaults to the map's maximum (0 is always the bottom of the scale).
    """
    a = check_map(attn)
    n = a.shape[0]
    if tokens is not None and len(tokens) != n:
        raise UserError(f"got {len(tokens)} tokens for a {n}x{n} map; pass one token per row.")
    if ax is None:
        side = 4.0 + min(n, 128) * 0.06
        fig = _figure((side + 1.2, side), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    top = float(vmax) if vmax is not None else float(a.max())
    if top <= 0:
        top = 1.0
    im = ax.imshow(a, cmap=cmap, vmin=0.0, vmax=top, interpolation="nearest", aspect="equal")
    specials = special_positions(tokens) if mark_special else []
    if tokens is not None:
        size = float(np.clip(520.0 / max(n, 1), 3.0, 9.0))
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels([str(t) for t in tokens], rotation=90, fontsize=size)
        ax.set_yticklabels([str(t) for t in tokens], fontsize=size)
        for i in specials:
            ax.get_xticklabels()[i].set_color(MARK_COLOUR)
            ax.get_yticklabels()[i].set_color(MARK_COLOUR)
            ax.get_xticklabels()[i].set_fontweight("bold")
            ax.get_yticklabels()[i].set_fontweight("bold")
        ax.tick_params(length=1.5, pad=1)
    else:
        step = max(1, int(math.ceil(n / 16)))
        ax.set_xticks(range(0, n, step))
        ax.set_yticks(range(0, n, step))
        ax.tick_params(labelsize=7)
    for i in specials:
        # thin guides just outside the cells' centres, so the map's own colours stay visible
        ax.axvline(i, color=MARK_COLOUR, lw=0.4, alpha=0.35)
        ax.axhline(i, color=MARK_COLOUR, lw=0.4, alpha=0.35)
    ax.set_xlabel("key (attended to)", fontsize=8)
    ax.set_ylabel("query", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.ax.tick_params(labelsize=7)
    return fig, ax


def render_map(
    attn: np.ndarray,
    path: str | os.PathLike,
    tokens: Sequence[str] | None = None,
    *,
    title: str | None = None,
    cmap: str = DEFAULT_CMAP,
    vmax: float | None = None,
    dpi: int = 100,
) -> Path:
    """Render one map to a PNG at ``path`` (atomically) with a colour bar; returns the path."""
    from attnpatterns.io import atomic_path

    fig, _ = plot_map(attn, tokens, title=title, cmap=cmap, vmax=vmax)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def render_map_bytes(
    attn: np.ndarray,
    tokens: Sequence[str] | None = None,
    *,
    title: str | None = None,
    cmap: str = DEFAULT_CMAP,
    dpi: int = 100,
) -> bytes:
    """The PNG of :func:`render_map` as bytes (for uploads)."""
    import io

    fig, _ = plot_map(attn, tokens, title=title, cmap=cmap)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_contact_sheet(
    maps: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike,
    *,
    ncols: int = 8,
    cell_inches: float = 1.9,
    cmap: str = DEFAULT_CMAP,
    titles: Mapping[str, str] | None = None,
    dpi: int = 90,
) -> Path:
    """Render many maps in a grid, each titled with its id (plus ``titles[id]`` when given), to a PNG.

    Each cell has its own 0..max colour scale (like :func:`render_map`), no axes ticks: the sheet is
    for checking labels by eye, one page at a time (callers page long lists themselves).
    """
    from attnpatterns.io import atomic_path

    items = list(maps.items()) if isinstance(maps, Mapping) else list(maps)
    if not items:
        raise UserError("no maps to put on the contact sheet; pass at least one (id, map).")
    if ncols < 1:
        raise UserError(f"ncols must be at least 1, got {ncols}.")
    ncols = min(ncols, len(items))
    nrows = int(math.ceil(len(items) / ncols))
    fig = _figure((ncols * cell_inches, nrows * (cell_inches + 0.25)), dpi=dpi)
    for k, (mid, m) in enumerate(items):
        a = check_map(m, where=f"map '{mid}'")
        ax = fig.add_subplot(nrows, ncols, k + 1)
        top = float(a.max()) if a.max() > 0 else 1.0
        ax.imshow(a, cmap=cmap, vmin=0.0, vmax=top, interpolation="nearest", aspect="equal")
        ax.set_xticks([])
        ax.set_yticks([])
        label = str(mid) if not titles or mid not in titles else f"{mid}\n{titles[mid]}"
        ax.set_title(label, fontsize=6)
    fig.tight_layout(pad=0.4)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)
