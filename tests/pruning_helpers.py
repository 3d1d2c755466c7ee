"""Helpers for the fine-tuning and pruning tests: a tiny random BERT saved as a model folder, and a tiny
synthetic RTE-layout glue_data folder whose label is learnable from one word."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = "the a cat dog house tree river city music book green small quick happy".split()


def make_glue(root: Path, n_train: int = 48, n_dev: int = 24, seed: int = 0) -> Path:
    """``root/RTE/{train,dev}.tsv``: label 'entailment' iff the hypothesis contains 'yes'."""
    rng = random.Random(seed)
    (root / "RTE").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("dev", n_dev)):
        rows = ["index\tsentence1\tsentence2\tlabel"]
        for i in range(n):
            a = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
            pos = i % 2 == 0
            b = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) + (" yes" if pos else " no")
            rows.append(f"{i}\t{a}\t{b}\t{'entailment' if pos else 'not_entailment'}")
        (root / "RTE" / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def make_model_dir(root: Path, tokenizer, layers: int = 2, heads: int = 4, seed: int = 0) -> Path:
    """A tiny random BERT (no task head) saved with save_pretrained, plus the MiniLM tokenizer."""
    from attnpatterns.models import TinySpec, tiny_bert

    model = tiny_bert(TinySpec(layers=layers, heads=heads, hidden=32, intermediate=64), seed=seed)
    root.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root
