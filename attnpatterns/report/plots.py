"""Plots of the report: arrays in, ``(fig, ax)`` out, files written by :func:`save_figure`.

Every function takes plain arrays (numpy or lists) and an optional ``ax`` (``fig`` for the multi-axes
grid) and returns ``(fig, ax)``; none needs a display (matplotlib's object API on the Agg canvas, no
pyplot state), none loads a model or reads a run folder. :func:`save_figure` writes a figure as PNG
and SVG beside each other, atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from attnpatterns.errors import UserError

# One colour per pattern type, the same in every plot (Okabe-Ito, readable for colour-blind readers).
PATTERN_COLOURS = {
    "vertical": "#0072B2",
    "diagonal": "#E69F00",
    "vertical+diagonal": "#009E73",
    "block": "#CC79A7",
    "heterogeneous": "#999999",
}
_FALLBACK = ["#56B4E9", "#D55E00", "#F0E442", "#000000"]


def new_figure(figsize=(6.0, 4.0), dpi: int = 100):
    """A figure on the Agg canvas (no display, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _fig_ax(ax, figsize):
    if ax is None:
        fig = new_figure(figsize)
        return fig, fig.add_subplot(1, 1, 1)
    return ax.figure, ax


def pattern_colour(label: str, i: int = 0) -> str:
    return PATTERN_COLOURS.get(label, _FALLBACK[i % len(_FALLBACK)])


def stacked_bars(
    fractions,
    groups: Sequence[str],
    types: Sequence[str],
    *,
    title: str | None = None,
    ax=None,
    annotate: bool = True,
):
    """Horizontal stacked bars: one bar per group (e.g. ``MRPC all``, ``MRPC super``), one segment per type.

    ``fractions`` is (groups, types); rows are normalised to sum to 1 (an all-zero row stays empty).
    Segments of at least 6% are labelled with their percentage.
    """
    f = np.asarray(fractions, dtype=float)
    if f.ndim != 2 or f.shape != (len(groups), len(types)):
        raise UserError(f"stacked_bars: fractions has shape {f.shape}, expected ({len(groups)}, {len(types)}).")
    if (f < 0).any() or not np.isfinite(f).all():
        raise UserError("stacked_bars: fractions must be finite and non-negative.")
    tot = f.sum(axis=1, keepdims=True)
    f = np.divide(f, tot, out=np.zeros_like(f), where=tot > 0)
    fig, ax = _fig_ax(ax, (7.5, 0.9 + 0.45 * len(groups)))
    y = np.arange(len(groups))[::-1]
    left = np.zeros(len(groups))
    for j, t in enumerate(types):
        ax.barh(
            y, f[:, j], left=left, color=pattern_colour(t, j), label=t, edgecolor="white", linewidth=0.5, height=0.7
        )
        if annotate:
            for i in range(len(groups)):
                if f[i, j] >= 0.06:
                    ax.text(
                        left[i] + f[i, j] / 2,
                        y[i],
                        f"{100 * f[i, j]:.0f}%",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if t != "heterogeneous" else "black",
                    )
        left += f[:, j]
    ax.set_yticks(y)
    ax.set_yticklabels(list(groups), fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of maps", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18 - 0.5 / max(len(groups), 1)),
        ncol=len(types),
        fontsize=7,
        frameon=False,
    )
    if title:
        ax.set_title(title, fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def survival_heatmap(
    survival,
    *,
    title: str | None = None,
    ax=None,
    vmax: float = 1.0,
    label: str = "fraction of seeds kept",
    annotate: bool = True,
):
    """A layer x head heatmap of survival in [0, vmax] (rows = layers from 0 at the top, columns = heads)."""
    s = np.asarray(survival, dtype=float)
    if s.ndim != 2 or s.size == 0:
        raise UserError(f"survival_heatmap: expected a (layers, heads) array, got shape {s.shape}.")
    n_layers, n_heads = s.shape
    fig, ax = _fig_ax(ax, (1.6 + 0.42 * n_heads, 1.0 + 0.36 * n_layers))
    im = ax.imshow(s, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n_heads))
    ax.set_yticks(range(n_layers))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("head", fontsize=8)
    ax.set_ylabel("layer", fontsize=8)
    if annotate and n_heads * n_layers <= 400:
        for i in range(n_layers):
            for j in range(n_heads):
                v = s[i, j]
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}".lstrip("0") if v < 1 else "1",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="black" if v > 0.6 * vmax else "white",
                    )
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.ax.tick_params(labelsize=7)
    cb.set_label(label, fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def importance_distributions(
    scores_per_iteration: Sequence,
    *,
    title: str | None = None,
    ax=None,
    ylabel: str = "head importance (normalised)",
    iteration_labels: Sequence[str] | None = None,
):
    """Box plots of importance scores, one box per pruning iteration (each entry: the scores of that
    iteration pooled over seeds; masked heads excluded by the caller). Empty iterations are skipped."""
    data = [np.asarray(s, dtype=float).ravel() for s in scores_per_iteration]
    data = [d[np.isfinite(d)] for d in data]
    labels = list(iteration_labels) if iteration_labels is not None else [str(i) for i in range(len(data))]
    if len(labels) != len(data):
        raise UserError(f"importance_distributions: {len(labels)} labels for {len(data)} iterations.")
    keep = [i for i, d in enumerate(data) if d.size]
    if not keep:
        raise UserError("importance_distributions: every iteration is empty; nothing to plot.")
    fig, ax = _fig_ax(ax, (max(4.0, 0.45 * len(keep) + 1.5), 3.2))
    ax.boxplot(
        [data[i] for i in keep],
        positions=range(len(keep)),
        widths=0.6,
        showfliers=True,
        flierprops=dict(markersize=2, alpha=0.5),
        medianprops=dict(color="#D55E00"),
    )
    ax.set_xticks(range(len(keep)))
    ax.set_xticklabels([labels[i] for i in keep], fontsize=7)
    ax.set_xlabel("pruning iteration", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def score_curve(
    kept_fraction_per_seed: Mapping[Any, Sequence[float]],
    score_per_seed: Mapping[Any, Sequence[float]],
    *,
    threshold: float | None = None,
    title: str | None = None,
    ax=None,
    xlabel: str = "fraction of prunable weights kept",
):
    """Dev score against the kept fraction, one line per seed (the m-pruning path), with the 0.9 x full line."""
    fig, ax = _fig_ax(ax, (4.8, 3.2))
    for i, key in enumerate(kept_fraction_per_seed):
        x = np.asarray(kept_fraction_per_seed[key], dtype=float)
        y = np.asarray(score_per_seed[key], dtype=float)
        if x.shape != y.shape:
            raise UserError(f"score_curve: seed {key} has {x.size} fractions and {y.size} scores.")
        ax.plot(
            x, y, marker="o", markersize=3, lw=1, label=str(key), color=_FALLBACK[i % len(_FALLBACK)] if i < 4 else None
        )
    if threshold is not None:
        ax.axhline(threshold, color="#D55E00", lw=0.8, ls="--", label="threshold (mean)")
    ax.invert_xaxis()
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("dev score", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def shared_heads_heatmap(
    matrix,
    tasks: Sequence[str],
    *,
    std=None,
    title: str | None = None,
    ax=None,
):
    """Tasks x tasks heatmap of the mean number of shared surviving heads (same seed), with +- std in the cells."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (len(tasks), len(tasks)):
        raise UserError(f"shared_heads_heatmap: matrix shape {m.shape} does not fit {len(tasks)} tasks.")
    sd = None if std is None else np.asarray(std, dtype=float)
    n = len(tasks)
    fig, ax = _fig_ax(ax, (1.8 + 0.9 * n, 1.4 + 0.8 * n))
    finite = m[np.isfinite(m)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    im = ax.imshow(m, cmap="magma", vmin=0.0, vmax=top, interpolation="nearest")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(list(tasks), fontsize=8, rotation=45, ha="right")
    ax.set_yticklabels(list(tasks), fontsize=8)
    for i in range(n):
        for j in range(n):
            if np.isfinite(m[i, j]):
                txt = f"{m[i, j]:.1f}" + (f"\n±{sd[i, j]:.1f}" if sd is not None and np.isfinite(sd[i, j]) else "")
                ax.text(
                    j, i, txt, ha="center", va="center", fontsize=7, color="white" if m[i, j] < 0.6 * top else "black"
                )
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.ax.tick_params(labelsize=7)
    cb.set_label("shared heads (mean)", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


def example_grid(
    examples: Mapping[str, Sequence[tuple[str, np.ndarray]]],
    *,
    ncols: int = 6,
    fig=None,
    cell_inches: float = 1.35,
    cmap: str = "viridis",
):
    """A grid of example maps: one row per pattern type (its name at the left), up to ``ncols`` maps per row,
    each titled with its caption and drawn on its own 0..max scale. Returns ``(fig, axes)`` (rows x ncols array).

    A type without examples keeps its row, with the words "no map of this type".
    """
    types = list(examples)
    if not types:
        raise UserError("example_grid: no pattern types given.")
    if ncols < 1:
        raise UserError(f"example_grid: ncols must be at least 1, got {ncols}.")
    nrows = len(types)
    if fig is None:
        fig = new_figure((1.3 + ncols * cell_inches, nrows * (cell_inches + 0.3)), dpi=100)
    axes = np.empty((nrows, ncols), dtype=object)
    for r, t in enumerate(types):
        items = list(examples[t])[:ncols]
        for c in range(ncols):
            ax = fig.add_subplot(nrows, ncols, r * ncols + c + 1)
            axes[r, c] = ax
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(items):
                caption, m = items[c]
                a = np.asarray(m, dtype=float)
                if a.ndim != 2:
                    raise UserError(f"example_grid: map '{caption}' has shape {a.shape}, expected 2-D.")
                top = float(a.max()) if a.size and a.max() > 0 else 1.0
                ax.imshow(a, cmap=cmap, vmin=0.0, vmax=top, interpolation="nearest")
                ax.set_title(str(caption), fontsize=5.5)
            else:
                for s in ax.spines.values():
                    s.set_visible(False)
                if c == 0:
                    ax.text(
                        0.5,
                        0.5,
                        "no map of\nthis type",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="#666666",
                        transform=ax.transAxes,
                    )
            if c == 0:
                ax.set_ylabel(t, fontsize=8, color=pattern_colour(t, r), fontweight="bold")
    # fixed margins instead of tight_layout: a layout solver over dozens of axes costs seconds
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.45 / w, right=1 - 0.05 / w, bottom=0.05 / h, top=1 - 0.25 / h, wspace=0.08, hspace=0.3)
    fig._attn_laid_out = True
    return fig, axes


def save_figure(fig, stem: str | os.PathLike, dpi: int = 110) -> tuple[Path, Path]:
    """Write ``fig`` to ``stem.png`` and ``stem.svg`` (atomically). Returns both paths."""
    from attnpatterns.io import write_bytes

    stem = Path(stem)
    if not getattr(fig, "_attn_laid_out", False):
        fig.tight_layout(pad=0.4)  # once, here: savefig(bbox_inches="tight") would draw every figure twice per file
        fig._attn_laid_out = True
    png = write_bytes(stem.with_suffix(".png"), figure_bytes(fig, "png", dpi))
    svg = write_bytes(stem.with_suffix(".svg"), figure_bytes(fig, "svg", dpi))
    return png, svg


def figure_bytes(fig, fmt: str = "png", dpi: int = 110) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    # a fixed salt: the SVG's element ids are hashes salted with a random uuid otherwise (bytes differ per run)
    with matplotlib.rc_context({"svg.hashsalt": "attnpatterns"}):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()
