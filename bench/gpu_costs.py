"""A cost table for planning a GPU run before a GPU is at hand: the CPU's measured per-example costs
(``bench/bench_sweep.py --json``) scaled by the one like-for-like GPU figure this project has, the re-fine-tunings
of the committed subnetwork table that ran on a lent H200 with 8 processes sharing it (``train_seconds`` and
``device`` of ``results/minilm/subnetworks/*/seed_*/subnetworks/*/*/retrained.json``).

    .venv/bin/python bench/bench_sweep.py --n 32 --json cpu.json
    .venv/bin/python bench/gpu_costs.py cpu.json bench/costs-h200-estimated.json
    attn sweep --plan --costs bench/costs-h200-estimated.json --workers 8 --profile paper --budget 600

The scale is per training example (3 epochs of 1280 MRPC examples, train_seconds only), applied to every stage of
every task: an estimate, replaced by ``bench/bench_sweep.py --device cuda --clock wall --share 8 --costs-out F`` on
the GPU itself.

For another model (the bert-base-sized one of ``bench/make_bert_base.py``), pass the CPU cost per MRPC training
example of the model the GPU figure was measured with (the packaged MiniLM) as ``--reference-cpu-ms``: the GPU/CPU
ratio is then MiniLM's, applied to the other model's CPU costs. A larger model uses the GPU better, so that
estimate errs on the slow side.

    .venv/bin/python bench/gpu_costs.py bert-cpu.json bench/costs-h200-bert-base-estimated.json --reference-cpu-ms 103.7

``--cells`` prints every committed GPU re-fine-tuning's cost per training example by task and sharing, and the
five-task grid projected from the full-size ones: ``.venv/bin/python bench/gpu_costs.py --cells``; with
``--model-gpu bench/sweep-h200-bert-base.json bench/sweep-h200.json`` also the paper's grid for bert-base, from the
GPU cost ratio of the two models.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_sweep import GLUE_SIZES, SEEDS, SUBNETS_PER_SEED, cost_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# the committed re-fine-tunings: results/minilm (MRPC, RTE, CoLA subsampled; 8 processes shared the H200) and
# results/minilm-full (RTE and CoLA on every training example; 12 processes)
CELL_FOLDERS = {"results/minilm/subnetworks": 8, "results/minilm-full/masks": 12}
EPOCHS = 3  # the study's, in every committed re-fine-tuning


def gpu_cells(task: str, folders: dict[str, int] | None = None, epochs: int = EPOCHS) -> list[tuple[float, int, str]]:
    """(train seconds per training example, processes sharing the device, device) of every committed GPU
    re-fine-tuning of ``task``."""
    out = []
    for folder, sharing in (folders or CELL_FOLDERS).items():
        for p in sorted((ROOT / folder / task).glob("seed_*/subnetworks/*/*/retrained.json")):
            r = json.loads(p.read_text())
            n = r.get("max_train_examples") or json.loads((p.parent / "retrained" / "metrics.json").read_text()).get(
                "train_examples"
            )
            if str(r.get("device", "")).startswith("cuda") and r.get("train_seconds") and n:
                out.append((r["train_seconds"] / (epochs * n), sharing, r["device"]))
    return out


def gpu_seconds_per_train_example(task: str = "MRPC", epochs: int = EPOCHS) -> tuple[float, int, str]:
    """Median train seconds per training example of the GPU re-fine-tunings of ``task`` with 8 processes sharing the
    device (results/minilm), their count and device."""
    cells = gpu_cells(task, {"results/minilm/subnetworks": 8}, epochs)
    if not cells:
        raise SystemExit(f"no GPU re-fine-tunings of {task} under results/minilm/subnetworks")
    return statistics.median(c[0] for c in cells), len(cells), cells[-1][2]


def grid_examples(tasks) -> int:
    """Training examples the paper's grid trains on for ``tasks``: every seed's fine-tuning and its re-fine-tuned
    subnetworks, each for the study's epochs over the whole training set."""
    return SEEDS * (1 + SUBNETS_PER_SEED) * EPOCHS * sum(GLUE_SIZES[t][0] for t in tasks)


def _per_task(path: Path) -> dict:
    try:
        return json.loads(path.read_text())["per_task"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{path}: not the --json output of bench/bench_sweep.py ({type(e).__name__}: {e})") from None


def model_ratio(other_json: Path, minilm_json: Path, skip_first: bool = True) -> dict[str, float]:
    """Per task: another model's GPU cost per training example over MiniLM's, from two ``bench_sweep.py --device
    cuda --json`` runs. The first task a run measured is left out (``skip_first``): it paid the device's start-up."""
    a, b = _per_task(other_json), _per_task(minilm_json)
    tasks = [t for t in a if t in b]
    if skip_first:
        tasks = tasks[1:]
    return {t: a[t]["t_train"] / b[t]["t_train"] for t in tasks}


def print_paper_grid(ratio: dict[str, float], per_example: float, k: int, devices: tuple[int, ...] = (1, 2, 4, 8)):
    """The paper's grid (9 tasks, 5 seeds, 10 fine-tunings per (task, seed), 3 epochs) for a model that costs
    ``ratio`` times MiniLM per training example, from MiniLM's measured GPU cost per example with ``k`` processes
    sharing: the training work in hours of one GPU, and the longest chain (MNLI's fine-tuning, then one
    re-fine-tuning: the sweep's subnetwork jobs are one seed's subnetwork each) that no number of GPUs shortens."""
    r = statistics.median(ratio.values())
    per = per_example * r  # seconds per training example of one process among k
    work = grid_examples(GLUE_SIZES) * per / k / 3600
    chain = 2 * EPOCHS * GLUE_SIZES["MNLI"][0] * per / 3600
    print(
        f"\npaper grid (9 tasks, 5 seeds), a model at {r:.2f}x MiniLM per training example "
        f"({', '.join(f'{t} {v:.2f}' for t, v in ratio.items())}): training {work:.1f} h of one GPU with {k} "
        f"processes; longest chain {chain:.1f} h (MNLI: its fine-tuning, then one re-fine-tuning)"
    )
    print("| GPUs | " + " | ".join(str(d) for d in devices) + " |")
    print("|---|" + "---|" * len(devices))
    print("| hours | " + " | ".join(f"{max(work / d, chain):.1f}" for d in devices) + " |")


def print_cells(other: Path | None = None, minilm: Path | None = None) -> None:
    """Per task and sharing: the committed GPU re-fine-tunings' cost per training example, and the five tasks' grid at
    the paper's settings (5 seeds, 10 fine-tunings per (task, seed), 3 epochs, every training example) projected from
    the full-size cells: its training work at their median per-example cost, divided among the processes that shared
    the device (perfect packing; evaluations, prunings and start-up excluded: a lower bound)."""
    print("| task | processes sharing the GPU | cells | ms per training example, median (range) |")
    print("|---|---|---|---|")
    full: list[float] = []
    for task in GLUE_SIZES:
        of_task = gpu_cells(task)
        for sharing in sorted(set(CELL_FOLDERS.values())):
            cells = [c[0] for c in of_task if c[1] == sharing]
            if cells:
                print(
                    f"| {task} | {sharing} | {len(cells)} | {statistics.median(cells) * 1000:.2f} "
                    f"({min(cells) * 1000:.2f}-{max(cells) * 1000:.2f}) |"
                )
                if sharing == max(CELL_FOLDERS.values()):
                    full += cells
    if full:
        k = max(CELL_FOLDERS.values())
        per = statistics.median(full)
        tasks = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE")
        examples = grid_examples(tasks)
        print(
            f"\nfive tasks ({', '.join(tasks)}), paper settings: {examples / 1e6:.2f} M training examples x "
            f"{per * 1000:.2f} ms / {k} processes = {examples * per / k / 60:.0f} min of one GPU for the training "
            f"alone (SST-2 {GLUE_SIZES['SST-2'][0] / sum(GLUE_SIZES[t][0] for t in tasks):.0%} of it)"
        )
        if other is not None and minilm is not None:
            print_paper_grid(model_ratio(other, minilm), per, k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cpu_json", type=Path, nargs="?", help="bench_sweep.py --json output (CPU)")
    ap.add_argument("out", type=Path, nargs="?", help="the cost table to write")
    ap.add_argument("--cells", action="store_true", help="print the committed GPU cells' costs and the projection")
    ap.add_argument(
        "--model-gpu",
        nargs=2,
        type=Path,
        metavar=("OTHER_JSON", "MINILM_JSON"),
        help="with --cells: bench_sweep.py --device cuda --json of another model and of MiniLM; projects the paper's "
        "grid for the other model",
    )
    ap.add_argument(
        "--reference-cpu-ms",
        type=float,
        default=None,
        help="CPU ms per MRPC training example of the model the GPU figure was measured with (default: cpu_json's)",
    )
    args = ap.parse_args()
    if args.model_gpu and not args.cells:
        ap.error("--model-gpu projects the paper's grid from the committed GPU cells: give it with --cells")
    if args.cells:
        print_cells(*(args.model_gpu or (None, None)))
        return
    if args.cpu_json is None or args.out is None:
        ap.error("give the CPU measurements (bench_sweep.py --json) and the cost table to write, or --cells")
    if args.reference_cpu_ms is not None and not args.reference_cpu_ms > 0:
        ap.error(f"--reference-cpu-ms must be a positive number of milliseconds, got {args.reference_cpu_ms}")
    cpu = json.loads(args.cpu_json.read_text())
    out = args.out
    g, n, device = gpu_seconds_per_train_example()
    given = args.reference_cpu_ms is not None
    c = args.reference_cpu_ms / 1000 if given else cpu["per_task"]["MRPC"]["t_train"]
    scale = g / c
    of = " for the packaged MiniLM" if given else ""
    rows = cpu["rows"]
    t_eval = {r[0]: cpu["per_task"].get(r[0], cpu["per_task"]["MRPC"])["t_eval"] for r in rows}
    table = cost_table(rows, t_eval, scale, 8, device, None)
    table["source"] = (
        f"estimate: CPU per-example costs (bench_sweep.py, {cpu['device']}, n={cpu['n']}) x {scale:.4f}, the median "
        f"GPU/CPU ratio per MRPC training example ({g * 1000:.2f} ms on {device} with 8 processes sharing, {n} "
        f"re-fine-tunings, against {c * 1000:.1f} ms on one CPU core{of})"
    )
    out.write_text(json.dumps(table, indent=2) + "\n")
    sub = table["seconds"]["subnet"]
    print(table["source"])
    print(
        "per job on the GPU: "
        + ", ".join(
            f"{t} pipeline {table['seconds']['pipeline'][t]:.0f} s / subnet {sub[t]:.0f} s"
            for t in ("CoLA", "SST-2", "MRPC", "STS-B", "RTE")
        )
    )
    print(f"wrote {out} ({SUBNETS_PER_SEED} subnetwork jobs per (task, seed))")


if __name__ == "__main__":
    main()
