"""Per-(task, seed) stage costs of the study on this machine, and the paper-scale grid they imply.

Measured (not assumed), with the same library code as ``attn run`` / ``attn sweep``:

A. per task with data here: fine-tune the model on ``--n`` training examples (1 epoch) and evaluate ``--n`` dev
   examples: seconds per training example (forward + backward + AdamW step, dynamic padding: the task's own
   lengths) and per dev example (forward only).
B. one whole (task, seed) of the sweep on ``--task`` at that size (``attn sweep`` jobs on the local executor,
   structured and magnitude subnetworks): seconds of fine-tuning, s-pruning, m-pruning and of each subnetwork job,
   plus the number of s-pruning iterations and m-pruning steps.

Then the full grid at the paper's settings (3 epochs, full training and dev sets, 5 seeds, 9 tasks, structured,
magnitude and super subnetworks, each pruned and re-fine-tuned) is extrapolated linearly in examples:

    fine-tune           3 x N_train x t_train + N_dev x t_eval
    s-pruning           iterations x N_dev x (cost per dev example and iteration, measured in B, scaled by t_eval)
    m-pruning           steps x N_dev x (the same, from B)
    subnetworks         9 x (a fine-tune) + 9 x N_dev x t_eval      (3 methods x 3 subnetworks, both settings)

The ratio printed against the fine-tuning baseline is the share of each stage in a (task, seed).

C. with ``--share K``: measurement A of ``--task`` again in K processes at once (as K sweep jobs sharing one GPU);
   the slowdown of each process against A is the factor a job's cost takes when K jobs share the device.
   ``--costs-out F`` writes the cost table of ``attn sweep --plan --costs F --workers K``
   (attnpatterns/sweep/device_plan.py):
   per task, the seconds of a pipeline job (fine-tune + both prunings) and of a subnetwork job at the paper's sizes
   (``--max-train-examples`` to plan a subsampled run), times the slowdown.

Usage: ATTN_GLUE_DIR=../shared/glue .venv/bin/python bench/bench_sweep.py [--n 64] [--threads 1] [--device cuda]
[--model M] [--share 8 --costs-out costs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# GLUE train / dev sizes (the public GLUE release; dev = dev_matched for MNLI), for the tasks not at hand
GLUE_SIZES = {
    "CoLA": (8551, 1043),
    "SST-2": (67349, 872),
    "MRPC": (3668, 408),
    "STS-B": (5749, 1500),
    "QQP": (363846, 40430),
    "MNLI": (392702, 9815),
    "QNLI": (104743, 5463),
    "RTE": (2490, 277),
    "WNLI": (635, 71),
}
SEEDS = 5
SUBNETS_PER_SEED = 9  # (structured, magnitude, super) x (good, random, bad)


def measure_task(task: str, n: int, device: str, out: Path, model: str | None = None) -> dict | None:
    from attnpatterns.data import load_task
    from attnpatterns.errors import UserError
    from attnpatterns.finetune import FinetuneConfig, finetune
    from attnpatterns.io import read_json

    try:
        load_task(task, "train", None, max_examples=1)
    except UserError:
        return None
    c = FinetuneConfig(
        task=task, seed=1, model=model, epochs=1, max_train_examples=n, max_dev_examples=n, device=device
    )
    w0, c0 = time.perf_counter(), time.process_time()
    r = finetune(c, out / task, show_progress=False)
    busy = (time.process_time() - c0) / (time.perf_counter() - w0)  # CPU seconds per wall second of this call
    m = read_json(out / task / "metrics.json")
    return {
        "t_train": m["train_seconds"] / m["train_examples"],
        "t_eval": m["eval_seconds"] / m["dev_examples"],
        "busy": busy,
        "train_examples": m["train_examples"],
        "dev_examples": m["dev_examples"],
        "score": r.score,
    }


def measure_pipeline(task: str, n: int, device: str, out: Path, threads: int | None, model: str | None = None) -> dict:
    from attnpatterns.io import read_json
    from attnpatterns.sweep.driver import SweepConfig, run_sweep

    cfg = SweepConfig(
        out=out,
        tasks=[task],
        seeds=[1],
        profile="paper",
        model=model,
        device=device,
        analysis=False,
        threads=threads,
        overrides={
            "epochs": 1,
            "max_train_examples": n,
            "dev_examples": n,
            "subnetwork_methods": ("structured", "magnitude"),
        },
    )
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_sweep(cfg, "local", show_progress=False)
    wall = time.perf_counter() - t0
    busy = (time.process_time() - c0) / wall
    if not res.ok:
        raise SystemExit(f"the sweep failed: {res.ids('failed')}")
    st = {
        s: read_json(out / ".stages" / s / f"{task}__seed_1.json")["seconds"]
        for s in ("finetune", "structured", "magnitude")
    }
    sd = out / task / "seed_1"
    s_sum, m_sum = read_json(sd / "structured" / "summary.json"), read_json(sd / "magnitude" / "summary.json")
    subnet = [read_json(j.marker(out))["seconds"] for j in res.jobs if j.kind == "subnet"]
    return {
        "stages": st,
        "s_iterations": s_sum["iterations"],
        "m_steps": m_sum["final_step"] + 1,
        "dev_examples": s_sum["dev_examples"],
        "subnet_jobs": len(subnet),
        "subnet_seconds_mean": sum(subnet) / len(subnet),
        "sweep_wall": wall,
        "busy": busy,
    }


def warm_up(task: str, device: str, out: Path, model: str | None) -> None:
    """On an accelerator, one short fine-tuning first, not measured: the process's first steps there pay for the
    device's context, kernel loading and the allocator (on the H200: CoLA, measured first, came out at 7.3 ms per
    training example against 1.7-2.2 ms for the tasks after it)."""
    if device != "cpu":
        measure_task(task, 8, device, out, model)


def _measure_in_child(args: tuple) -> dict | None:
    task, n, device, out, model, threads = args
    import torch

    torch.set_num_threads(threads)
    warm_up(task, device, Path(out) / "warm-up", model)
    return measure_task(task, n, device, Path(out), model)


def measure_shared(task: str, n: int, device: str, out: Path, model: str | None, threads: int, k: int) -> list[dict]:
    """Measurement A of ``task`` in ``k`` spawned processes at once."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=k, mp_context=mp.get_context("spawn")) as pool:
        jobs = [(task, n, device, str(out / f"share_{i}"), model, threads) for i in range(k)]
        return [r for r in pool.map(_measure_in_child, jobs) if r is not None]


CLASSIFY_OVER_FORWARD = 2.15  # attn classify --kind both over the bare forward pass (bench/RESULTS.md, bench_classify)
CLASSIFY_EXAMPLES = 100  # dev examples per (task, seed) whose maps are classified (the paper profile)


def cost_table(rows, t_eval: dict, slowdown: float, slots: int, device: str, max_train: int | None) -> dict:
    """The device plan's cost table (attnpatterns/sweep/device_plan.py) from the extrapolated rows; ``t_eval``: seconds
    per dev example of each task."""
    pipeline, subnet = {}, {}
    for task, ntr, ndev, src, ft, sp, mp_, sub, _ in rows:
        if max_train is not None and ntr > max_train:
            scale = max_train / ntr
            ft, sub = ft * scale, sub * scale  # training dominates both; the dev part is small
        pipeline[task] = round((ft + sp + mp_) * slowdown, 2)
        subnet[task] = round(sub / SUBNETS_PER_SEED * slowdown, 2)
    return {
        "device": device,
        "slots": slots,
        "slowdown": round(slowdown, 3),
        "source": "bench/bench_sweep.py: measured per-example costs extrapolated to the paper's sizes",
        "seconds": {
            "pipeline": pipeline,
            "subnet": subnet,
            "survivors": 1.0,
            "classify": {
                t: round(CLASSIFY_EXAMPLES * t_eval[t] * CLASSIFY_OVER_FORWARD * slowdown, 2) for t in pipeline
            },
            "distribution": 2.0,
            "report": 60.0,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--n",
        type=int,
        default=64,
        help="training and dev examples per measurement (on a GPU take 1024 or more: at 64, two optimiser steps, "
        "fixed per-run costs dominate)",
    )
    ap.add_argument("--task", default="MRPC", help="task of the whole-(task, seed) measurement B")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=None, help="hub id or folder (default: the packaged MiniLM)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the cost of one core, one worker)")
    ap.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: wall time x (CPU time / wall time) of each measurement, i.e. what one idle core takes "
        "with --threads 1 (a shared machine stretches wall time, not CPU time); wall: as measured",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the measurements and the estimate here")
    ap.add_argument("--share", type=int, default=1, help="C: measure --task in this many processes at once")
    ap.add_argument("--costs-out", type=Path, default=None, help="write the cost table of attn sweep --plan here")
    ap.add_argument(
        "--max-train-examples", type=int, default=None, help="plan a run subsampled to this many training examples"
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        tmp = Path(tmp)
        per_task = {}
        warm_up(args.task, args.device, tmp / "warm-up", args.model)
        for task in GLUE_SIZES:
            t0 = time.perf_counter()
            r = measure_task(task, args.n, args.device, tmp / "ft", args.model)
            if r is not None:
                per_task[task] = r
                print(
                    f"A {task:6s} wall: t_train {r['t_train'] * 1000:7.1f} ms/example  t_eval "
                    f"{r['t_eval'] * 1000:6.1f} "
                    f"ms/example  CPU/wall {r['busy']:.2f}  ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
        pipe = measure_pipeline(args.task, args.n, args.device, tmp / "sweep", args.threads, args.model)
        slowdown = 1.0
        if args.share > 1:
            shared = measure_shared(args.task, args.n, args.device, tmp / "share", args.model, args.threads, args.share)
            alone = per_task[args.task]["t_train"]
            slowdown = max(1.0, sum(r["t_train"] for r in shared) / len(shared) / alone)
            print(
                f"C {args.task} in {args.share} processes at once: t_train "
                + ", ".join(f"{r['t_train'] * 1000:.1f}" for r in shared)
                + f" ms/example against {alone * 1000:.1f} alone: slowdown {slowdown:.2f}x per process, "
                f"throughput {args.share / slowdown:.2f}x",
                flush=True,
            )
    if args.clock == "cpu":  # the idle-core equivalent of each wall-clock figure (one thread: CPU time = busy time)
        for r in per_task.values():
            r["t_train"] *= min(1.0, r["busy"] / args.threads)
            r["t_eval"] *= min(1.0, r["busy"] / args.threads)
        f = min(1.0, pipe["busy"] / args.threads)
        pipe["stages"] = {k: v * f for k, v in pipe["stages"].items()}
        pipe["subnet_seconds_mean"] *= f
    print(
        f"clock: {args.clock}; share of wall time on CPU per thread: "
        + ", ".join(f"{k} {v['busy'] / args.threads:.2f}" for k, v in per_task.items())
        + f", sweep {pipe['busy'] / args.threads:.2f}",
        flush=True,
    )
    st = pipe["stages"]
    ref = per_task[args.task]
    nd = pipe["dev_examples"]
    # per dev example and iteration, relative to this task's evaluation cost
    s_rel = st["structured"] / (pipe["s_iterations"] * nd) / ref["t_eval"]
    m_rel = st["magnitude"] / (pipe["m_steps"] * nd) / ref["t_eval"]
    print(
        f"B {args.task} at n={args.n}: fine-tune {st['finetune']:.1f} s (baseline 1.00x), s-pruning "
        f"{st['structured']:.1f} s ({st['structured'] / st['finetune']:.2f}x, {pipe['s_iterations']} iterations), "
        f"m-pruning {st['magnitude']:.1f} s ({st['magnitude'] / st['finetune']:.2f}x, {pipe['m_steps']} steps), "
        f"subnetwork job {pipe['subnet_seconds_mean']:.1f} s ({pipe['subnet_seconds_mean'] / st['finetune']:.2f}x) "
        f"x {pipe['subnet_jobs']}; one s-pruning iteration = {s_rel:.1f} dev evaluations, one m-pruning step = "
        f"{m_rel:.1f}",
        flush=True,
    )

    # tasks without data here: pair tasks take the mean per-example cost of the measured pair tasks
    from attnpatterns.data import get_task

    pair = [v for k, v in per_task.items() if get_task(k).text_b]
    single = [v for k, v in per_task.items() if not get_task(k).text_b]

    def cost(task: str) -> tuple[dict, str]:
        if task in per_task:
            return per_task[task], "measured"
        pool = pair if get_task(task).text_b else single
        return {
            "t_train": sum(p["t_train"] for p in pool) / len(pool),
            "t_eval": sum(p["t_eval"] for p in pool) / len(pool),
        }, "mean of measured " + ("pair" if get_task(task).text_b else "single-sentence") + " tasks"

    rows, total, longest = [], 0.0, 0.0
    for task, (ntr, ndev) in GLUE_SIZES.items():
        c, src = cost(task)
        ft = 3 * ntr * c["t_train"] + ndev * c["t_eval"]
        sp = pipe["s_iterations"] * ndev * s_rel * c["t_eval"]
        mp = pipe["m_steps"] * ndev * m_rel * c["t_eval"]
        sub = SUBNETS_PER_SEED * (ft + ndev * c["t_eval"])
        per_seed = ft + sp + mp + sub
        total += SEEDS * per_seed
        # the longest chain of jobs: fine-tune -> both prunings -> one re-fine-tuning
        longest = max(longest, ft + sp + mp + ft + ndev * c["t_eval"])
        rows.append((task, ntr, ndev, src, ft, sp, mp, sub, per_seed))
    print(
        "\n| task | train | dev | per-example cost | fine-tune | s-pruning | m-pruning | 9 subnetworks | per (task, "
        "seed) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for task, ntr, ndev, src, ft, sp, mp, sub, ps in rows:
        print(
            f"| {task} | {ntr} | {ndev} | {src} | {ft / 3600:.1f} h | {sp / 3600:.2f} h | {mp / 3600:.2f} h | "
            f"{sub / 3600:.1f} h | {ps / 3600:.1f} h |"
        )
    print(
        f"\nfull grid (9 tasks x {SEEDS} seeds, 10 fine-tunings per (task, seed)) on one worker like this one: "
        f"{total / 3600:.0f} h = {total / 86400:.1f} days; longest job chain {longest / 3600:.1f} h "
        f"(the floor with unlimited workers); N workers: max(total / N, chain). Load average at start: {load:.1f}."
    )
    if args.costs_out:
        t_eval = {task: cost(task)[0]["t_eval"] for task in GLUE_SIZES}
        table = cost_table(rows, t_eval, slowdown, args.share, args.device, args.max_train_examples)
        args.costs_out.write_text(json.dumps(table, indent=2))
        print(f"wrote {args.costs_out}: attn sweep --plan --costs {args.costs_out} --workers {args.share}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "n": args.n,
                    "device": args.device,
                    "threads": args.threads,
                    "load": load,
                    "per_task": per_task,
                    "pipeline": pipe,
                    "s_rel": s_rel,
                    "m_rel": m_rel,
                    "clock": args.clock,
                    "rows": rows,
                    "total_seconds": total,
                    "chain_seconds": longest,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
