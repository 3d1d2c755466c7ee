"""Speed of map extraction, as ratios against baselines measured in the same run.

1. Raw + weight-normed extraction vs raw-only extraction: packaged MiniLM, batch 32, length 128.
   Goal: at most 1.25x.
2. Our normed-map formula (one (B, H, T) norm per layer) vs the materialising formula of the original code
   ((B, H, T, T, D) tensor, then a norm) on a bert-base-sized random model at length 128, both from the same
   forward states (attentions and value vectors, computed once): time and extra peak memory (each method in its
   own subprocess; peak RSS above the forward with attentions). The two results are checked equal first.
   Goal: at least 10x faster and 10x less peak memory.

Run: .venv/bin/python bench/bench_maps.py  [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _batch(tok, B, T):

    texts = [("the quick brown fox jumps over the lazy dog , " * 20)] * B
    enc = tok(texts, padding="max_length", truncation=True, max_length=T, return_tensors="pt")
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def bench_overhead(reps: int) -> dict:
    import torch

    from attnpatterns.maps import attention_maps
    from attnpatterns.models import load_model

    model, tok = load_model(None)
    batch = _batch(tok, 32, 128)
    attention_maps(model, batch, normed=True)  # warm-up
    t_raw, t_both = [], []
    for _ in range(reps):  # interleaved, so both see the same machine load
        t0 = time.perf_counter()
        attention_maps(model, batch, normed=False)
        t_raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        attention_maps(model, batch, normed=True)
        t_both.append(time.perf_counter() - t0)
    r, b = statistics.median(t_raw), statistics.median(t_both)
    return {"raw_only_s": r, "raw_and_normed_s": b, "ratio": b / r, "threads": torch.get_num_threads()}


def _child(method: str, B: int, T: int, reps: int) -> None:
    """Runs in a subprocess: prints JSON with time and extra peak RSS of one method."""
    import torch
    from transformers import BertConfig, BertModel

    from attnpatterns.families import get_layers, shape_of

    torch.manual_seed(0)
    cfg = BertConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        attn_implementation="eager",
    )
    model = BertModel(cfg).eval()
    batch = {
        "input_ids": torch.randint(1000, 2000, (B, T)),
        "attention_mask": torch.ones(B, T, dtype=torch.long),
        "token_type_ids": torch.zeros(B, T, dtype=torch.long),
    }
    with torch.no_grad():
        model(**batch, output_attentions=True)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB, after a plain forward with attentions

    L, H, d = shape_of(model)
    store = []
    hooks = [l.attention.self.value.register_forward_hook(lambda m, a, o: store.append(o)) for l in get_layers(model)]
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    for h in hooks:
        h.remove()
    attentions, values = out.attentions, store  # the same forward states for both formulas

    @torch.no_grad()
    def ours():  # the formula as attnpatterns.maps computes it: one (B, H, T) norm per layer via W_O^h Gram matrices
        from attnpatterns.maps import head_output_gram

        grams = head_output_gram(model)
        res = []
        for li in range(L):
            vh = values[li].view(B, T, H, d).transpose(1, 2)  # (B, H, T, d)
            norm = torch.einsum("bhtd,hde,bhte->bht", vh, grams[li], vh).clamp_min(0).sqrt()  # (B, H, T)
            res.append(attentions[li] * norm.unsqueeze(-2))  # (B, H, T, T)
        return torch.stack(res, 1)

    @torch.no_grad()
    def materialised():  # the original code's way: (B, H, T, T, D), then a norm
        res = []
        for li, layer in enumerate(get_layers(model)):
            vh = values[li].view(B, T, H, d)
            Wh = layer.attention.output.dense.weight.view(-1, H, d)
            f = torch.einsum("bthd,Dhd->bhtD", vh, Wh)  # (B, H, T, D)
            weighted = attentions[li].unsqueeze(-1) * f.unsqueeze(2)  # (B, H, T, T, D)
            res.append(weighted.norm(dim=-1))
            del weighted
        return torch.stack(res, 1)

    if method == "check":
        torch.testing.assert_close(ours(), materialised(), rtol=1e-4, atol=1e-6)
        print(json.dumps({"ok": True}))
        return

    fn = ours if method == "ours" else materialised
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"time_s": statistics.median(times), "extra_peak_mb": (peak - base_rss) / 1024}))


def bench_materialised(B: int, T: int, reps: int) -> dict:
    res = {}
    for method in ("check", "ours", "materialised"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", method, "--B", str(B), "--T", str(T), "--reps", str(reps)],
            capture_output=True,
            text=True,
            check=True,
        )
        res[method] = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["check"]["ok"]
    ours, mat = res["ours"], res["materialised"]
    return {
        "batch": B,
        "length": T,
        "ours": ours,
        "materialised": mat,
        "speedup": mat["time_s"] / ours["time_s"],
        "memory_ratio": mat["extra_peak_mb"] / max(ours["extra_peak_mb"], 1.0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--child")
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--T", type=int, default=128)
    a = ap.parse_args()
    if a.child:
        _child(a.child, a.B, a.T, a.reps)
        return
    o = bench_overhead(a.reps)
    print(
        f"MiniLM batch 32 x 128: raw only {o['raw_only_s'] * 1e3:.0f} ms, raw+normed "
        f"{o['raw_and_normed_s'] * 1e3:.0f} ms, "
        f"ratio {o['ratio']:.3f} (goal <= 1.25)"
    )
    m = bench_materialised(a.B, a.T, max(2, a.reps // 2))
    print(
        f"bert-base-sized, batch {m['batch']} x {m['length']}: ours {m['ours']['time_s'] * 1e3:.0f} ms / "
        f"{m['ours']['extra_peak_mb']:.0f} MB extra peak; materialised {m['materialised']['time_s'] * 1e3:.0f} ms / "
        f"{m['materialised']['extra_peak_mb']:.0f} MB; speedup {m['speedup']:.1f}x (goal >= 10), "
        f"memory {m['memory_ratio']:.1f}x less (goal >= 10)"
    )


if __name__ == "__main__":
    main()
