"""MRPC pattern shares of the super-survivors and of all heads, with 95% intervals, under the shipped classifiers
(trained on the consensus labels) and under classifiers trained on each independent annotator's own labels.

Needs the fine-tuned MiniLM checkpoints of the pruning run (``runs/minilm/MRPC/seed_S/finetuned``, not in the
repository: ``results/minilm/run_pruning.sh`` or ``attn finetune --task MRPC --seeds S --out runs/minilm
--max-train-examples 1280 --lr 1e-4`` re-creates them) and the committed s-pruning masks
(``results/minilm/masks``). Resumable: finished units are kept.

    ATTN_GLUE_DIR=../shared/glue .venv/bin/python results/minilm/patterns_by_annotator.py [--task MRPC]

Writes ``results/minilm/patterns/<TASK>-<variant>.json`` (counts, shares and intervals of all heads, the
super-survivors and the other heads, per kind), ``<TASK>-super-survivors.json`` and ``patterns.md`` (MRPC) or
``patterns-<TASK>.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from attnpatterns.classifier.recipes import SHIPPED  # noqa: E402
from attnpatterns.run.layout import RunLayout  # noqa: E402

OUT = ROOT / "results" / "minilm" / "patterns"
RUN = ROOT / "runs" / "minilm"
LAYOUT = RunLayout(RUN)
WORK = ROOT / "runs" / "minilm-patterns"
CLF = ROOT / "runs" / "annotator-classifiers"
# the independent full passes of each kind, paired by position (agent-annotator-1 did both kinds): A-C under the first
# guidelines (round 1), D and E under the revised ones (round 3)
VARIANTS = {
    "consensus": {"raw": None, "normed": None},
    "annotator-A": {"raw": "agent-annotator-1", "normed": "agent-annotator-1"},
    "annotator-B": {"raw": "agent-annotator-2", "normed": "agent-annotator-4"},
    "annotator-C": {"raw": "agent-annotator-3", "normed": "agent-annotator-5"},
    "annotator-D": {"raw": "agent-annotator-12", "normed": "agent-annotator-14"},
    "annotator-E": {"raw": "agent-annotator-13", "normed": "agent-annotator-15"},
}
SEEDS = (1337, 42, 86, 71, 166)


def classifier_for(kind: str, name: str | None) -> Path | None:
    if name is None:
        return None
    path = CLF / f"pattern-cnn-{kind}-{name}.safetensors"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "classifier",
                "train",
                "--kind",
                kind,
                "--annotator",
                name,
                "--recipe",
                SHIPPED,
                "--seed",
                "0",
                "--threads",
                "1",
                "--out",
                str(path),
            ],
            check=True,
            cwd=ROOT,
        )
    return path


def fmt(share: float, lo: float, hi: float) -> str:
    return f"{100 * share:.1f} ({100 * lo:.1f}-{100 * hi:.1f})"


def main(argv=None) -> int:
    from attnpatterns.run.pipeline import classify_run_maps, write_distribution

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="MRPC")
    ap.add_argument("--n", type=int, default=100, help="dev examples per seed")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument(
        "--redo",
        default="",
        help="comma-separated variants to classify again (e.g. consensus after the shipped classifiers changed)",
    )
    args = ap.parse_args(argv)
    task = args.task
    redo = {v for v in args.redo.split(",") if v}
    unknown = redo - set(VARIANTS)
    if unknown:
        bad = ",".join(sorted(unknown))
        raise SystemExit(f"error: --redo {bad}: not a variant; choose from {', '.join(VARIANTS)}.")
    seeds = [s for s in SEEDS if (LAYOUT.seed(task, s).finetuned / "metrics.json").exists()]
    if not seeds:
        raise SystemExit(f"error: no fine-tuned {task} checkpoint under {RUN}; see this script's docstring.")
    OUT.mkdir(parents=True, exist_ok=True)
    sup = OUT / f"{task}-super-survivors.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "survivors",
            "--masks",
            str(ROOT / "results" / "minilm" / "masks"),
            "--task",
            task,
            "--out",
            str(sup),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    results = {}
    for variant, names in VARIANTS.items():
        clfs = {k: classifier_for(k, n) for k, n in names.items()}
        heads = []
        for s in seeds:
            out = RunLayout(WORK / variant).seed_dir(task, s)
            if variant in redo or not (out / "heads.json").exists():
                out.mkdir(parents=True, exist_ok=True)
                classify_run_maps(
                    LAYOUT.seed(task, s).finetuned,
                    task,
                    s,
                    out,
                    n_examples=args.n,
                    data_dir=args.data_dir,
                    classifiers={k: v for k, v in clfs.items() if v},
                    show_progress=False,
                )
            heads.append(out / "heads.json")
        d = write_distribution(heads, sup, OUT / f"{task}-{variant}.json", task)
        results[variant] = d
        print(variant, "done", flush=True)
    # a compact file: drop the per-head arrays from the written distributions
    for variant, d in results.items():
        for kind in ("raw", "normed"):
            d[kind].pop("per_head", None)
        d["labels_from"] = {k: (n or "consensus") for k, n in VARIANTS[variant].items()}
        (OUT / f"{task}-{variant}.json").write_text(json.dumps(d, indent=1))
        # the run folder's copy, read by the report (attn report --run runs/minilm)
        (LAYOUT.classify_dir(task) / "annotators").mkdir(parents=True, exist_ok=True)
        (LAYOUT.classify_dir(task) / "annotators" / f"{variant}.json").write_text(json.dumps(d, indent=1))
    types = results["consensus"]["types"]
    short = {"vertical": "V", "diagonal": "D", "vertical+diagonal": "VD", "block": "B", "heterogeneous": "H"}
    lines = [
        f"# {task}: pattern shares (%) of all heads and of the super-survivors, with 95% intervals",
        "",
        f"Fine-tuned MiniLM, seeds {', '.join(map(str, seeds))}, {results['consensus']['n_examples_per_seed']} dev "
        f"examples per seed, every head; super-survivors: {len(results['consensus']['super_heads'])} heads kept by "
        "s-pruning in every seed. Intervals: " + results["consensus"].get("interval", "") + ". Classifiers: the "
        f"{SHIPPED} recipe trained on the consensus labels (shipped) or on one annotator's own labels.",
        "",
    ]
    for kind in ("raw", "normed"):
        lines += [
            f"## {kind} maps",
            "",
            "| labels from | heads | " + " | ".join(short[t] for t in types) + " |",
            "|---|---|" + "---|" * len(types),
        ]
        for variant, d in results.items():
            who = d["labels_from"][kind]
            for g, name in (("all", "all 72"), ("super", "super-survivors")):
                k = d[kind][g]
                cells = [fmt(f, lo, hi) for f, lo, hi in zip(k["fractions"], k["ci_low"], k["ci_high"])]
                lines.append(f"| {who} | {name} | " + " | ".join(cells) + " |")
        lines.append("")
    # MRPC, the task the findings rest on, is patterns.md; the others patterns-<TASK>.md
    (OUT / ("patterns.md" if task == "MRPC" else f"patterns-{task}.md")).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
