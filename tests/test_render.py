"""Rendering maps to PNG: sizes, colours of the colour map, marked special tokens, contact sheets."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.image import imread

from attnpatterns.annotate.render import (
    plot_map,
    render_contact_sheet,
    render_map,
    render_map_bytes,
    special_positions,
)
from attnpatterns.errors import UserError

TOKENS = ["[CLS]", "the", "cat", "[SEP]", "sat", "[SEP]"]


def _has_colour(img: np.ndarray, rgb, tol=0.04) -> bool:
    return bool((np.abs(img[..., :3] - np.asarray(rgb)[None, None, :3]).max(axis=-1) < tol).any())


def test_render_map_png_shows_the_colour_scale(tmp_path):
    a = np.zeros((6, 6), np.float32)
    a[:, 0] = 1.0  # the top of the scale
    out = render_map(a, tmp_path / "m.png", TOKENS, title="L0H0")
    img = imread(out)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    cmap = colormaps["viridis"]
    assert _has_colour(img, cmap(1.0)) and _has_colour(img, cmap(0.0))
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_special_tokens_marked_in_red(tmp_path):
    fig, ax = plot_map(np.eye(6), TOKENS)
    red = [t.get_text() for t in ax.get_xticklabels() if t.get_color() == "#d62728"]
    assert red == ["[CLS]", "[SEP]", "[SEP]"]
    assert special_positions(TOKENS) == [0, 3, 5]
    fig2, ax2 = plot_map(np.eye(6))  # no tokens: numeric ticks, no marks
    assert [t.get_text() for t in ax2.get_xticklabels()][:2] == ["0", "1"]
    assert len(fig.axes) == 2 and len(fig2.axes) == 2  # the map and its colour bar


def test_plot_on_given_axes_without_colorbar():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    f2, a2 = plot_map(np.random.default_rng(0).random((5, 5)), ax=ax, colorbar=False)
    assert f2 is fig and a2 is ax and len(fig.axes) == 1


def test_render_bytes_is_png():
    data = render_map_bytes(np.eye(4), ["[CLS]", "a", "b", "[SEP]"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_contact_sheet_titles_and_grid(tmp_path):
    maps = {f"id{i}": np.random.default_rng(i).random((4 + i, 4 + i)) for i in range(10)}
    out = render_contact_sheet(maps, tmp_path / "sheet.png", ncols=4, titles={"id3": "block"})
    img = imread(out)
    assert img.shape[1] > img.shape[0]  # 4 columns x 3 rows
    one_row = imread(render_contact_sheet(list(maps.items())[:2], tmp_path / "two.png", ncols=4))
    assert one_row.shape[1] < img.shape[1]


@pytest.mark.parametrize("bad", [np.ones((3, 4)), np.ones(5), np.zeros((0, 0)), np.full((3, 3), np.nan)])
def test_bad_maps_give_user_errors(tmp_path, bad):
    with pytest.raises(UserError):
        render_map(bad, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_wrong_token_count_and_empty_sheet(tmp_path):
    with pytest.raises(UserError, match="3 tokens for a 4x4 map"):
        render_map(np.eye(4), tmp_path / "x.png", ["a", "b", "c"])
    with pytest.raises(UserError, match="no maps"):
        render_contact_sheet({}, tmp_path / "s.png")
