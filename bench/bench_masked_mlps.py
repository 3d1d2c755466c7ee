"""Re-fine-tuning under an MLP mask: masked MLPs skipped vs computed and scaled by 0, in the same run.

The training step of ``attn finetune`` / ``attn subnetworks --settings retrained`` (forward under the gates, backward,
gradient clipping, fused AdamW) on the packaged MiniLM with SST-2 training batches of 32, under head and MLP masks of
the sizes the study re-fine-tunes: an s-pruning subnetwork (34 heads, 2 MLPs of 6) and a super-survivor one (5 heads,
1 MLP). Baseline: ``attnpatterns.gates.SKIP_MASKED_MLPS = False`` (every MLP computed, masked ones scaled by 0, as
before the skip). Both start from the same weights and draw the same dropout; their losses are checked bitwise equal
step by step before any time is reported. Interleaved repetitions; the best of each, as wall and CPU time.

    ATTN_GLUE_DIR=../shared/glue .venv/bin/python bench/bench_masked_mlps.py [--steps 6] [--reps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {  # name: (heads kept of 72, MLPs kept of 6)
    "all MLPs kept (overhead check)": (72, 6),
    "s-pruning size (34 heads, 2 MLPs)": (34, 2),
    "super-survivor size (5 heads, 1 MLP)": (5, 1),
}


def masks(heads: int, mlps: int, L: int = 6, H: int = 12):
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    hm = torch.zeros(L * H)
    hm[rng.choice(L * H, heads, replace=False)] = 1
    mm = torch.zeros(L)
    mm[rng.choice(L, mlps, replace=False)] = 1
    return hm.view(L, H), mm


def batches(n_steps: int, batch_size: int, tok):
    import torch

    from attnpatterns.batching import collate, encode
    from attnpatterns.data import load_task

    glue = os.environ.get("ATTN_GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "glue"))
    ex = load_task("SST-2", "train", glue, max_examples=n_steps * batch_size, seed=0)
    enc = encode(tok, ex)
    perm = torch.randperm(len(enc), generator=torch.Generator().manual_seed(0)).tolist()
    return [collate(enc, perm[i : i + batch_size]) for i in range(0, len(perm), batch_size)]


def train_steps(model0, data, hm, mm, skip: bool) -> tuple[float, float, list[float]]:
    """(wall s, CPU s, losses) of len(data) training steps from a copy of ``model0``."""
    import torch

    import attnpatterns.gates as gates

    gates.SKIP_MASKED_MLPS = skip
    model = copy.deepcopy(model0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    torch.manual_seed(1)
    losses = []
    t, c = time.perf_counter(), time.process_time()
    with gates.gated(model, hm, mm):
        for b in data:
            out = model(**b)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
    return time.perf_counter() - t, time.process_time() - c, losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="training steps per repetition")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions per case and setting")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import torch

    from attnpatterns.models import load_model

    torch.set_num_threads(args.threads)
    model0, tok = load_model(None, num_labels=2, eval_mode=False)
    data = batches(args.steps, args.batch_size, tok)
    train_steps(model0, data[:1], *masks(72, 6), skip=False)  # warm-up
    print("| case | computed and scaled by 0 (baseline) | skipped | speed-up (wall) | speed-up (CPU) |")
    print("|---|---|---|---|---|")
    for name, (heads, mlps) in CASES.items():
        hm, mm = masks(heads, mlps)
        best: dict[bool, list[float]] = {False: [1e9, 1e9], True: [1e9, 1e9]}
        ref_losses = None
        for _ in range(args.reps):
            for skip in (False, True):
                wall, cpu, losses = train_steps(model0, data, hm, mm, skip)
                if ref_losses is None:
                    ref_losses = losses
                elif losses != ref_losses:
                    raise SystemExit(f"{name}: losses differ between the settings: {ref_losses} vs {losses}")
                best[skip] = [min(best[skip][0], wall), min(best[skip][1], cpu)]
        per = {k: [v / args.steps * 1000 for v in best[k]] for k in best}
        print(
            f"| {name} | {per[False][0]:.0f} ms/step (CPU {per[False][1]:.0f}) | {per[True][0]:.0f} ms/step "
            f"(CPU {per[True][1]:.0f}) | {per[False][0] / per[True][0]:.2f}x | {per[False][1] / per[True][1]:.2f}x |"
        )


if __name__ == "__main__":
    main()
