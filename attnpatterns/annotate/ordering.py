"""The order in which maps reach annotators (``attn annotate push --order``).

- ``sequential``: the order the maps were sampled in (example by example);
- ``random``: shuffled with the push's seed;
- ``uncertain``: the maps the classifier is least sure of first. A map's certainty is its **top-class
  probability** (the score Label Studio shows beside a prediction); lower comes first, ties broken by map id.
  With a per-type quota ``k``, the first maps are the ``k`` least certain of each predicted type, taken in
  turns (vertical, diagonal, vertical+diagonal, block, heterogeneous, then again), so that a type the
  classifier rarely predicts still reaches the annotators early; the rest follow by certainty.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.patterns import PATTERN_VALUES

ORDERS = ("sequential", "random", "uncertain")


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise UserError(f"--order '{order}' is not known; use one of {', '.join(ORDERS)}.")
    return order


def uncertain_first(ids: Sequence[str], labels: Sequence[str], scores: Sequence[float], per_type: int = 0) -> list[int]:
    """Indices of the maps, least certain first (the rule of this module's docstring)."""
    if not len(ids) == len(labels) == len(scores):
        raise ValueError("ids, labels and scores differ in length")
    if per_type < 0:
        raise UserError(f"--per-type must be 0 or positive, got {per_type}.")
    by_score = sorted(range(len(ids)), key=lambda i: (float(scores[i]), str(ids[i])))
    if per_type == 0:
        return by_score
    queues = {lab: [i for i in by_score if labels[i] == lab] for lab in PATTERN_VALUES}
    first: list[int] = []
    for _ in range(per_type):
        for lab in PATTERN_VALUES:
            if queues[lab]:
                first.append(queues[lab].pop(0))
    taken = set(first)
    return first + [i for i in by_score if i not in taken]


def order_indices(
    order: str,
    n: int,
    *,
    seed: int = 0,
    ids: Sequence[str] = (),
    labels: Sequence[str] = (),
    scores: Sequence[float] = (),
    per_type: int = 0,
) -> list[int]:
    """The push order of ``n`` sampled maps."""
    check_order(order)
    if order == "sequential":
        return list(range(n))
    if order == "random":
        return [int(i) for i in np.random.default_rng(seed).permutation(n)]
    return uncertain_first(ids, labels, scores, per_type)
