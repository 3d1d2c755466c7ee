"""bench/gpu_costs.py --cells: the committed GPU re-fine-tunings, per task and sharing, and the projection from them."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import gpu_costs  # noqa: E402


def test_cells_are_every_committed_gpu_refinetuning_with_its_sharing():
    cola = gpu_costs.gpu_cells("CoLA")
    full = [c for c in cola if c[1] == 12]
    paths = sorted((ROOT / "results/minilm-full/masks/CoLA").glob("seed_*/subnetworks/*/*/retrained.json"))
    on_gpu = [json.loads(p.read_text()) for p in paths]
    on_gpu = [r for r in on_gpu if str(r.get("device", "")).startswith("cuda")]
    assert len(full) == len(on_gpu) == 27
    # per training example: train_seconds over 3 epochs of the whole training set (8551 CoLA sentences)
    assert sorted(c[0] for c in full) == sorted(r["train_seconds"] / (3 * 8551) for r in on_gpu)
    assert all(c[2].startswith("cuda") for c in cola)
    # the CPU cells of STS-B are not GPU cells
    assert gpu_costs.gpu_cells("STS-B") == []


def test_print_cells_projects_the_five_task_grid_from_the_full_size_cells(capsys):
    gpu_costs.print_cells()
    out = capsys.readouterr().out
    full = [c[0] for t in ("CoLA", "RTE") for c in gpu_costs.gpu_cells(t) if c[1] == 12]
    minutes = 13_170_000 * statistics.median(full) / 12 / 60
    assert "| CoLA | 12 | 27 |" in out and "| MRPC | 8 | 27 |" in out
    line = next(line for line in out.splitlines() if line.startswith("five tasks"))
    assert abs(int(line.split(" min of one GPU")[0].rsplit(" ", 1)[1]) - minutes) <= 1
