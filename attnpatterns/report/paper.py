"""A run beside the study's bert-base numbers, one table per finding (``attn paper``).

Reads the run folder (``TASK/seed_S/structured/``, ``TASK/seed_S/subnetworks/``, ``classify/TASK/distribution.json``)
and the authors' folder (``../shared/reference/bert-experiments``: ``masks/heads/TASK/seed_S/*.npy`` and
``evaluate_masked/<setting>/baseline/results.json``):

1. stability of s-pruning: heads kept, Fleiss' kappa over seeds, super-survivors;
2. good / random / bad subnetworks, pruned and re-fine-tuned;
3. pattern shares of the super-survivors and of all heads (ours only: the authors' files hold no pattern counts;
   the table says so).

A cell that should be there and is not (a task, seed or stage the run has not finished) is an error naming every
missing cell, unless ``allow_missing``: then it reads "missing" and the list follows the tables.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from attnpatterns.errors import UserError
from attnpatterns.run.layout import RunLayout

MISSING = "missing"
STUDY_SEEDS = 5


@dataclass
class Comparison:
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class PaperComparison:
    run: Path
    reference: Path
    tasks: list[str]
    tables: list[Comparison]
    missing: list[str]


def _kappa(k: float) -> str:
    return "undefined" if math.isnan(k) else f"{k:.2f}"


def _stability(run: Path, reference: Path, tasks: list[str], missing: list[str]) -> Comparison:
    from attnpatterns.prune.masks import discover_masks
    from attnpatterns.report.table_format import fmt
    from attnpatterns.stats import compute_stats

    authors = compute_stats(discover_masks(reference / "masks" / "heads", tasks=tasks))
    rows = []
    for t in tasks:
        a = authors.tasks[t].heads
        ours = None
        try:
            table = discover_masks(run, tasks=[t], skip_unfinished=True)
            if len(table.get(t, {})) >= 2:
                ours = compute_stats(table).tasks[t]
        except UserError:
            ours = None
        if ours is None or ours.heads is None:
            missing.append(f"stability {t}: fewer than two finished s-pruning seeds in {run}")
            rows.append([t, MISSING, MISSING, MISSING, MISSING, MISSING, MISSING, MISSING])
            continue
        h = ours.heads
        if len(ours.seeds) < STUDY_SEEDS:
            missing.append(f"stability {t}: {len(ours.seeds)} of {STUDY_SEEDS} seeds")
        assert a is not None
        rows.append(
            [
                t,
                str(len(ours.seeds)),
                f"{fmt(h.mean_kept, h.std_kept, 1)} / {h.total}",
                f"{fmt(a.mean_kept, a.std_kept, 1)} / {a.total}",
                _kappa(h.fleiss_kappa),
                _kappa(a.fleiss_kappa),
                f"{h.super_survivors} ({100 * h.super_survivors / h.total:.0f}%)",
                f"{a.super_survivors} ({100 * a.super_survivors / a.total:.0f}%)",
            ]
        )
    return Comparison(
        "Finding 1: stability of s-pruning over seeds (heads)",
        [
            "task",
            "seeds (ours)",
            "heads kept (ours)",
            "heads kept (bert-base)",
            "Fleiss κ (ours)",
            "Fleiss κ (bert-base)",
            "super-survivors (ours)",
            "super-survivors (bert-base)",
        ],
        rows,
        [
            "bert-base: 12 x 12 heads, 5 seeds (the authors' masks); ours: the run's model. Shares make the two "
            "models' super-survivor counts comparable."
        ],
    )


def _subnetworks(run: Path, reference: Path, tasks: list[str], missing: list[str]) -> Comparison:
    from attnpatterns.report import table_format as F
    from attnpatterns.report import tables as T
    from attnpatterns.report.reference_table import collect_reference

    authors = collect_reference(reference / "evaluate_masked")
    try:
        ours = T.run_table(run)
    except UserError:
        ours = None
    cols = ["setting"]
    for t in tasks:
        cols += [f"{t} (ours)", f"{t} (bert-base)"]
    rows = []
    for key in T.row_keys():
        row = [T.row_label(key)]
        for t in tasks:
            c = F.cell(ours.cells, key, t) if ours is not None else None
            if c is None:
                missing.append(f"subnetworks {t}: {T.row_label(key)}")
                row.append(MISSING)
            else:
                n = int(c["n"])
                row.append(F.fmt(float(c["mean"]), None if n <= 1 else float(c["std"]), 3) + f" (n={n})")
            a = F.cell(authors.cells, key, t)
            row.append(MISSING if a is None else F.fmt(float(a["mean"]), float(a["std"]), 3))
            if a is None:
                missing.append(f"subnetworks {t}: the authors' {T.row_label(key)}")
        rows.append(row)
    notes = [
        "Dev scores, mean ± population std over seeds; n = seeds of our cell (the authors: 5). Metrics: "
        + ", ".join(f"{t} {T.metric_key(t)}" for t in tasks)
        + "."
    ]
    if ours is not None:
        notes += ours.notes
    return Comparison("Finding 2: good, random and bad subnetworks, pruned and re-fine-tuned", cols, rows, notes)


def _patterns(run: Path, tasks: list[str], missing: list[str]) -> Comparison:
    from attnpatterns.io import read_json

    rows = []
    types: list[str] = []
    for t in tasks:
        p = RunLayout(run).classify_dir(t) / "distribution.json"
        if not p.is_file():
            missing.append(f"patterns {t}: no {p}")
            rows.append([t, "raw, normed", MISSING, MISSING, "not in the authors' files"])
            continue
        d = read_json(p)
        types = list(d["types"])
        for kind in ("raw", "normed"):
            k = d.get(kind)
            if not k:
                missing.append(f"patterns {t} {kind}: not in {p}")
                continue
            for i, ty in enumerate(types):
                cells = []
                for grp in ("super", "all"):
                    g = k[grp]
                    tot = sum(g["counts"])
                    if not tot:
                        cells.append("no maps")
                        continue
                    f = g["counts"][i] / tot
                    ci = f" ({100 * g['ci_low'][i]:.1f}-{100 * g['ci_high'][i]:.1f})" if "ci_low" in g else ""
                    cells.append(f"{100 * f:.1f}%{ci}")
                rows.append([t, f"{kind} {ty}", cells[0], cells[1], "not in the authors' files"])
    return Comparison(
        "Finding 3: pattern shares of the super-survivors and of all heads",
        ["task", "maps, type", "super-survivors (ours)", "all heads (ours)", "bert-base"],
        rows,
        [
            "Shares of the classify stage's maps with 95% bootstrap intervals (over seeds, then examples). The "
            "authors' reference files hold masks and scores, not pattern counts; the study's bert-base reading "
            "(super-survivors hold more block and vertical+diagonal maps) is in the paper's figures only."
        ],
    )


def compare_with_paper(
    run: str | os.PathLike,
    reference: str | os.PathLike,
    tasks: Iterable[str] | None = None,
    allow_missing: bool = False,
) -> PaperComparison:
    """The three tables; UserError listing every missing cell unless ``allow_missing``."""
    from attnpatterns.data import get_task

    run, reference = Path(run), Path(reference)
    if not run.is_dir():
        raise UserError(f"{run}: no such run folder; pass the folder of 'attn run' (or results/minilm-full/run).")
    if not (reference / "masks" / "heads").is_dir() or not (reference / "evaluate_masked").is_dir():
        raise UserError(
            f"{reference}: not the authors' folder (no masks/heads/ and evaluate_masked/); "
            "pass ../shared/reference/bert-experiments."
        )
    names = [get_task(t).name for t in tasks] if tasks else list(RunLayout(run).tasks())
    if not names:
        raise UserError(f"{run}: no TASK/seed_S folders; pass the folder of 'attn run'.")
    missing: list[str] = []
    tabs = [
        _stability(run, reference, names, missing),
        _subnetworks(run, reference, names, missing),
        _patterns(run, names, missing),
    ]
    if missing and not allow_missing:
        raise UserError(
            f"{len(missing)} cell(s) of the comparison are missing, first: {missing[0]}; finish those stages, or "
            "pass --allow-missing to write the tables with 'missing' cells."
        )
    return PaperComparison(run, reference, names, tabs, missing)


def to_markdown(c: PaperComparison) -> str:
    out = [
        f"# {', '.join(c.tasks)}: this run beside the study (bert-base)",
        "",
        f"Run: `{c.run}`; the authors' files: `{c.reference}`.",
        "",
    ]
    for t in c.tables:
        out += [f"## {t.title}", "", "| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
        out += ["| " + " | ".join(r) + " |" for r in t.rows]
        out += [""] + [f"{n}" for n in t.notes] + [""]
    if c.missing:
        out += ["## Missing cells", ""] + [f"- {m}" for m in c.missing] + [""]
    return "\n".join(out)
