"""Property tests (hypothesis) of the pure mask, survivor and statistics functions, and of the head-set parser.

Each test runs a @given function inside it and prints how many examples it tried (see with ``pytest -s``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attnpatterns.errors import UserError
from attnpatterns.prune.masks import (
    HeadSet,
    and_over_seeds,
    mask_size,
    mask_sizes,
    or_over_seeds,
    read_head_set,
    survival_counts,
)
from attnpatterns.prune.survivors import split_survivors
from attnpatterns.stats import cochrans_q_survival, fleiss_kappa_survival, shared_counts

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _stacks(min_seeds=1, max_seeds=6, max_l=4, max_h=5):
    shape = st.tuples(st.integers(min_seeds, max_seeds), st.integers(1, max_l), st.integers(1, max_h))
    return shape.flatmap(lambda s: arrays(np.int8, s, elements=st.integers(0, 1)))


def _report(name, n):
    print(f"{name}: {n} examples tried")
    assert n > 0


# ------------------------------------------------------------------------------------------------ statistics


def test_kappa_equals_statsmodels_on_random_tables():
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    n = 0

    @SETTINGS
    @given(_stacks(min_seeds=2), st.randoms(use_true_random=False))
    def check(stack, rnd):
        nonlocal n
        n += 1
        k = fleiss_kappa_survival(stack)
        ratings = stack.reshape(stack.shape[0], -1).T  # (components, seeds)
        kept = ratings.sum()
        if kept in (0, ratings.size):  # one category only: chance agreement 1, kappa 0/0
            assert math.isnan(k)
            return
        table, _ = aggregate_raters(ratings, n_cat=2)
        assert k == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-12)
        assert k <= 1 + 1e-12
        # Invariant under relabelling seeds and components, and under swapping kept/pruned.
        seeds = list(range(stack.shape[0]))
        rnd.shuffle(seeds)
        flat = stack.reshape(stack.shape[0], -1)[seeds]
        comps = list(range(flat.shape[1]))
        rnd.shuffle(comps)
        assert fleiss_kappa_survival(flat[:, comps]) == pytest.approx(k, abs=1e-12)
        assert fleiss_kappa_survival(1 - stack) == pytest.approx(k, abs=1e-12)

    check()
    _report("kappa vs statsmodels", n)


def test_cochrans_q_is_defined_or_nan():
    n = 0

    @SETTINGS
    @given(_stacks(min_seeds=2))
    def check(stack):
        nonlocal n
        n += 1
        for treatments in ("seeds", "components"):
            q = cochrans_q_survival(stack, treatments)
            if math.isnan(q.statistic):
                assert math.isnan(q.pvalue)
            else:
                assert q.statistic >= -1e-9 and 0.0 <= q.pvalue <= 1.0
        # Cases = components: the statistic does not depend on the order of the seeds.
        q1 = cochrans_q_survival(stack, "seeds").statistic
        q2 = cochrans_q_survival(stack[::-1], "seeds").statistic
        assert (math.isnan(q1) and math.isnan(q2)) or q1 == pytest.approx(q2)

    check()
    _report("Cochran's Q", n)


# ------------------------------------------------------------------------------------------------ algebra


def test_mask_algebra_properties():
    n = 0

    @SETTINGS
    @given(_stacks())
    def check(stack):
        nonlocal n
        n += 1
        s = stack.astype(bool)
        all_, any_ = and_over_seeds(s), or_over_seeds(s)
        assert all(((all_ & ~m).sum() == 0) for m in s)  # AND is inside every seed
        assert all(((m & ~any_).sum() == 0) for m in s)  # every seed is inside OR
        sizes = mask_sizes(s)
        assert mask_size(all_) <= sizes.min() <= sizes.max() <= mask_size(any_)
        counts = survival_counts(s)
        np.testing.assert_array_equal(counts == s.shape[0], all_)
        np.testing.assert_array_equal(counts > 0, any_)
        sp = split_survivors(s)
        total = sp.super.astype(int) + sp.in_between.astype(int) + sp.never.astype(int)
        assert (total == 1).all()  # a partition
        assert sum(sp.counts.values()) == s[0].size
        # shared counts: symmetric, at most the smaller set, self-overlap = size
        other = s[::-1]
        sc = shared_counts(s, other)
        np.testing.assert_array_equal(sc, shared_counts(other, s))
        assert (sc <= np.minimum(sizes, mask_sizes(other))).all()
        np.testing.assert_array_equal(shared_counts(s, s), sizes)
        # head sets: arrays -> set -> arrays is the identity
        hs = HeadSet.from_arrays(s[0], s[0][:, 0])
        hm, mm = hs.to_arrays()
        np.testing.assert_array_equal(hm.astype(bool), s[0])
        np.testing.assert_array_equal(mm.astype(bool), s[0][:, 0])
        assert HeadSet.from_json(json.loads(json.dumps(hs.to_json()))) == hs

    check()
    _report("mask algebra", n)


# ------------------------------------------------------------------------------------------------ parser

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 20) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
_small = st.none() | st.booleans() | st.integers(-2, 8) | st.floats(-2, 8) | st.text(max_size=3)
_pair = st.lists(_small, min_size=0, max_size=3) | _small
_near = st.fixed_dictionaries(
    {},
    optional={
        "model": _small,
        "task": _small,
        "seed": _small,
        "seeds": st.lists(_small, max_size=3) | _small,
        "num_layers": _small,
        "num_heads": _small,
        "heads": st.lists(_pair, max_size=5) | _small,
        "mlps": st.lists(_small, max_size=4) | _small,
    },
)
# Mostly well-formed sets near the edges (out of range by one, duplicates, bools, missing keys).
_idx = st.one_of(*[st.integers(0, 2)] * 6, st.integers(-1, 4), st.sampled_from([True, 1.0]))
_valid_ish = st.fixed_dictionaries(
    {"heads": st.lists(st.tuples(_idx, _idx).map(list) | st.lists(_idx, max_size=3), max_size=4)},
    optional={
        "num_layers": st.sampled_from([3, 3, 3, 2, 4, "3"]),
        "num_heads": st.sampled_from([4, 4, 4, 5, 0]),
        "mlps": st.lists(_idx, max_size=3) | st.none(),
        "seed": st.integers(0, 5) | st.none(),
        "seeds": st.lists(st.integers(0, 3), max_size=3),
        "model": st.sampled_from(["m", None]),
    },
)


def _check_valid(hs: HeadSet, L=None, H=None):
    assert isinstance(hs, HeadSet)
    if L is not None:
        assert (hs.num_layers, hs.num_heads) == (L, H)
    assert hs.heads == sorted(set(hs.heads))
    assert all(0 <= a < hs.num_layers and 0 <= b < hs.num_heads for a, b in hs.heads)
    if hs.mlps is not None:
        assert hs.mlps == sorted(set(hs.mlps)) and all(0 <= m < hs.num_layers for m in hs.mlps)
    hm, mm = hs.to_arrays()
    assert hm.shape == (hs.num_layers, hs.num_heads) and int(hm.sum()) == len(hs.heads)


def test_head_set_parser_never_crashes():
    n = 0
    outcomes = {"valid": 0, "error": 0}

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.one_of(
            _json,
            _near,
            _valid_ish,
            _valid_ish,
            _valid_ish,
            st.lists(_pair, max_size=5),
            st.lists(st.tuples(_idx, _idx).map(list), max_size=5),
        ),
        st.sampled_from([None, (3, 4)]),
    )
    def check(obj, shape):
        nonlocal n
        n += 1
        L, H = shape if shape else (None, None)
        try:
            hs = HeadSet.from_json(obj, num_layers=L, num_heads=H, source="x.json")
        except UserError as e:
            outcomes["error"] += 1
            assert str(e) and "\n" not in str(e)
            return
        outcomes["valid"] += 1
        _check_valid(hs, L, H)

    check()
    print(f"parser outcomes: {outcomes}")
    assert outcomes["valid"] > 0 and outcomes["error"] > 0  # both branches were exercised
    _report("head-set parser (objects)", n)


def test_head_set_file_reader_never_crashes(tmp_path_factory):
    d = tmp_path_factory.mktemp("hs")
    n = 0

    @SETTINGS
    @given(st.one_of(st.text(max_size=30), _near.map(json.dumps), _valid_ish.map(json.dumps), st.binary(max_size=20)))
    def check(content):
        nonlocal n
        n += 1
        p = d / "set.json"
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        try:
            hs = read_head_set(p, num_layers=3, num_heads=4)
        except UserError as e:
            assert str(p) in str(e) or "num_layers" in str(e)
            return
        _check_valid(hs, 3, 4)

    check()
    _report("head-set parser (files)", n)


def test_head_set_parser_near_valid_sets():
    """Mostly well-formed sets: each either parses to a valid set for a 3 x 4 model or is a one-line UserError."""
    n = 0
    outcomes = {"valid": 0, "error": 0}

    @SETTINGS
    @given(_valid_ish)
    def check(obj):
        nonlocal n
        n += 1
        try:
            hs = HeadSet.from_json(obj, num_layers=3, num_heads=4, source="near.json")
        except UserError as e:
            outcomes["error"] += 1
            assert str(e).startswith("near.json: ") and "\n" not in str(e)
            return
        outcomes["valid"] += 1
        _check_valid(hs, 3, 4)
        assert len(hs.heads) == len(obj["heads"])  # nothing dropped silently

    check()
    print(f"near-valid parser outcomes: {outcomes}")
    assert outcomes["valid"] > 0 and outcomes["error"] > 0
    _report("head-set parser (near-valid)", n)


# ------------------------------------------------------------------------------------------------ map cropping


def _batches():
    """(maps (B, L, H, T, T), attention_mask (B, T)): any mask, padding on the right or anywhere."""
    dims = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 3), st.integers(1, 9))

    def build(d):
        b, l, h, t = d
        maps = arrays(np.float32, (b, l, h, t, t), elements=st.floats(0, 1, width=32))
        right = st.lists(st.integers(0, t), min_size=b, max_size=b).map(
            lambda ns: np.array([[1] * n + [0] * (t - n) for n in ns], dtype=np.int64)
        )
        anywhere = arrays(np.int64, (b, t), elements=st.integers(0, 1))
        return st.tuples(maps, st.one_of(right, anywhere))

    return dims.flatmap(build)


def test_map_cropping_keeps_exactly_the_real_tokens():
    import torch

    from attnpatterns.maps import cut_maps

    n = 0

    @SETTINGS
    @given(_batches())
    def check(batch):
        nonlocal n
        n += 1
        maps, mask = batch
        out = cut_maps(torch.from_numpy(maps), torch.from_numpy(mask))
        assert len(out) == maps.shape[0]
        for b, m in enumerate(out):
            idx = np.flatnonzero(mask[b])
            L, H = maps.shape[1:3]
            assert m.shape == (L, H, len(idx), len(idx)) and m.dtype == np.float32
            np.testing.assert_array_equal(m, maps[b][:, :, idx][:, :, :, idx])
            if mask[b].tolist() == sorted(mask[b].tolist(), reverse=True):  # right padding: the first n
                np.testing.assert_array_equal(m, maps[b, :, :, : len(idx), : len(idx)])

    check()
    _report("map cropping (cut_maps)", n)


def test_map_preparation_shape_range_and_scale():
    import torch

    from attnpatterns.classifier.model import Preprocess, prepare

    n = 0
    sizes = st.tuples(st.integers(1, 3), st.integers(1, 40))

    @SETTINGS
    @given(
        sizes.flatmap(lambda s: arrays(np.float32, (s[0], s[1], s[1]), elements=st.floats(0, 1, width=32))),
        st.sampled_from([4, 8, 16, 32]),
        st.sampled_from(["pad", "resize"]),
        st.sampled_from(["none", "max", "mass"]),
    )
    def check(maps, size, mode, scale):
        nonlocal n
        n += 1
        pre = Preprocess(size=size, mode=mode, scale=scale)
        x = prepare(torch.from_numpy(maps), pre).numpy()
        assert x.shape == (maps.shape[0], 1, size, size) and np.isfinite(x).all() and (x >= 0).all()
        for k in range(maps.shape[0]):
            if maps[k].max() <= 1e-6:
                continue
            if scale == "max":
                assert x[k].max() == pytest.approx(1.0, rel=1e-5)
            elif scale == "mass":
                assert x[k].sum() == pytest.approx(size, rel=1e-3)
            elif mode == "pad" and maps.shape[-1] <= size:  # padding keeps every value, centred
                t, lo = maps.shape[-1], (size - maps.shape[-1]) // 2
                np.testing.assert_array_equal(x[k, 0, lo : lo + t, lo : lo + t], maps[k])
                assert x[k].sum() == pytest.approx(float(maps[k].sum()), rel=1e-5)

    check()
    _report("map preparation (crop/pad/resize and scale)", n)
