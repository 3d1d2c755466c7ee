"""Example maps for the report of the full-size study: the classify stage's ``examples.npz`` of one seed per task.

The committed results keep each task's pooled pattern distribution but no weights, so the report's example grid
needs one fine-tuned seed per task. For every task this classifies the first seed (1337, 42, 86, 71, 166) whose
fine-tuned model is in the run folder, into ``RUN/classify/TASK/seed_S/`` exactly as the classify stage does
(``heads.json``, ``examples.npz``, ``examples.json``), and leaves every task's ``distribution.json`` alone (the
classify stage would pool only the seeds given to it). A seed already classified is skipped. From the repository
root, after fine-tuning (``results/minilm-full/run_pruning.sh``; the same seed rebuilds the same model):

    .venv/bin/python results/minilm-full/examples.py            # then: bash results/minilm-full/collect.sh
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from attnpatterns.classifier.run_maps import classify_run_maps
from attnpatterns.run.layout import RunLayout
from attnpatterns.run.profiles import PROFILES

SEEDS = (1337, 42, 86, 71, 166)
TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/minilm-full"))
    ap.add_argument("--tasks", default=",".join(TASKS))
    args = ap.parse_args()
    p = PROFILES["paper"]
    layout = RunLayout(args.run)
    for task in args.tasks.split(","):
        seed = next((s for s in SEEDS if (layout.seed_dir(task, s) / "finetuned" / "config.json").is_file()), None)
        if seed is None:
            print(f"{task}: no fine-tuned model in {args.run} (fine-tune a seed first)")
            continue
        out = layout.classify_dir(task, seed)
        if (out / "examples.npz").is_file():
            print(f"{task}: seed {seed} already classified ({out})")
            continue
        classify_run_maps(
            layout.seed_dir(task, seed) / "finetuned",
            task,
            seed,
            out,
            n_examples=p.classify_examples,
            max_length=p.max_length,
            data_dir=os.environ.get("ATTN_GLUE_DIR"),
            examples_per_type=p.examples_per_type,
            show_progress=False,
        )
        print(f"{task}: seed {seed} classified into {out}")


if __name__ == "__main__":
    main()
