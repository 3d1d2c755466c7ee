"""Heuristic pattern scores on hand-made maps of each of the five types."""

from __future__ import annotations

import numpy as np
import pytest

from attnpatterns.errors import UserError
from attnpatterns.patterns import (
    PATTERN_VALUES,
    Pattern,
    Thresholds,
    block_scores,
    diagonal_score,
    is_punctuation,
    parse_pattern,
    segment_boundary,
    suggest,
    vertical_columns,
    vertical_score,
)

# [CLS] a b c . d e [SEP] f g h i , j [SEP]  (15 tokens, a sentence pair)
TOKENS = ["[CLS]", "a", "b", "c", ".", "d", "e", "[SEP]", "f", "g", "h", "i", ",", "j", "[SEP]"]
N = len(TOKENS)
B = 7  # first [SEP]
rng = np.random.default_rng(0)


def rows_to_one(a):
    return (a / a.sum(axis=1, keepdims=True)).astype(np.float32)


def noise(scale=0.05):
    return rng.uniform(0, scale, size=(N, N))


def vertical_map():
    a = noise()
    a[:, 0] += 0.6
    a[:, B] += 0.3
    a[:, N - 1] += 0.3
    return rows_to_one(a)


def diagonal_map():
    a = noise()
    for i in range(N):
        a[i, max(i - 1, 0) if i % 2 else min(i + 1, N - 1)] += 1.0
    return rows_to_one(a)


def vertical_diagonal_map():
    a = noise()
    a[:, 0] += 0.5
    a[:, N - 1] += 0.3
    for i in range(1, N):
        a[i, i - 1] += 0.9
    return rows_to_one(a)


def block_map():
    a = noise(0.02)
    a[: B + 1, 1:B] += rng.uniform(0.5, 1.0, size=(B + 1, B - 1))
    a[B + 1 :, B + 1 : N - 1] += rng.uniform(0.5, 1.0, size=(N - B - 1, N - B - 2))
    return rows_to_one(a)


def heterogeneous_map():
    a = rng.uniform(0, 1, size=(N, N)) ** 3
    a[:, [0, B, N - 1, 4, 12]] *= 0.3  # not on the stripes
    return rows_to_one(a)


MAPS = {
    Pattern.VERTICAL: vertical_map,
    Pattern.DIAGONAL: diagonal_map,
    Pattern.VERTICAL_DIAGONAL: vertical_diagonal_map,
    Pattern.BLOCK: block_map,
    Pattern.HETEROGENEOUS: heterogeneous_map,
}


def test_enum_values_are_exactly_the_five_labels():
    assert PATTERN_VALUES == ("vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous")
    assert parse_pattern("block") is Pattern.BLOCK
    assert f"{Pattern.VERTICAL_DIAGONAL}" == "vertical+diagonal"
    with pytest.raises(UserError, match="unknown pattern label 'vert'"):
        parse_pattern("vert")


@pytest.mark.parametrize("expected", list(MAPS))
def test_suggest_labels_hand_made_maps(expected):
    s = suggest(MAPS[expected](), TOKENS)
    assert s.label is expected, s.scores
    assert 0 <= s.confidence <= 1


@pytest.mark.parametrize("expected", list(MAPS))
def test_suggest_is_scale_free(expected):
    """Weight-normed maps have another scale: multiplying a map changes no score."""
    a = MAPS[expected]()
    s1, s2 = suggest(a, TOKENS), suggest(a * 37.5, TOKENS)
    assert s1.label is s2.label
    assert s1.scores["vertical"] == pytest.approx(s2.scores["vertical"])


def test_vertical_columns_and_punctuation():
    assert vertical_columns(TOKENS) == [0, 4, 7, 12, 14]
    assert is_punctuation("##.") and is_punctuation("Ġ,") and not is_punctuation("a") and not is_punctuation("")
    # without tokens: first and last column, plus the heaviest columns when asked
    a = np.full((6, 6), 0.01)
    a[:, 3] = 1.0
    assert vertical_columns(None, attn=a) == [0, 5]
    assert vertical_columns(None, attn=a, top_k=1) == [0, 3, 5]


def test_scores_known_values():
    a = np.eye(N, k=-1) + np.eye(N, k=1)  # all mass on the +-1 diagonals
    assert diagonal_score(a) == pytest.approx(1.0)
    assert diagonal_score(np.eye(N)) == pytest.approx(1.0)  # attention to the token itself is diagonal too
    assert vertical_score(a, [0]) == 0.0  # the (1, 0) cell is the previous token: diagonal, not vertical
    col = np.zeros((N, N))
    col[:, 0] = 1
    assert vertical_score(col, [0]) == pytest.approx((N - 2) / N)  # rows 0 and 1 are in the band
    assert diagonal_score(col) == pytest.approx(2 / N)
    assert segment_boundary(TOKENS) == B
    assert segment_boundary(["[CLS]", "a", "[SEP]"]) is None
    inside, share, chance, spread = block_scores(np.ones((N, N)), B)
    assert inside == pytest.approx(chance * (N * N - (3 * N - 2)) / (N * N))
    assert share == pytest.approx(chance)  # an even map has the chance share
    assert 0.5 < spread < 1
    assert block_scores(np.ones((N, N)), None) == (0.0, 0.0, 0.0, 0.0)
    band = sum(np.eye(N, k=k) for k in (-2, 2))  # a local band: in the segments, but not spread
    assert block_scores(band, B)[3] == 0.0
    assert suggest(band + 0.001, TOKENS).label is not Pattern.BLOCK


def test_stripes_on_ordinary_words_are_vertical():
    """Weight-normed maps put their stripes on content words, not on [CLS]/[SEP]."""
    a = noise(0.02)
    a[:, [2, 9]] += 0.5
    assert suggest(rows_to_one(a), TOKENS).label is Pattern.VERTICAL


def test_single_sentence_is_never_block():
    toks = ["[CLS]"] + list("abcdefghijklm") + ["[SEP]"]
    a = block_map()  # block structure but no pair: no boundary
    assert suggest(a, toks).label is not Pattern.BLOCK


def test_thresholds_change_the_decision():
    a = vertical_map()
    v = suggest(a, TOKENS).scores["vertical"]
    assert (
        suggest(a, TOKENS, thresholds=Thresholds(vertical=v + 0.01, mixed_each=v + 0.01)).label is not Pattern.VERTICAL
    )


def test_bad_maps_raise():
    with pytest.raises(ValueError):
        suggest(np.ones((3, 4)))
    with pytest.raises(ValueError):
        suggest(np.full((3, 3), np.nan))
    with pytest.raises(ValueError):
        suggest(np.ones((4, 4)), ["[CLS]", "a"])
