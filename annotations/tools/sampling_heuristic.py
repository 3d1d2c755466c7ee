"""Frozen copy of ``attnpatterns/patterns.py`` at commit 229fedf (its docstring shortened): the
heuristic whose ``suggest`` spread the annotated set's sample over candidate types (``sample_maps.py``).
Kept so that re-running the sampler draws the same maps after the package's heuristic is re-tuned.
It never gives a label.
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
    tokens: Sequence[str] | None = None,
    n: int | None = None,
    attn: np.ndarray | None = None,
    stripe_share: float = 0.15,
) -> list[int]:
    """Indices of the columns that count as "vertical".

    With ``tokens``: the special tokens and the punctuation tokens. Without: columns 0 and n-1, plus
    (when ``attn`` is given) every column holding at least ``stripe_share`` of the map's mass.
    """
    if tokens is not None:
        return [i for i, t in enumerate(tokens) if str(t) in SPECIAL_TOKENS or is_punctuation(t)]
    if n is None:
        if attn is None:
            raise ValueError("give tokens, n or attn")
        n = attn.shape[-1]
    cols = {0, n - 1}
    if attn is not None:
        total = float(attn.sum())
        if total > 0:
            cols |= {int(j) for j in np.nonzero(attn.sum(axis=0) / total >= stripe_share)[0]}
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
    """Boolean (n, n) mask of the cells in ``columns`` off the +-1 diagonals (those count as diagonal)."""
    m = np.zeros((n, n), dtype=bool)
    cols = [c for c in columns if 0 <= c < n]
    m[:, cols] = True
    return m & ~diagonal_mask(n)


def vertical_score(attn, columns: Sequence[int]) -> float:
    """Fraction of the map's mass on ``columns`` (outside the +-1 diagonals)."""
    p = _normalised(_as_map(attn))
    return float(p[vertical_mask(p.shape[0], columns)].sum())


def diagonal_mask(n: int, offsets: Sequence[int] = (-1, 1)) -> np.ndarray:
    """Boolean (n, n) mask of the given diagonals (-1 = previous token, +1 = next token)."""
    m = np.zeros((n, n), dtype=bool)
    for k in offsets:
        m |= np.eye(n, k=k, dtype=bool)
    return m


def diagonal_score(attn) -> float:
    """Fraction of the map's mass on the +-1 diagonals (previous and next token), whatever the token."""
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


def block_scores(attn, boundary: int | None, exclude_columns: Sequence[int] = ()) -> tuple[float, float]:
    """(block, chance): the mass inside the segments outside the vertical columns and the +-1 band,
    and the fraction of those free cells that lie inside the segments. (0, 0) without a boundary."""
    p = _normalised(_as_map(attn))
    n = p.shape[0]
    if boundary is None or not (1 <= boundary < n - 2):
        return 0.0, 0.0
    free = ~diagonal_mask(n)
    free[:, list(exclude_columns)] = False
    inside = block_mask(n, boundary) & free
    n_free = int(free.sum())
    chance = float(inside.sum() / n_free) if n_free else 0.0
    return float(p[inside].sum()), chance


@dataclass
class Thresholds:
    """Decision rule of :func:`suggest` (fractions of the map's mass)."""

    vertical: float = 0.45  # vertical alone (excess over chance, see _excess)
    diagonal: float = 0.4  # diagonal alone (excess over chance)
    mixed_each: float = 0.15  # vertical+diagonal: each excess at least this ...
    mixed_sum: float = 0.5  # ... and together at least this
    block_share: float = 0.8  # block: of the mass off the stripes and band, this much inside the segments ...
    block_margin: float = 0.2  # ... and that share at least this far above chance
    block_min: float = 0.3  # ... and the in-segment mass at least this much of the whole


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
    cols = list(columns) if columns is not None else vertical_columns(tokens, n, a)
    if boundary is None:
        boundary = segment_boundary(tokens)
    v = vertical_score(a, cols)
    d = diagonal_score(a)
    b, chance = block_scores(a, boundary, exclude_columns=cols)
    v_chance = float(vertical_mask(n, cols).sum() / (n * n))
    d_chance = float(2 * (n - 1) / (n * n))
    return {
        "vertical": v,
        "diagonal": d,
        "vertical_excess": _excess(v, v_chance),
        "diagonal_excess": _excess(d, d_chance),
        "vertical_chance": v_chance,
        "diagonal_chance": d_chance,
        "self": self_score(a),
        "block": b,
        "block_chance": chance,
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
    rest = max(1e-12, 1.0 - s["vertical"] - s["diagonal"])
    share = s["block"] / rest
    if (
        s["block_chance"] > 0
        and share >= th.block_share
        and share - s["block_chance"] >= th.block_margin
        and s["block"] >= th.block_min
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
