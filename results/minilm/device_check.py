"""CPU (fp32, 1 thread) against GPU (H200, bf16 autocast in training) on the same seeds, masks and data.

Compares (1) the five MRPC seed-1337 re-fine-tunings that were first run on the CPU (device_check/cpu_retrained/)
with their GPU reruns in the table (subnetworks/), and (2) the nine fine-tunings of the table's seeds (CPU,
masks/<task>/seed_S/finetuned/metrics.json) with the same fine-tunings on the GPU (device_check/gpu_finetuned/).
Writes device_check.md beside this file. Run from the repository root: python results/minilm/device_check.py
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from attnpatterns.run.layout import RunLayout  # noqa: E402


def score(path: Path) -> float:
    return float(json.loads(path.read_text())["score"])


def main() -> None:
    rows, diffs = [], []
    for cpu in sorted((HERE / "device_check" / "cpu_retrained").rglob("retrained.json")):
        rel = cpu.relative_to(HERE / "device_check" / "cpu_retrained")
        gpu = HERE / "subnetworks" / rel
        r = json.loads(cpu.read_text())
        c, g = score(cpu), score(gpu)
        diffs.append(g - c)
        rows.append(
            f"| {r['task']} | {r['seed']} | {r['method']} {r['subnet']} retrained | {c:.4f} | {g:.4f} | {g - c:+.4f} |"
        )
    for gpu in sorted((HERE / "device_check" / "gpu_finetuned").rglob("metrics.json")):
        task, seed = gpu.parts[-4], int(gpu.parts[-3].split("_")[1])
        cpu = RunLayout(HERE / "masks").seed(task, seed).finetuned / "metrics.json"
        c, g = score(cpu), score(gpu)
        diffs.append(g - c)
        rows.append(f"| {task} | {seed} | full model fine-tuned | {c:.4f} | {g:.4f} | {g - c:+.4f} |")
    mean_abs = sum(abs(d) for d in diffs) / len(diffs)
    text = "\n".join(
        [
            "# The same runs on CPU and GPU",
            "",
            "Dev score (CoLA MCC, MRPC and RTE accuracy) of one run on the CPU (fp32) and on an NVIDIA H200 (bf16 "
            "autocast in the training forward pass, fp32 evaluation), same seed, mask and training subsample. Made by "
            "`python results/minilm/device_check.py`.",
            "",
            "| task | seed | run | CPU | GPU | GPU - CPU |",
            "|---|---:|---|---:|---:|---:|",
            *rows,
            "",
            f"{len(diffs)} pairs: mean |GPU - CPU| = {mean_abs:.4f}, largest {max(diffs, key=abs):+.4f}. On one "
            f"device the same "
            "seed and mask give the same score (the table's identical good/random/bad cells where pruning kept the "
            "whole "
            "model were computed in separate processes).",
            "",
        ]
    )
    (HERE / "device_check.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
