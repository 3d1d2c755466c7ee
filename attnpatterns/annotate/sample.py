"""Choose the maps to annotate: seeded examples of a task, a few (layer, head) per example, their maps.

Each item carries what an annotator and the dataset need: the 2-D map over the real tokens, the
tokens (to mark [CLS]/[SEP]), and its provenance (model, fine-tuned or not, task, example, layer,
head, kind). Ids come from :func:`attnpatterns.annotate.dataset.make_id` and are stable for a given
model state, task, example and head.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnpatterns.errors import UserError


@dataclass
class MapItem:
    map_id: str
    kind: str
    attn: np.ndarray  # (n, n) float32
    tokens: list[str]
    source_model: str
    model_state: str
    task: str
    example: str
    layer: int
    head: int
    extra: dict = field(default_factory=dict)

    def row(self, label: str, annotator: str) -> dict:
        """A dataset row (see :mod:`attnpatterns.annotate.dataset`)."""
        return dict(
            id=self.map_id,
            label=label,
            annotator=annotator,
            source_model=self.source_model,
            task=self.task,
            layer=self.layer,
            head=self.head,
            example=self.example,
            kind=self.kind,
            model_state=self.model_state,
            tokens=" ".join(self.tokens),
            **self.extra,
        )


@dataclass
class SampleConfig:
    kind: str
    task: str
    n: int
    model: str | None = None
    model_state: str | None = None  # None: "pre" for a hub id or the packaged model, "ft" for a fine-tuned folder
    split: str | None = None  # None: the task's dev split
    heads_per_example: int = 2
    min_tokens: int = 8
    max_tokens: int = 64  # longer examples are skipped, not truncated: dense maps are hard to label by eye
    max_length: int = 128
    seed: int = 0
    data_dir: str | os.PathLike | None = None
    device: str = "cpu"

    def __post_init__(self):
        from attnpatterns.annotate.dataset import check_kind

        check_kind(self.kind)
        if self.n <= 0:
            raise UserError(f"--n must be positive, got {self.n}.")
        if self.heads_per_example <= 0:
            raise UserError(f"--heads-per-example must be positive, got {self.heads_per_example}.")
        if self.min_tokens < 2 or self.min_tokens > self.max_tokens:
            raise UserError(
                f"--min-tokens must be between 2 and --max-tokens ({self.max_tokens}), got {self.min_tokens}."
            )
        if self.max_tokens > self.max_length:
            raise UserError(f"--max-tokens ({self.max_tokens}) must not exceed --max-length ({self.max_length}).")


def infer_model_state(model: str | None) -> str:
    """``ft`` for a local folder that holds a fine-tuned run (run.json or metrics.json beside it), else ``pre``."""
    if model is None:
        return "pre"
    p = Path(model).expanduser()
    if p.is_dir() and ((p / "run.json").is_file() or (p / "metrics.json").is_file() or "finetuned" in p.parts):
        return "ft"
    return "pre"


def sample_maps(cfg: SampleConfig, show_progress: bool = False) -> list[MapItem]:
    """``cfg.n`` maps of ``cfg.kind`` from seeded examples of ``cfg.task``, each (example, layer, head) once."""
    from attnpatterns.annotate.dataset import make_id
    from attnpatterns.data import get_task, load_task
    from attnpatterns.families import shape_of
    from attnpatterns.maps import extract_example_maps
    from attnpatterns.models import load_model, model_id

    spec = get_task(cfg.task)
    split = cfg.split or spec.dev_split
    model, tok = load_model(cfg.model, device=cfg.device)
    n_layers, n_heads, _ = shape_of(model)
    per = min(cfg.heads_per_example, n_layers * n_heads)
    n_examples = int(math.ceil(cfg.n / per))
    examples = load_task(spec, split, cfg.data_dir)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(examples))
    chosen = []
    for i in order:
        e = examples[int(i)]
        n_tok = len(tok(e.text_a, e.text_b, truncation=True, max_length=cfg.max_length)["input_ids"])
        if cfg.min_tokens <= n_tok <= cfg.max_tokens:
            chosen.append(e)
        if len(chosen) == n_examples:
            break
    if len(chosen) * n_layers * n_heads < cfg.n:
        raise UserError(
            f"{spec.name} {split} has only {len(chosen)} examples of {cfg.min_tokens} to {cfg.max_tokens} tokens, too "
            f"few "
            f"for {cfg.n} maps; lower --n or --min-tokens, or raise --max-tokens."
        )
    if len(chosen) < n_examples:  # few long examples: more heads per example
        per = int(math.ceil(cfg.n / len(chosen)))
    ex_maps = extract_example_maps(
        model,
        tok,
        chosen,
        bool(spec.text_b),
        normed=cfg.kind == "normed",
        max_length=cfg.max_length,
        show_progress=show_progress,
    )
    state = cfg.model_state or infer_model_state(cfg.model)
    source = model_id(cfg.model)
    items: list[MapItem] = []
    for em in ex_maps:
        arr = em.normed if cfg.kind == "normed" else em.raw  # (L, H, n, n)
        assert arr is not None  # extract_maps computes the normed maps by default
        picks = rng.choice(n_layers * n_heads, size=min(per, cfg.n - len(items)), replace=False)
        for flat in sorted(int(x) for x in picks):
            layer, head = divmod(flat, n_heads)
            items.append(
                MapItem(
                    map_id=make_id(spec.name, em.example_id, layer, head, model_state=state, kind=cfg.kind),
                    kind=cfg.kind,
                    attn=np.ascontiguousarray(arr[layer, head], dtype=np.float32),
                    tokens=list(em.tokens),
                    source_model=source,
                    model_state=state,
                    task=spec.name,
                    example=str(em.example_id),
                    layer=layer,
                    head=head,
                )
            )
        if len(items) >= cfg.n:
            break
    return items
