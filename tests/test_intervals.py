"""Bootstrap intervals of pattern shares: they cover a known proportion at about their level."""

from __future__ import annotations

import numpy as np
import pytest

from attnpatterns.errors import UserError
from attnpatterns.stats import bootstrap_fractions


def _sample(rng, p, units, per_unit, spread=0.0):
    """(units, types) counts: each unit draws its own type probabilities around p (spread = between-unit noise)."""
    out = []
    for _ in range(units):
        q = rng.dirichlet(np.asarray(p) * (1 / spread)) if spread else np.asarray(p)
        out.append(rng.multinomial(per_unit, q))
    return np.array(out)


@pytest.mark.parametrize("spread", [0.0, 0.05])
def test_intervals_cover_the_true_share(spread):
    p = np.array([0.5, 0.1, 0.05, 0.05, 0.3])
    rng = np.random.default_rng(1)
    hits, reps = np.zeros(5), 150
    for r in range(reps):
        c = _sample(rng, p, units=40, per_unit=12, spread=spread)
        frac, lo, hi = bootstrap_fractions(c, n_boot=400, seed=r)
        assert np.all(lo <= frac + 1e-12) and np.all(frac <= hi + 1e-12)
        hits += (lo <= p) & (p <= hi)
    cover = hits / reps
    # a 95% percentile bootstrap with 40 units covers 0.88-0.99 of the time on every type
    assert np.all(cover >= 0.86) and np.all(cover <= 1.0), cover


def test_two_stage_bootstrap_is_wider_when_seeds_differ():
    rng = np.random.default_rng(0)
    # 5 seeds whose models differ: seed-level shares vary a lot, examples within a seed little
    c, seeds = [], []
    for s in range(5):
        q = rng.dirichlet([5, 5, 5, 5, 5])
        c.append(_sample(rng, q, units=30, per_unit=20))
        seeds += [s] * 30
    c = np.concatenate(c)
    _, lo1, hi1 = bootstrap_fractions(c, seed=0, n_boot=500)
    _, lo2, hi2 = bootstrap_fractions(c, clusters=seeds, seed=0, n_boot=500)
    assert np.all((hi2 - lo2) > (hi1 - lo1))


def test_deterministic_and_bad_input():
    c = np.array([[3, 1, 0, 0, 2], [1, 1, 1, 0, 3]])
    a = bootstrap_fractions(c, seed=3)
    b = bootstrap_fractions(c, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(UserError, match="non-empty"):
        bootstrap_fractions(np.zeros((0, 5)))
    with pytest.raises(UserError, match="one per unit"):
        bootstrap_fractions(c, clusters=[0])
