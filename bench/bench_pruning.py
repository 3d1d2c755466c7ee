"""Pruning speed, each figure against a baseline measured in the same run.

1. One importance pass (gate gradients only, ``torch.autograd.grad``) vs a plain forward + ``loss.backward()``
   over the same batches, on the packaged MiniLM with MRPC dev inputs. Goal: ratio <= 1.3.
2. One magnitude step (one ``torch.kthvalue`` over a concatenated vector of every prunable weight) vs
   ``torch.nn.utils.prune.global_unstructured`` (L1Unstructured) over the same parameters, on a randomly
   initialised bert-base-sized BERT (12 layers, hidden 768, intermediate 3072). Goal: speed-up >= 2.

Timings: the best of ``--reps`` repetitions (least disturbed by other load on a shared machine), as wall time
and as this process's CPU time (less sensitive to other jobs on a shared machine).

    .venv/bin/python bench/bench_pruning.py [--reps 3] [--threads 2] [--batches 4] [--batch-size 16] [--only magnitude]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_of(fn, reps: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process) over ``reps`` calls."""
    walls, cpus = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def bench_importance(reps: int, n_batches: int, batch_size: int) -> dict:
    import torch

    from attnpatterns.data import load_task
    from attnpatterns.data.loaders import Example
    from attnpatterns.finetune import collate, encode, length_batches
    from attnpatterns.models import load_model
    from attnpatterns.prune.importance import compute_importance

    torch.manual_seed(0)
    model, tok = load_model(None, num_labels=2)
    glue = os.environ.get("ATTN_GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "glue"))
    try:
        ex = load_task("MRPC", "dev", glue, max_examples=n_batches * batch_size, seed=0)
    except Exception:  # no GLUE data: synthetic pairs of a realistic length
        ex = [
            Example(str(i), "the quick brown fox jumps over the lazy dog " * 3, "a fox jumped " * 4, i % 2)
            for i in range(n_batches * batch_size)
        ]
    enc = encode(tok, ex)
    batches = [collate(enc, idx) for idx in length_batches(enc, batch_size)]
    model.eval()

    def plain():
        for b in batches:
            model(**b).loss.backward()
        model.zero_grad(set_to_none=True)

    def importance():
        compute_importance(model, batches)

    plain()  # warm-up
    importance()
    (t_plain, c_plain), (t_imp, c_imp) = best_of(plain, reps), best_of(importance, reps)
    return {
        "plain_fwd_bwd_s": t_plain,
        "importance_s": t_imp,
        "ratio": t_imp / t_plain,
        "plain_cpu_s": c_plain,
        "importance_cpu_s": c_imp,
        "cpu_ratio": c_imp / c_plain,
        "batches": len(batches),
        "batch_size": batch_size,
    }


def bench_magnitude(reps: int) -> dict:
    import torch
    import torch.nn.utils.prune as tprune
    from transformers import BertConfig, BertForSequenceClassification

    from attnpatterns.families import family_of, get_layers, get_submodule
    from attnpatterns.prune.magnitude import count_kept, full_masks, magnitude_step, prunable_parameters

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=2))  # bert-base sized, random weights
    model.eval()
    weights = {n: p.detach() for n, p in prunable_parameters(model).items()}
    masks = full_masks(weights)
    total = count_kept(masks)[1]
    n_remove = total - int(round(total * 0.9))

    ours_kept = []

    def ours():
        ours_kept.append(count_kept(magnitude_step(weights, masks, 1))[0])

    fam = family_of(model)
    pairs_names = []
    for li, layer in enumerate(get_layers(model)):
        for path in fam.prunable_linears():
            pairs_names.append((li, path, "weight"))
            if path != fam.mlp_out:
                pairs_names.append((li, path, "bias"))

    base_kept = []
    t_base, c_base = [], []
    for _ in range(reps):
        m = copy.deepcopy(model)
        layers = get_layers(m)
        params = [(get_submodule(layers[li], path), name) for li, path, name in pairs_names]
        t, c = time.perf_counter(), time.process_time()
        tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=n_remove)
        t_base.append(time.perf_counter() - t)
        c_base.append(time.process_time() - c)
        base_kept.append(int(sum(int(getattr(mod, name + "_mask").sum()) for mod, name in params)))
        del m, layers, params
    t_ours, c_ours = best_of(ours, reps)
    return {
        "prunable_weights": total,
        "removed": n_remove,
        "global_unstructured_s": min(t_base),
        "ours_s": t_ours,
        "speedup": min(t_base) / t_ours,
        "global_unstructured_cpu_s": min(c_base),
        "ours_cpu_s": c_ours,
        "cpu_speedup": min(c_base) / c_ours,
        "kept_ours": ours_kept[0],
        "kept_baseline": base_kept[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--only", choices=["importance", "magnitude"], help="Run one of the two benchmarks.")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.only != "magnitude":
        imp = bench_importance(args.reps, args.batches, args.batch_size)
        print(
            f"importance pass: {imp['importance_s']:.3f} s vs plain forward+backward {imp['plain_fwd_bwd_s']:.3f} s "
            f"over {imp['batches']} batches of {imp['batch_size']} (MiniLM): ratio {imp['ratio']:.2f} (goal <= 1.3); "
            f"CPU time {imp['importance_cpu_s']:.2f} s vs {imp['plain_cpu_s']:.2f} s: ratio {imp['cpu_ratio']:.2f}"
        )
    if args.only == "importance":
        return
    mag = bench_magnitude(args.reps)
    print(
        f"magnitude step over {mag['prunable_weights']:,} prunable weights (bert-base size, remove "
        f"{mag['removed']:,}): "
        f"ours {mag['ours_s']:.3f} s vs torch.nn.utils.prune.global_unstructured {mag['global_unstructured_s']:.3f} s: "
        f"speed-up {mag['speedup']:.1f}x (goal >= 2); CPU time {mag['ours_cpu_s']:.2f} s vs "
        f"{mag['global_unstructured_cpu_s']:.2f} s: {mag['cpu_speedup']:.1f}x; kept {mag['kept_ours']:,} vs "
        f"{mag['kept_baseline']:,}"
    )


if __name__ == "__main__":
    main()
