"""The label set of the classifier: the five pattern types, in the order of the CNN's outputs."""

from __future__ import annotations

from attnpatterns.patterns import PATTERN_VALUES

LABELS: tuple[str, ...] = PATTERN_VALUES
LABEL_INDEX: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
KINDS: tuple[str, ...] = ("raw", "normed")


def check_kind(kind: str) -> str:
    from attnpatterns.errors import UserError

    if kind not in KINDS:
        raise UserError(f"unknown map kind '{kind}'; use raw or normed.")
    return kind
