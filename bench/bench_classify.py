"""Speed of `attn classify` (all heads, n dev examples) against the bare forward pass with attentions.

Both run in this process on the same examples, the same model and the same batches, interleaved rep by rep;
the figure is the ratio of medians. Goal: at most 1.5x.

    .venv/bin/python bench/bench_classify.py [--task MRPC] [--n 100] [--reps 3] [--kinds raw,both]

The baseline tokenises each batch and runs the model with ``output_attentions=True`` (eager attention), nothing
else. ``classify`` is :func:`attnpatterns.classifier.classify_heads` with the model already loaded (as
``attn classify`` runs it after loading): example selection, the forward pass, the normed maps when asked for,
cutting to the real tokens, resizing to the CNN input and the CNN on every (example, head) map.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="MRPC")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--kinds", default="raw,both")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("ATTN_GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "glue")))
    args = ap.parse_args()

    import torch

    from attnpatterns.classifier import classify_heads, get_classifier
    from attnpatterns.classifier.heads import select_examples
    from attnpatterns.data import get_task, load_task
    from attnpatterns.models import load_model

    torch.set_num_threads(args.threads)
    model, tok = load_model(None)
    spec = get_task(args.task)
    kinds = args.kinds.split(",")
    min_tokens = max(get_classifier(k).min_tokens for k in ("raw", "normed"))
    examples = select_examples(tok, load_task(spec, "dev", args.data_dir), args.n, min_tokens, 128, bool(spec.text_b))
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads

    def baseline() -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, len(examples), args.batch_size):
                chunk = examples[s : s + args.batch_size]
                enc = tok([e.text_a for e in chunk], [e.text_b for e in chunk] if spec.text_b else None,
                          padding=True, truncation=True, max_length=128, return_tensors="pt")
                model(**enc, output_attentions=True)
        return time.perf_counter() - t

    def ours(kind: str) -> float:
        t = time.perf_counter()
        res = classify_heads(args.task, None, n=args.n, kind=kind, data_dir=args.data_dir, batch_size=args.batch_size,
                             model_and_tokenizer=(model, tok))
        dt = time.perf_counter() - t
        assert len(res.example_ids) == len(examples)
        return dt

    # warm-up on a few examples: classifier load, tokenizer, allocator
    classify_heads(args.task, None, n=4, kind="both", data_dir=args.data_dir, model_and_tokenizer=(model, tok))
    times: dict[str, list[float]] = {"baseline": [], **{k: [] for k in kinds}}
    for r in range(args.reps):
        times["baseline"].append(baseline())
        for k in kinds:
            times[k].append(ours(k))
        print(f"rep {r}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    base = statistics.median(times["baseline"])
    print(f"\n{args.task} dev, {len(examples)} examples (>= {min_tokens} tokens), all {L}x{H} heads, "
          f"{args.reps} interleaved reps, {args.threads} threads")
    print("| measurement | baseline (forward with attentions) | attn classify | ratio | goal |")
    print("|---|---|---|---|---|")
    for k in kinds:
        ms = statistics.median(times[k])
        print(f"| classify --kind {k}: {len(examples) * L * H * (2 if k == 'both' else 1)} maps | {base * 1000:.0f} ms | "
              f"{ms * 1000:.0f} ms | {ms / base:.2f}x | <= 1.5x |")


if __name__ == "__main__":
    main()
