"""Determinism: the same seed on the same machine gives the same masks, scores and tables.

A tiny pipeline (tiny random BERT, tiny synthetic MRPC, two seeds: fine-tuning, s- and m-pruning, super-survivors,
good/random/bad subnetworks without re-fine-tuning) runs twice into two folders; every file must be equal, JSON
files without their wall-clock timing fields (``TIMING_KEYS`` of tests/test_crash_safety.py), and the results
table built from each folder must be identical. (The kill test compares separate processes too.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_crash_safety import comparable  # noqa: E402
from test_pipeline import TINY, write_glue_mrpc, write_tiny_model  # noqa: E402

STAGES = ["finetune", "structured", "magnitude", "survivors", "subnetworks"]


@pytest.mark.slow
def test_same_seed_same_masks_scores_and_tables(tmp_path):
    import numpy as np
    import torch

    from attnpatterns.report.table_format import to_csv, to_markdown
    from attnpatterns.report.tables import run_table
    from attnpatterns.run.pipeline import RunConfig, run_pipeline

    glue = write_glue_mrpc(tmp_path / "glue")
    model = write_tiny_model(tmp_path / "tiny-bert")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outs = []
        for name in ("run-det-a", "run-det-b"):
            cfg = RunConfig(
                out=tmp_path / name,
                profile="quick",
                model=str(model),
                tasks=["MRPC"],
                seeds=[1, 2],
                data_dir=str(glue),
                show_progress=False,
                stages=STAGES,
                overrides=TINY | {"retrain": False},
            )
            run_pipeline(cfg)
            outs.append(cfg.out)
    finally:
        torch.set_num_threads(threads)

    a, b = outs
    # the masks, the pruning curves' scores and the super-survivors, named explicitly ...
    for seed in (1, 2):
        sd = Path("MRPC") / f"seed_{seed}"
        for f in ("structured/head_mask.npy", "structured/mlp_mask.npy", "structured/head_importance.npy"):
            assert np.array_equal(np.load(a / sd / f), np.load(b / sd / f)), f
        for f in (
            "structured/mask.json",
            "structured/summary.json",
            "magnitude/summary.json",
            "magnitude/mask.safetensors",
            "finetuned/model.safetensors",
        ):
            assert (a / sd / f).is_file(), f
    assert (a / "MRPC" / "super" / "super-survivors.json").read_bytes() == (
        b / "MRPC" / "super" / "super-survivors.json"
    ).read_bytes()
    # ... and every other file (scores of every subnetwork, metrics), timing fields aside
    fa, timed = comparable(a)
    fb, _ = comparable(b)
    assert sorted(fa) == sorted(fb)
    differ = [k for k in fa if fa[k] != fb[k]]
    assert not differ, f"differ between two runs with the same seed: {differ[:20]}"
    # the results table
    ta, tb = run_table(a), run_table(b)

    def same(x: str, y: str) -> bool:  # the table's note names its own run folder
        return x.replace(str(a), "<RUN>") == y.replace(str(b), "<RUN>")

    assert same(to_markdown(ta), to_markdown(tb)) and same(to_csv(ta), to_csv(tb))
    assert "MRPC" in to_markdown(ta)
    print(
        f"\ndeterminism: {len(fa)} files and the results table identical over two runs "
        f"(timing fields left out of {len(timed)} files)"
    )
