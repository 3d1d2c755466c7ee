"""Pattern features (classifier.features) on maps whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnpatterns.classifier.features import FEATURE_NAMES, NUM_FEATURES, map_features


def f(maps) -> dict[str, np.ndarray]:
    x = map_features(torch.as_tensor(np.asarray(maps), dtype=torch.float32))
    assert x.shape == (len(maps), NUM_FEATURES)
    return {name: x[:, i].numpy() for i, name in enumerate(FEATURE_NAMES)}


def test_diagonal_and_previous_token():
    n = 10
    eye = np.eye(n)
    prev = np.roll(np.eye(n), -1, axis=1)  # row i attends to token i-1 (row 0 wraps to the last token)
    r = f([eye, prev])
    assert r["diag_0"][0] == pytest.approx(1.0) and r["diag_m1"][0] == 0
    assert r["diag_m1"][1] == pytest.approx((n - 1) / n) and r["diag_0"][1] == 0
    assert r["diag_band"][0] == pytest.approx(1.0) and r["diag_band"][1] == pytest.approx((n - 1) / n)
    assert r["row_entropy"][0] == pytest.approx(0.0, abs=1e-6)
    assert r["row_max"][0] == pytest.approx(1.0)


def test_vertical_columns():
    n = 12
    cls = np.zeros((n, n))
    cls[:, 0] = 1.0
    two = np.zeros((n, n))
    two[:, 0] = 0.5
    two[:, -1] = 0.5
    flat = np.full((n, n), 1.0 / n)
    r = f([cls, two, flat])
    assert r["col_top1"][0] == pytest.approx(1.0) and r["col_first"][0] == pytest.approx(1.0)
    assert r["col_top2"][1] == pytest.approx(1.0) and r["col_last"][1] == pytest.approx(0.5)
    assert r["col_entropy"][0] == pytest.approx(0.0, abs=1e-6)
    assert r["col_entropy"][2] == pytest.approx(1.0)
    assert r["row_entropy"][2] == pytest.approx(1.0)
    assert r["mass_off_top"][1] == pytest.approx(0.0, abs=1e-6)  # all attention is in the two top columns
    assert r["mass_off_top"][2] == pytest.approx((n - 2) / n)


def test_block_gain_finds_the_split():
    n, s = 12, 5
    b = np.zeros((n, n))
    b[:s, :s] = 1.0 / s
    b[s:, s:] = 1.0 / (n - s)
    flat = np.full((n, n), 1.0 / n)
    r = f([b, flat])
    assert r["block_split"][0] == pytest.approx(s / n)
    assert r["block_gain"][0] == pytest.approx((n - (s * s + (n - s) ** 2) / n) / n)
    assert r["block_gain"][1] == pytest.approx(0.0, abs=1e-6) and r["block_split"][1] == 0


def test_scale_only_changes_the_scale_features():
    rng = np.random.default_rng(0)
    m = rng.random((9, 9))
    a, b = f([m]), f([m * 37.0])
    for name in FEATURE_NAMES:
        if name == "log_scale":
            assert b[name][0] - a[name][0] == pytest.approx(np.log(37.0), rel=1e-5)
        else:
            assert b[name][0] == pytest.approx(a[name][0], rel=1e-5, abs=1e-6), name


def test_batched_equals_one_by_one_and_tiny_maps():
    rng = np.random.default_rng(1)
    maps = rng.random((5, 7, 7))
    both = map_features(torch.as_tensor(maps, dtype=torch.float32))
    one = torch.cat([map_features(torch.as_tensor(maps[i : i + 1], dtype=torch.float32)) for i in range(5)])
    assert torch.allclose(both, one, atol=1e-6)
    small = map_features(torch.rand(2, 3, 3))  # no valid block split: gain 0, not an error
    assert torch.isfinite(small).all() and (small[:, FEATURE_NAMES.index("block_gain")] == 0).all()
    with pytest.raises(ValueError):
        map_features(torch.rand(2, 3, 4))


def test_cnn_with_feature_branch_needs_features():
    from attnpatterns.classifier.model import PatternCNN

    m = PatternCNN(num_features=NUM_FEATURES).eval()
    feats = torch.rand(6, NUM_FEATURES) * 5 + 2
    m.set_feature_scaling(feats)
    assert torch.allclose(((feats - m.feat_mean) / m.feat_std).mean(0), torch.zeros(NUM_FEATURES), atol=1e-5)
    assert m(torch.rand(6, 1, 16, 16), feats).shape == (6, 5)
    with pytest.raises(ValueError, match="feature branch"):
        m(torch.rand(6, 1, 16, 16))


def test_constant_feature_is_centred_not_blown_up():
    from attnpatterns.classifier.model import PatternCNN

    m = PatternCNN(num_features=3)
    feats = torch.tensor([[1.0, 0.0, 5.0], [1.0, 1.0, 7.0], [1.0, 2.0, 9.0]])  # the first one never changes
    m.set_feature_scaling(feats)
    assert m.feat_std[0] == 1.0 and m.feat_mean[0] == 1.0
    assert torch.allclose(m.feat_std[1:], feats[:, 1:].std(0, unbiased=False))


def test_block_features_tell_filled_blocks_from_a_band():
    n = 30
    i = np.arange(n)
    band = (np.abs(i[:, None] - i[None, :]) <= 1).astype(np.float32)  # a thin diagonal band
    blocks = ((i[:, None] < 12) == (i[None, :] < 12)).astype(np.float32)  # two filled squares, split at 12
    flat = np.ones((n, n), dtype=np.float32)
    f = {
        name: map_features(torch.as_tensor(m[None]))[0]
        for name, m in (("band", band), ("blocks", blocks), ("flat", flat))
    }
    col = {k: FEATURE_NAMES.index(k) for k in ("leak_min", "leak_ratio", "block_far", "dist_mean", "far_mass")}
    # no attention crosses the split of the blocks; a flat map's cross-block share equals the flat reference
    assert float(f["blocks"][col["leak_min"]]) == pytest.approx(0.0, abs=1e-6)
    assert float(f["flat"][col["leak_ratio"]]) == pytest.approx(1.0, rel=1e-5)
    # both the band and the blocks stay inside a split, but only the blocks fill it far from the diagonal
    assert float(f["blocks"][col["block_far"]]) > 0.5 > 0.01 > float(f["band"][col["block_far"]])
    assert float(f["band"][col["far_mass"]]) == pytest.approx(0.0, abs=1e-6)
    assert (
        float(f["band"][col["dist_mean"]]) < float(f["blocks"][col["dist_mean"]]) < float(f["flat"][col["dist_mean"]])
    )


def test_argmax_features_on_a_diagonal_and_a_column():
    n = 20
    eye = np.eye(n, dtype=np.float32) + 0.01
    col = np.full((n, n), 0.01, dtype=np.float32)
    col[:, 5] = 1.0
    fe, fc = (map_features(torch.as_tensor(m[None]))[0] for m in (eye, col))
    ix = {k: FEATURE_NAMES.index(k) for k in ("argmax_mode", "argmax_diag0", "argmax_diag1", "col_inner_top1")}
    assert float(fe[ix["argmax_diag0"]]) == pytest.approx(1.0) and float(fe[ix["argmax_diag1"]]) == pytest.approx(1.0)
    assert float(fc[ix["argmax_mode"]]) == pytest.approx(1.0) and float(fe[ix["argmax_mode"]]) == pytest.approx(1 / n)
    assert float(fc[ix["col_inner_top1"]]) > 0.7  # column 5 is between the first and the last token


def test_anchor_features_are_the_guidelines_measures():
    """The anchor_* features equal annotations/tools/measures.py (the numbers behind GUIDELINES.md's operational
    anchors) on hand-made maps: a [CLS] column beside a previous-token line, a column over noise, a flat map."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "measures", Path(__file__).resolve().parents[1] / "annotations" / "tools" / "measures.py"
    )
    assert spec is not None and spec.loader is not None
    measures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measures)
    rng = np.random.default_rng(0)
    n = 20
    vd = np.full((n, n), 0.01)
    vd[:, 0] = 0.5
    vd[np.arange(1, n), np.arange(n - 1)] = 0.45
    col = rng.random((n, n)) * 0.1
    col[: n // 2, 3] = 1.0  # bright in half the rows only
    flat = np.ones((n, n))
    names = ("anchor_cls", "anchor_column", "anchor_diagonal", "anchor_bright_on")
    for m in (vd, col, flat):
        f = map_features(torch.as_tensor(m[None], dtype=torch.float32))[0]
        got = [float(f[FEATURE_NAMES.index(k)]) for k in names]
        ref = measures.measures(m)
        assert got == pytest.approx([ref["cls"], ref["column"], ref["diagonal"], ref["bright_on"]], abs=1e-6)
    f = map_features(torch.as_tensor(vd[None], dtype=torch.float32))[0]
    assert float(f[FEATURE_NAMES.index("anchor_cls")]) == pytest.approx(1.0)  # [CLS] bright in every other row
    assert float(f[FEATURE_NAMES.index("anchor_diagonal")]) == pytest.approx(1.0)  # the previous-token line


def _both(maps) -> tuple[np.ndarray, np.ndarray]:
    from attnpatterns.classifier.features import map_features_torch
    from attnpatterns.classifier.features_fused import NF

    assert NF == NUM_FEATURES  # the compiled loop writes every feature the names list

    t = torch.as_tensor(np.asarray(maps), dtype=torch.float32)
    return map_features(t).numpy(), map_features_torch(t).numpy()


def _assert_same(fused: np.ndarray, ref: np.ndarray, what: str) -> None:
    scale = np.maximum(1.0, np.abs(ref))  # log_scale and peak_ratio of weight-normed maps exceed 1
    bad = np.abs(fused - ref) > 2e-5 * scale
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise AssertionError(f"{what}: map {i}, {FEATURE_NAMES[j]}: fused {fused[i, j]} vs tensor {ref[i, j]}")


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 9, 16, 33, 64])
def test_fused_features_equal_the_tensor_version(n):
    """The compiled loop that map_features runs computes every feature as map_features_torch states it: smooth,
    peaked and weight-normed maps, rows of zeros, one dominant column, and the five synthetic types. (Maps with
    exact ties between columns are left to the next test: torch's topk breaks them in no stated order.)"""
    from attnpatterns.classifier.labels import LABELS
    from attnpatterns.classifier.synthetic import synthetic_map

    rng = np.random.default_rng(n)
    soft = rng.random((6, n, n)).astype(np.float32)
    peaked = soft**8 * rng.random((6, n, 1)).astype(np.float32) * 5  # rows of any total, as weight-normed maps
    holes = soft.copy()
    holes[:, n // 2] = 0.0  # a row of zeros
    holes[:, :, 0] *= 20  # one dominant column: the top columns and the map without them
    _assert_same(*_both(np.concatenate([soft, peaked, holes])), f"random maps of {n} tokens")
    if n >= 4:
        maps = [synthetic_map(lab, n, rng, noise=0.1, kind=kind) for lab in LABELS for kind in ("raw", "normed")]
        _assert_same(*_both(maps), f"synthetic maps of {n} tokens")


def test_fused_features_equal_the_tensor_version_on_the_annotated_maps():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "annotations"
    for kind in ("raw", "normed"):
        with np.load(root / kind / "maps.npz") as z:
            maps = [z[k] for k in z.files]
        by_len: dict[int, list[np.ndarray]] = {}
        for m in maps:
            by_len.setdefault(m.shape[0], []).append(m)
        for n, group in by_len.items():
            _assert_same(*_both(np.stack(group)), f"annotations/{kind} maps of {n} tokens")


def test_fused_features_break_exact_ties_by_the_first_column():
    """A clean map whose columns tie exactly (a shifted diagonal: every column but the first gets one row, the last
    two): the two largest columns are the last (2 rows) and then the first of the tied ones, column 1."""
    n = 6
    m = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        m[i, min(i + 1, n - 1)] = 1.0
    r = f([m])
    assert r["col_top1"][0] == pytest.approx(2 / n) and r["col_top2"][0] == pytest.approx(3 / n)
    # removing columns 5 and 1 leaves rows 1, 2, 3 (on columns 2, 3, 4) and rows 0, 4, 5 empty
    assert r["mass_off_top"][0] == pytest.approx(3 / n)
    assert r["row_max_off"][0] == pytest.approx(3 / n)
    assert r["argmax_diag0"][0] == pytest.approx(1 / n)  # only the last row's maximum is on the diagonal


def test_fused_features_do_not_depend_on_the_previous_call():
    """The log scratch array is reused between calls: a call's features are the same after a larger stack, a
    smaller one and a stack past the size that is kept (its own array) have been through it."""
    from attnpatterns.classifier import features_fused

    rng = np.random.default_rng(5)
    x = rng.random((8, 12, 12), dtype=np.float32) ** 4
    first = features_fused.fused_features(x)
    features_fused.fused_features(rng.random((40, 30, 30), dtype=np.float32))
    features_fused.fused_features(rng.random((2, 3, 3), dtype=np.float32))
    keep = features_fused._KEEP_AT_MOST
    try:
        features_fused._KEEP_AT_MOST = 100  # x (1152 entries) now gets an array of its own
        past = features_fused.fused_features(x)
    finally:
        features_fused._KEEP_AT_MOST = keep
    np.testing.assert_array_equal(features_fused.fused_features(x), first)
    np.testing.assert_array_equal(past, first)
