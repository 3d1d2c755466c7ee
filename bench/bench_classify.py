"""Speed of `attn classify` (all heads, n dev examples) against the bare forward pass with attentions.

Both run in this process on the same examples, the same model and the same batches; each rep runs the baseline
right before each kind. Figures: the ratio of the medians and the median of the per-rep ratios (each against the
baseline run just before it), of process CPU time (robust to other jobs on a shared machine) and of wall time.
Goal: ``--kind both`` at most 1.3x (and ``--kind raw`` at most 1.5x, the goal it was first held to).

    .venv/bin/python bench/bench_classify.py [--task MRPC] [--n 100] [--reps 3] [--kinds raw,both]

A kind with ``:torch`` (e.g. ``--kinds raw,both,both:torch``) runs the same with the pattern features computed as
tensor operations (``map_features_torch``) instead of the compiled loop, beside it in the same run. A kind with
``:full`` (e.g. ``both:full``) runs the whole forward pass, as the baseline does, instead of stopping after the last
attention weights the maps need (``attention_parts(..., upto=)``): what the early stop is worth, in the same run.

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
    ap.add_argument(
        "--classifier",
        action="append",
        default=[],
        metavar="KIND=PATH",
        help="use another classifier than the shipped one, e.g. raw=/tmp/m.safetensors",
    )
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("ATTN_GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "glue")),
    )
    args = ap.parse_args()

    import torch

    from attnpatterns.classifier import classify_heads, get_classifier
    from attnpatterns.classifier.heads import select_examples
    from attnpatterns.data import get_task, load_task
    from attnpatterns.models import load_model

    torch.set_num_threads(args.threads)
    bad = [c for c in args.classifier if "=" not in c or c.split("=", 1)[0] not in ("raw", "normed")]
    if bad:
        ap.error(f"--classifier {bad[0]!r}: use raw=PATH or normed=PATH")
    clfs = dict(c.split("=", 1) for c in args.classifier)
    model, tok = load_model(None)
    spec = get_task(args.task)
    kinds = args.kinds.split(",")
    min_tokens = max(get_classifier(k, clfs.get(k)).min_tokens for k in ("raw", "normed"))
    examples = select_examples(tok, load_task(spec, "dev", args.data_dir), args.n, min_tokens, 128, bool(spec.text_b))
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads

    def baseline() -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for s in range(0, len(examples), args.batch_size):
                chunk = examples[s : s + args.batch_size]
                enc = tok(
                    [e.text_a for e in chunk],
                    [e.text_b for e in chunk] if spec.text_b else None,
                    padding=True,
                    truncation=True,
                    max_length=128,
                    return_tensors="pt",
                )
                model(**enc, output_attentions=True)
        return time.perf_counter() - t, time.process_time() - c

    import attnpatterns.classifier.features as features_mod
    import attnpatterns.maps as maps_mod

    fused = features_mod.map_features
    parts = maps_mod.attention_parts

    def whole_forward(model, batch, normed=True, upto=None):  # ":full": the maps of the whole forward pass
        layers, norms = parts(model, batch, normed)
        return layers[:upto], (None if norms is None else norms[:, :upto])

    def ours(kind: str) -> tuple[float, float]:
        # "<kind>:torch": the same with the pattern features as tensor operations (map_features_torch), the
        # implementation before the compiled loop, for a side-by-side in one run; "<kind>:full": the whole forward
        kind, _, impl = kind.partition(":")
        features_mod.map_features = features_mod.map_features_torch if impl == "torch" else fused
        maps_mod.attention_parts = whole_forward if impl == "full" else parts
        t, c = time.perf_counter(), time.process_time()
        res = classify_heads(
            args.task,
            None,
            n=args.n,
            kind=kind,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
            model_and_tokenizer=(model, tok),
            classifiers=clfs,
        )
        dt, dc = time.perf_counter() - t, time.process_time() - c
        features_mod.map_features, maps_mod.attention_parts = fused, parts
        assert len(res.example_ids) == len(examples)
        return dt, dc

    # warm-up on a few examples: classifier load, tokenizer, allocator
    classify_heads(
        args.task, None, n=4, kind="both", data_dir=args.data_dir, model_and_tokenizer=(model, tok), classifiers=clfs
    )
    wall: dict[str, list[float]] = {"baseline": [], **{k: [] for k in kinds}}
    cpu: dict[str, list[float]] = {"baseline": [], **{k: [] for k in kinds}}
    # each rep runs the baseline right before each kind, so every ratio compares two neighbouring runs: on a shared
    # machine whose speed drifts within seconds, the per-rep ratios are steadier than the times
    per_rep: dict[str, dict[str, list[float]]] = {k: {"CPU time": [], "wall time": []} for k in kinds}
    for r in range(args.reps):
        for k in kinds:
            bw, bc = baseline()
            w, c = ours(k)
            wall["baseline"].append(bw), cpu["baseline"].append(bc), wall[k].append(w), cpu[k].append(c)
            per_rep[k]["CPU time"].append(c / bc)
            per_rep[k]["wall time"].append(w / bw)
        print(
            f"rep {r}: " + ", ".join(f"{k} {wall[k][-1]:.2f}s wall / {cpu[k][-1]:.2f}s cpu" for k in wall), flush=True
        )
    print(
        f"\n{args.task} dev, {len(examples)} examples (>= {min_tokens} tokens), all {L}x{H} heads, "
        f"{args.reps} interleaved reps, {args.threads} threads. CPU = process CPU time (robust to other jobs on a "
        f"shared machine)."
    )
    print(
        "| measurement | baseline (forward with attentions) | attn classify | ratio of medians | median of per-rep "
        "ratios (min-max) | goal |"
    )
    print("|---|---|---|---|---|---|")
    for k in kinds:
        maps = len(examples) * L * H * (2 if k.startswith("both") else 1)
        goal = "<= 1.3x" if k.startswith("both") else "<= 1.5x"
        for what, d in (("CPU time", cpu), ("wall time", wall)):
            b, o = statistics.median(d["baseline"]), statistics.median(d[k])
            rr = per_rep[k][what]
            print(
                f"| classify --kind {k} ({maps} maps), median {what} | {b * 1000:.0f} ms | {o * 1000:.0f} ms | "
                f"{o / b:.2f}x "
                f"| {statistics.median(rr):.2f}x ({min(rr):.2f}-{max(rr):.2f}) | {goal} |"
            )


if __name__ == "__main__":
    main()
