"""Report pieces: plot functions (arrays in, (fig, ax) out), the chi-square of distributions, the HTML/Markdown
renderers, m-pruning masks mapped to heads, and a report over a run folder with missing stages."""

from __future__ import annotations

import re

import numpy as np
import pytest

from attnpatterns.errors import UserError

TYPES = ["vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous"]


# ----------------------------------------------------------------------------------------------- plots


def _pixels(fig):
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())


def test_plots_return_fig_ax_and_draw_on_a_given_ax():
    from attnpatterns.report import plots

    rng = np.random.default_rng(0)
    fig = plots.new_figure((8, 6))
    axes = [fig.add_subplot(2, 2, i + 1) for i in range(4)]
    out = [
        plots.stacked_bars(rng.random((2, 5)), ["a all", "a super"], TYPES, ax=axes[0]),
        plots.survival_heatmap(rng.random((3, 4)), ax=axes[1]),
        plots.importance_distributions([rng.random(12), rng.random(8)], ax=axes[2]),
        plots.shared_heads_heatmap(rng.random((2, 2)) * 10, ["MRPC", "RTE"], std=rng.random((2, 2)), ax=axes[3]),
    ]
    for (f, ax), want in zip(out, axes):
        assert f is fig and ax is want
    px = _pixels(fig)
    assert px[..., :3].std() > 10  # something was drawn


def test_stacked_bars_segments_are_the_normalised_fractions():
    from attnpatterns.report import plots

    fig, ax = plots.stacked_bars([[2, 2, 0, 0, 4], [0, 0, 0, 0, 0]], ["x", "empty"], TYPES)
    widths = {}
    for patch, label in zip(ax.patches, [t for t in TYPES for _ in range(2)]):
        widths.setdefault(label, []).append(patch.get_width())
    # bars are drawn one type at a time, two groups each
    assert widths["vertical"][0] == pytest.approx(0.25) and widths["heterogeneous"][0] == pytest.approx(0.5)
    assert sum(w[1] for w in widths.values()) == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.stacked_bars(np.ones((2, 4)), ["a", "b"], TYPES),
        lambda p: p.stacked_bars(-np.ones((1, 5)), ["a"], TYPES),
        lambda p: p.survival_heatmap(np.ones(5)),
        lambda p: p.shared_heads_heatmap(np.ones((2, 3)), ["a", "b"]),
        lambda p: p.importance_distributions([[], []]),
        lambda p: p.example_grid({}),
    ],
)
def test_plots_reject_bad_arrays(call):
    from attnpatterns.report import plots

    with pytest.raises(UserError):
        call(plots)


def test_example_grid_keeps_a_row_for_a_type_without_maps_and_save_writes_png_and_svg(tmp_path):
    from attnpatterns.report import plots

    ex = {"vertical": [("a", np.eye(5)), ("b", np.ones((7, 7)))], "block": []}
    fig, axes = plots.example_grid(ex, ncols=3)
    assert axes.shape == (2, 3)
    assert axes[0, 0].get_title() == "a" and axes[1, 0].texts[0].get_text().startswith("no map")
    png, svg = plots.save_figure(fig, tmp_path / "grid")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:500]


# ----------------------------------------------------------------------------------------------- distributions


def test_chi_square_matches_scipy_and_drops_empty_types():
    from scipy.stats import chi2_contingency

    from attnpatterns.report.distributions import chi_square

    a, b = [10, 0, 5, 0, 25], [40, 0, 30, 0, 50]
    r = chi_square(a, b, TYPES)
    ref = chi2_contingency(np.array([[10, 5, 25], [40, 30, 50]]), correction=False)
    assert r.ok and r.chi2 == pytest.approx(ref[0]) and r.p == pytest.approx(ref[1]) and r.dof == 2
    assert r.types_used == ["vertical", "vertical+diagonal", "heterogeneous"]


def test_chi_square_says_why_it_cannot_run():
    from attnpatterns.report.distributions import chi_square

    assert not chi_square([0] * 5, [1, 2, 3, 4, 5], TYPES).ok
    r = chi_square([3, 0, 0, 0, 0], [7, 0, 0, 0, 0], TYPES)
    assert not r.ok and "one type" in r.reason


def test_pooled_counts_of_a_head_set():
    from attnpatterns.report.distributions import head_mask_of, pooled_counts

    c = np.zeros((2, 3, 5), dtype=int)
    c[0, 1] = [1, 2, 3, 4, 5]
    c[1, 2] = [10, 0, 0, 0, 0]
    m = head_mask_of([[0, 1]], (2, 3))
    assert pooled_counts(c, m).tolist() == [1, 2, 3, 4, 5]
    assert pooled_counts(c, ~m).tolist() == [10, 0, 0, 0, 0]
    assert pooled_counts(c).tolist() == [11, 2, 3, 4, 5]
    with pytest.raises(UserError):
        head_mask_of([[2, 0]], (2, 3))


# ----------------------------------------------------------------------------------------------- html / markdown


def test_html_is_self_contained_and_markdown_is_its_twin():
    from attnpatterns.report import plots
    from attnpatterns.report.html import Document, Figure, Paragraph, Section, Table, render_html, render_markdown

    fig, _ = plots.survival_heatmap(np.eye(3))
    png = plots.figure_bytes(fig, "png")
    s1 = Section(
        "a",
        "Alpha <b>",
        [
            Paragraph("x | y"),
            Table(["k", "v"], [["p", 0.5], ["q", None]], caption="cap"),
            Figure("fig-a", "the figure", png),
        ],
    )
    s2 = Section("b", "Beta")
    s2.note_missing("no inputs for beta")
    doc = Document("T", meta=[("model", "m")], sections=[s1, s2])
    h = render_html(doc)
    assert "data:image/png;base64," in h and "Alpha &lt;b&gt;" in h
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", h)  # no network asset
    assert "<script" not in h
    assert "Missing:</strong> no inputs for beta" in h
    md = render_markdown(doc)
    assert "![the figure](fig-a.png)" in md and "([SVG](fig-a.svg))" in md
    assert "| p | 0.500 |" in md and "> **Missing:** no inputs for beta" in md
    assert "## Alpha <b>" in md and "## Beta" in md


# ----------------------------------------------------------------------------------------------- m-pruning masks per he


def test_head_weight_survival_reads_heads_out_of_weight_masks():
    from attnpatterns.prune.head_weights import head_weight_survival

    L, H, d, hid = 1, 2, 3, 6
    q = np.ones((H * d, hid), dtype=bool)
    q[d:] = False  # head 1's query rows pruned
    masks = {
        "bert.encoder.layer.0.attention.self.query.weight": q,
        "bert.encoder.layer.0.attention.self.key.weight": np.ones((H * d, hid), dtype=bool),
        "bert.encoder.layer.0.attention.self.value.weight": np.ones((H * d, hid), dtype=bool),
        "bert.encoder.layer.0.attention.output.dense.weight": np.ones((hid, H * d), dtype=bool),
        "bert.encoder.layer.0.intermediate.dense.weight": np.zeros((12, hid), dtype=bool),  # not a head's
    }
    s = head_weight_survival(masks, L, H)
    assert s.shape == (1, 2)
    assert s[0, 0] == pytest.approx(1.0)
    assert s[0, 1] == pytest.approx(3 / 4)  # one of four equal blocks pruned
    with pytest.raises(UserError):
        head_weight_survival({"foo.weight": q}, L, H)


# ----------------------------------------------------------------------------------------------- a report with gaps


def test_report_over_an_unfinished_run_says_what_is_missing(tmp_path):
    from attnpatterns.io import write_json
    from attnpatterns.report.build import build_report

    run = tmp_path / "run"
    write_json(
        run / "MRPC" / "seed_1" / "finetuned" / "metrics.json",
        {"task": "MRPC", "seed": 1, "score": 0.7, "main_metric": "acc", "train_examples": 10, "dev_examples": 5},
    )
    res = build_report(run)
    html = res.html.read_text()
    for sec in ("finetune", "patterns", "survival", "importance", "shared", "subnetworks", "examples"):
        assert f'id="{sec}"' in html
    assert set(res.missing) >= {"patterns", "survival", "importance", "shared", "subnetworks", "examples"}
    assert "classify stage has not run" in html and "s-pruning has not finished" in html
    assert "0.700" in html
    md = res.markdown.read_text()
    assert md.count("> **Missing:**") >= 6


def test_report_of_no_run_folder_is_a_user_error(tmp_path):
    from attnpatterns.report.build import build_report

    with pytest.raises(UserError, match="no such run folder"):
        build_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a run folder"):
        build_report(tmp_path / "empty")
