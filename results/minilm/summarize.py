"""Tabulate a pruning run folder (or its copy under results/minilm/masks) as Markdown and JSON.

    .venv/bin/python results/minilm/summarize.py results/minilm/masks --out results/minilm/summary

Per (task, seed): the fine-tuned dev score (full dev set), train examples and seconds; s-pruning (score of the
full model on the pruning dev subsample, threshold, kept heads/MLPs, iterations, seconds); m-pruning (kept
fraction, steps, seconds). Only finished stages are listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def collect(root: Path) -> list[dict]:
    from attnpatterns.run.layout import RunLayout, SeedLayout

    rows = []
    for task, seeds in RunLayout(root).tasks().items():
        for seed, seed_dir in seeds.items():
            sl = SeedLayout(seed_dir)
            row: dict = {"task": task, "seed": seed}
            m = sl.finetuned / "metrics.json"
            if m.is_file():
                d = json.loads(m.read_text())
                row.update(
                    ft_metric=d["main_metric"],
                    ft_score=d["score"],
                    train_examples=d["train_examples"],
                    ft_seconds=d["train_seconds"] + d.get("eval_seconds", 0.0),
                )
            s = sl.summary("structured")
            if s.is_file():
                d = json.loads(s.read_text())
                row.update(
                    s_dev=d["dev_examples"],
                    s_full=d["full_score"],
                    s_threshold=d["threshold"],
                    s_score=d["score"],
                    heads_kept=d["heads_kept"],
                    mlps_kept=d["mlps_kept"],
                    s_iterations=d["iterations"],
                    s_seconds=d["seconds"],
                    s_summation=d["importance_summation"],
                )
            g = sl.summary("magnitude")
            if g.is_file():
                d = json.loads(g.read_text())
                row.update(
                    m_full=d["full_score"],
                    m_score=d["score"],
                    m_kept_fraction=d["kept_fraction"],
                    m_steps=d["final_step"],
                    m_seconds=d["seconds"],
                )
            rows.append(row)
    return rows


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def to_markdown(rows: list[dict]) -> str:
    cols = [
        ("task", "task"),
        ("seed", "seed"),
        ("train_examples", "train ex."),
        ("ft_metric", "metric"),
        ("ft_score", "fine-tuned (full dev)"),
        ("ft_seconds", "fine-tune s"),
        ("s_dev", "pruning dev ex."),
        ("s_full", "s: full"),
        ("s_score", "s: kept score"),
        ("heads_kept", "heads kept"),
        ("mlps_kept", "MLPs kept"),
        ("s_iterations", "s: iters"),
        ("s_seconds", "s-prune s"),
        ("m_kept_fraction", "m: kept fraction"),
        ("m_steps", "m: steps"),
        ("m_score", "m: kept score"),
        ("m_seconds", "m-prune s"),
    ]
    out = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(fmt(r.get(k)) for k, _ in cols) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="A run folder (runs/minilm) or its copy (results/minilm/masks).")
    ap.add_argument("--out", type=Path, help="Write OUT.md and OUT.json.")
    args = ap.parse_args()
    rows = collect(args.root)
    md = to_markdown(rows)
    print(md, end="")
    if args.out:
        from attnpatterns.io import write_json, write_text

        write_text(args.out.with_suffix(".md"), md)
        write_json(args.out.with_suffix(".json"), rows)


if __name__ == "__main__":
    main()
