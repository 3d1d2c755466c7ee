"""The five attention-pattern types (Kovaleva et al. 2019) and heuristic scores of a map.

Pure functions of a 2-D map (rows = queries, columns = keys) and, optionally, its tokens. No model, no
files. The scores are fractions of the map's total mass, so raw maps (rows sum to 1) and weight-normed
maps (arbitrary scale) are treated alike:

- ``vertical``: the larger of two masses (outside the diagonal band): on the [CLS]/[SEP] (<s>/</s>)
  and punctuation columns (without tokens: the first and last columns), and on the 3 heaviest
  columns whatever their token ("stripes": weight-normed maps put theirs on ordinary words).
- ``diagonal``: mass on the thin diagonal band (offsets -1, 0, +1: the previous token, the token
  itself, the next token). Band cells in vertical columns count as diagonal.
- ``block``: mass with query and key in the same segment of a sentence pair, outside the vertical
  columns and the band; ``block_chance`` is the share that would fall inside the segments if that
  remaining mass were spread evenly, and ``block_spread`` the share of it more than 2 tokens off the
  diagonal (a block fills its square; a broad local band does not).

Vertical and diagonal are compared with what an evenly spread map would have there
(``*_excess`` = (score - chance) / (1 - chance)), so long lists of punctuation columns or short
sentences do not make a map look vertical or diagonal by themselves.

:func:`suggest` turns the scores into one label with fixed thresholds (a transparent rule, set by eye on
96 raw and 96 weight-normed MiniLM maps of MRPC dev examples before any annotation existed; used for
pre-annotation in Label Studio and as the baseline the CNN classifier must beat).
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np


class Pattern(str, Enum):
    VERTICAL = "vertical"
    DIAGONAL = "diagonal"
    VERTICAL_DIAGONAL = "vertical+diagonal"
    BLOCK = "block"
    HETEROGENEOUS = "heterogeneous"

    def __str__(self) -> str:  # the plain value in f-strings and files
        return self.value


PATTERN_VALUES: tuple[str, ...] = tuple(p.value for p in Pattern)
SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "<s>", "</s>"})
SEP_TOKENS = frozenset({"[SEP]", "</s>"})


def parse_pattern(value: str) -> Pattern:
    """The Pattern for a label string, or a UserError listing the five labels."""
    from attnpatterns.errors import UserError

    try:
        return Pattern(value)
    except ValueError:
        raise UserError(f"unknown pattern label '{value}'; use one of {', '.join(PATTERN_VALUES)}.") from None


def is_punctuation(token: str) -> bool:
    """A token made only of punctuation characters (WordPiece '##', BPE 'Ġ' and SentencePiece '▁' stripped)."""
    t = str(token)
    if t.startswith("##"):
        t = t[2:]
    t = t.lstrip("Ġ▁")
    return bool(t) and all(unicodedata.category(c).startswith("P") for c in t)


def vertical_columns(
    tokens: Sequence[str] | None = None, n: int | None = None, attn: np.ndarray | None = None, top_k: int = 0
) -> list[int]:
    """Indices of the columns that count as "vertical".

    With ``tokens``: the special tokens and the punctuation tokens; without: the first and last
    columns. With ``attn`` and ``top_k``, also the ``top_k`` columns holding the most mass, whatever
    their token.
    """
    if tokens is not None:
        n = len(tokens)
        cols = {i for i, t in enumerate(tokens) if str(t) in SPECIAL_TOKENS or is_punctuation(t)}
    else:
        if n is None:
            if attn is None:
                raise ValueError("give tokens, n or attn")
            n = attn.shape[-1]
        cols = {0, n - 1}
    if attn is not None and top_k > 0:
        colmass = np.asarray(attn, dtype=np.float64).sum(axis=0)
        cols |= {int(j) for j in np.argsort(-colmass, kind="stable")[:top_k]}
    return sorted(cols)


def segment_boundary(tokens: Sequence[str] | None) -> int | None:
    """Index of the [SEP] that ends the first segment of a sentence pair; None for a single sentence."""
    if not tokens:
        return None
    seps = [i for i, t in enumerate(tokens) if str(t) in SEP_TOKENS]
    if len(seps) >= 2 and seps[0] < len(tokens) - 1:
        return seps[0]
    return None


def _as_map(attn) -> np.ndarray:
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ValueError(f"expected a square 2-D map of at least 2x2, got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError("the map must hold finite, non-negative values")
    return a


def _normalised(a: np.ndarray) -> np.ndarray:
    total = a.sum()
    return a / total if total > 0 else a


def vertical_mask(n: int, columns: Sequence[int]) -> np.ndarray:
    """Boolean (n, n) mask of the cells in ``columns`` off the diagonal band (those count as diagonal)."""
    m = np.zeros((n, n), dtype=bool)
    cols = [c for c in columns if 0 <= c < n]
    m[:, cols] = True
    return m & ~diagonal_mask(n)


def vertical_score(attn, columns: Sequence[int]) -> float:
    """Fraction of the map's mass on ``columns`` (outside the diagonal band)."""
    p = _normalised(_as_map(attn))
    return float(p[vertical_mask(p.shape[0], columns)].sum())


DIAGONAL_OFFSETS = (-1, 0, 1)
STRIPES = 3  # the "stripes" score: mass on this many heaviest columns


def diagonal_mask(n: int, offsets: Sequence[int] = DIAGONAL_OFFSETS) -> np.ndarray:
    """Boolean (n, n) mask of the given diagonals (-1 = previous token, 0 = itself, +1 = next token)."""
    m = np.zeros((n, n), dtype=bool)
    for k in offsets:
        m |= np.eye(n, k=k, dtype=bool)
    return m


def diagonal_score(attn) -> float:
    """Fraction of the map's mass on the thin diagonal band: the previous token, the token itself and the
    next token (offsets -1, 0, +1), whatever the token."""
    p = _normalised(_as_map(attn))
    return float(p[diagonal_mask(p.shape[0])].sum())


def self_score(attn) -> float:
    """Fraction of the map's mass on the main diagonal (each token to itself)."""
    p = _normalised(_as_map(attn))
    return float(np.trace(p))


def block_mask(n: int, boundary: int) -> np.ndarray:
    """Boolean (n, n) mask of query/key pairs inside the same segment; segment A = [0, boundary]."""
    seg = np.arange(n) > boundary
    return seg[:, None] == seg[None, :]


def block_scores(attn, boundary: int | None, exclude_columns: Sequence[int] = ()) -> tuple[float, float, float, float]:
    """(block, share, chance, spread) of a sentence pair's map, on the "free" cells: outside the vertical
    columns and the diagonal band.

    block: the mass with query and key in the same segment; share: block / the mass on free cells;
    chance: the fraction of the free cells that lie inside the segments (the share of an evenly spread
    map); spread: the share of the in-segment mass more than 2 tokens off the diagonal (a block fills
    its square, a local band does not). All 0 without a boundary.
    """
    p = _normalised(_as_map(attn))
    n = p.shape[0]
    if boundary is None or not (1 <= boundary < n - 2):
        return 0.0, 0.0, 0.0, 0.0
    free = ~diagonal_mask(n)
    free[:, list(exclude_columns)] = False
    inside = block_mask(n, boundary) & free
    n_free = int(free.sum())
    chance = float(inside.sum() / n_free) if n_free else 0.0
    block = float(p[inside].sum())
    far = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) > 2
    spread = float(p[inside & far].sum() / block) if block > 0 else 0.0
    free_mass = float(p[free].sum())
    share = block / free_mass if free_mass > 0 else 0.0
    return block, share, chance, spread


@dataclass
class Thresholds:
    """Decision rule of :func:`suggest` (fractions of the map's mass)."""

    vertical: float = 0.45  # vertical alone (excess over chance, see _excess)
    diagonal: float = 0.35  # diagonal alone (excess over chance)
    mixed_each: float = 0.2  # vertical+diagonal: each excess at least this ...
    mixed_sum: float = 0.5  # ... and together at least this
    block_share: float = 0.8  # block: of the mass off the stripes and band, this much inside the segments ...
    block_margin: float = 0.2  # ... and that share at least this far above chance
    block_min: float = 0.25  # ... and the in-segment mass at least this much of the whole ...
    block_spread: float = 0.5  # ... and at least this share of it more than 2 tokens off the diagonal


@dataclass
class Suggestion:
    label: Pattern
    scores: dict = field(default_factory=dict)
    confidence: float = 0.0

    def to_dict(self) -> dict:
        return {"label": self.label.value, "confidence": self.confidence, **self.scores}


def scores(
    attn, tokens: Sequence[str] | None = None, boundary: int | None = None, columns: Sequence[int] | None = None
) -> dict:
    """All heuristic scores of one map (see the module docstring)."""
    a = _as_map(attn)
    n = a.shape[0]
    if tokens is not None and len(tokens) != n:
        raise ValueError(f"got {len(tokens)} tokens for a {n}x{n} map")
    cols = list(columns) if columns is not None else vertical_columns(tokens, n)
    stripe_cols = [int(j) for j in np.argsort(-a.sum(axis=0), kind="stable")[:STRIPES]]
    if boundary is None:
        boundary = segment_boundary(tokens)
    v = vertical_score(a, cols)
    st = vertical_score(a, stripe_cols)
    d = diagonal_score(a)
    b, share, chance, spread = block_scores(a, boundary, exclude_columns=sorted(set(cols) | set(stripe_cols)))
    v_chance = float(vertical_mask(n, cols).sum() / (n * n))
    st_chance = float(vertical_mask(n, stripe_cols).sum() / (n * n))
    d_chance = float(diagonal_mask(n).sum() / (n * n))
    return {
        "vertical": max(v, st),
        "diagonal": d,
        "vertical_special": v,
        "vertical_stripes": st,
        "vertical_excess": max(_excess(v, v_chance), _excess(st, st_chance)),
        "diagonal_excess": _excess(d, d_chance),
        "vertical_chance": v_chance,
        "diagonal_chance": d_chance,
        "self": self_score(a),
        "block": b,
        "block_share": share,
        "block_chance": chance,
        "block_spread": spread,
        "n_vertical_columns": len(cols),
        "boundary": -1 if boundary is None else int(boundary),
    }


def _excess(x: float, chance: float) -> float:
    """How far ``x`` is above the share an evenly spread map would have, on a 0..1 scale."""
    return float(max(0.0, (x - chance) / (1.0 - chance))) if chance < 1 else 0.0


def decide(s: dict, th: Thresholds | None = None) -> tuple[Pattern, float]:
    """Label and a confidence in [0, 1] (how far past its threshold the winning score is) from :func:`scores`."""
    th = th or Thresholds()
    v, d = s["vertical_excess"], s["diagonal_excess"]
    if v >= th.mixed_each and d >= th.mixed_each and v + d >= th.mixed_sum:
        return Pattern.VERTICAL_DIAGONAL, float(min(1.0, 0.5 + (v + d - th.mixed_sum)))
    if v >= th.vertical and v >= d:
        return Pattern.VERTICAL, float(min(1.0, 0.5 + (v - th.vertical)))
    if d >= th.diagonal:
        return Pattern.DIAGONAL, float(min(1.0, 0.5 + (d - th.diagonal)))
    share = s["block_share"]
    if (
        s["block_chance"] > 0
        and share >= th.block_share
        and share - s["block_chance"] >= th.block_margin
        and s["block"] >= th.block_min
        and s.get("block_spread", 1.0) >= th.block_spread
    ):
        return Pattern.BLOCK, float(min(1.0, 0.5 + (share - th.block_share)))
    return Pattern.HETEROGENEOUS, float(min(1.0, 0.5 + max(0.0, th.vertical - v, th.diagonal - d) / 2))


def suggest(
    attn,
    tokens: Sequence[str] | None = None,
    *,
    boundary: int | None = None,
    columns: Sequence[int] | None = None,
    thresholds: Thresholds | None = None,
) -> Suggestion:
    """The heuristic label of one map, with its scores (for pre-annotation and as a baseline)."""
    s = scores(attn, tokens, boundary=boundary, columns=columns)
    label, conf = decide(s, thresholds)
    return Suggestion(label=label, scores=s, confidence=conf)


def thresholds_dict(th: Thresholds | None = None) -> dict:
    return asdict(th or Thresholds())
