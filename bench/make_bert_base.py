"""A bert-base-sized model with random weights (12 layers x 12 heads, hidden 768, intermediate 3072) and the MiniLM
tokenizer (the same uncased WordPiece vocabulary as bert-base-uncased), for timing the paper's model offline:

    .venv/bin/python bench/make_bert_base.py /tmp/bert-base-random
    ATTN_GLUE_DIR=../shared/glue .venv/bin/python bench/bench_sweep.py --model /tmp/bert-base-random --n 16
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attnpatterns.models import TinySpec, load_tokenizer, tiny_bert  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bert-base-random")
    spec = TinySpec(layers=12, heads=12, hidden=768, intermediate=3072, max_position=512)
    model = tiny_bert(spec)  # the encoder only: each task puts its own head on it, as on a pre-trained model
    model.save_pretrained(out)
    load_tokenizer(None).save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: {n / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()
