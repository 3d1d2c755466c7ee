"""Annotation of attention maps: rendering (render), the dataset format (dataset), the Label Studio
client (labelstudio) and the local Label Studio server (server)."""

from attnpatterns.annotate.dataset import (  # noqa: F401
    COLUMNS,
    KINDS,
    AnnotatedSet,
    UpsertResult,
    class_balance,
    load,
    load_or_empty,
    make_id,
    upsert,
)
from attnpatterns.annotate.render import plot_map, render_contact_sheet, render_map, special_positions  # noqa: F401

__all__ = [
    "COLUMNS",
    "KINDS",
    "AnnotatedSet",
    "UpsertResult",
    "class_balance",
    "load",
    "load_or_empty",
    "make_id",
    "upsert",
    "plot_map",
    "render_contact_sheet",
    "render_map",
    "special_positions",
]
