"""Synthetic attention maps of each of the five pattern types, with known labels.

Used by the tests (the shipped models must classify them) and, optionally, as training
augmentation. A raw map is row-stochastic (rows are queries, columns keys, rows sum to 1);
a weight-normed map is a raw map whose columns are scaled by a positive per-token norm
(``alpha_ij * ||f(x_j)||``), as in Kobayashi et al. 2020.
"""

from __future__ import annotations

import numpy as np

KINDS = ("raw", "normed")


def _rows(weights: np.ndarray) -> np.ndarray:
    w = np.clip(weights, 0.0, None) + 1e-9
    return w / w.sum(axis=1, keepdims=True)


def _structure(label: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """The noise-free weights (n, n) of one pattern type; rows not yet normalised."""
    w: np.ndarray = np.zeros((n, n))
    idx = np.arange(n)
    if label in ("vertical", "vertical+diagonal"):
        # attention to [CLS], [SEP] and a punctuation/separator column or two
        cols = {0, n - 1}
        if n > 8 and rng.random() < 0.6:
            cols.add(int(rng.integers(2, n - 2)))
        weights = rng.uniform(0.5, 1.0, size=len(cols))
        if rng.random() < 0.5:  # often one column dominates
            weights[int(rng.integers(len(cols)))] *= rng.uniform(2.0, 6.0)
        for c, v in zip(sorted(cols), weights):
            w[:, c] += v
    if label in ("diagonal", "vertical+diagonal"):
        offsets = [int(rng.choice([-1, 1]))]
        if rng.random() < 0.4:
            offsets.append(-offsets[0])
        if rng.random() < 0.3:
            offsets.append(0)
        strength = 1.0 if label == "diagonal" else rng.uniform(0.6, 1.5) * w.sum(axis=1).mean()
        for o in offsets:
            j = np.clip(idx + o, 0, n - 1)
            w[idx, j] += strength * rng.uniform(0.7, 1.0, size=n)
    if label == "block":
        # a sentence pair: [CLS] A [SEP] B [SEP]; each segment attends within itself
        cut = int(rng.integers(max(2, n // 3), max(3, 2 * n // 3)))
        for lo, hi in ((0, cut), (cut, n)):
            w[lo:hi, lo:hi] = rng.uniform(0.3, 1.0, size=(hi - lo, hi - lo))
    if label == "heterogeneous":
        # no dominant column, diagonal or block: sparse, scattered attention
        alpha = rng.uniform(0.05, 0.3)
        w = rng.dirichlet(np.full(n, alpha), size=n)
    return w


def synthetic_map(
    label: str, n: int, rng: np.random.Generator | None = None, noise: float = 0.1, kind: str = "raw"
) -> np.ndarray:
    """One (n, n) float32 map of type ``label``; ``noise`` in [0, 1] mixes in random attention."""
    from attnpatterns.classifier.labels import LABELS

    if label not in LABELS:
        raise ValueError(f"unknown pattern {label!r}; one of {LABELS}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if n < 4:
        raise ValueError("n must be at least 4")
    rng = rng if rng is not None else np.random.default_rng(0)
    m = _rows(_structure(label, n, rng))
    if noise > 0:
        m = (1 - noise) * m + noise * rng.dirichlet(np.full(n, 1.0), size=n)
    m = _rows(m)
    if kind == "normed":
        norms = rng.lognormal(mean=1.0, sigma=0.3, size=n)  # ||f(x_j)|| per key token
        m = m * norms[None, :]
    return m.astype(np.float32)


def synthetic_set(
    per_class: int,
    kind: str = "raw",
    sizes: tuple[int, int] = (12, 100),
    noise: tuple[float, float] = (0.0, 0.25),
    seed: int = 0,
) -> tuple[list[np.ndarray], list[str]]:
    """``per_class`` maps of each type with random lengths and noise levels: (maps, labels)."""
    from attnpatterns.classifier.labels import LABELS

    rng = np.random.default_rng(seed)
    maps, labels = [], []
    for label in LABELS:
        for _ in range(per_class):
            n = int(rng.integers(sizes[0], sizes[1] + 1))
            maps.append(synthetic_map(label, n, rng, noise=float(rng.uniform(*noise)), kind=kind))
            labels.append(label)
    return maps, labels
