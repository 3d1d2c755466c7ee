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


def test_paper_grid_for_another_model_scales_the_measured_minilm_cost_by_the_models_gpu_ratio(tmp_path, capsys):
    def bench(path, costs):
        path.write_text(json.dumps({"per_task": {t: {"t_train": c, "t_eval": c} for t, c in costs.items()}}))
        return path

    mini = bench(tmp_path / "m.json", {"CoLA": 0.007, "MRPC": 0.002, "RTE": 0.002})
    big = bench(tmp_path / "b.json", {"CoLA": 0.009, "MRPC": 0.006, "RTE": 0.005})
    ratio = gpu_costs.model_ratio(big, mini)
    assert ratio == {"MRPC": 3.0, "RTE": 2.5}  # CoLA, measured first, paid the device's start-up: left out
    gpu_costs.print_paper_grid(ratio, 0.002, 12, devices=(1, 100))
    out = capsys.readouterr().out
    per = 0.002 * 2.75
    work = 150 * 949_733 * per / 12 / 3600
    chain = 2 * 3 * 392_702 * per / 3600  # MNLI's fine-tuning, then one re-fine-tuning
    assert f"training {work:.1f} h of one GPU with 12 processes" in out and f"longest chain {chain:.1f} h" in out
    assert f"| hours | {work:.1f} | {chain:.1f} |" in out
