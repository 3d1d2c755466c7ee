"""The report's sections on attention patterns: the pattern distributions of all heads and of the super-survivors,
their sensitivity to the annotator a classifier was trained on, and example maps of each type."""

from __future__ import annotations

import logging

import numpy as np

from attnpatterns.report.context import CLASSIFY_DIR, KINDS, METHODS, REPORT_DIR, ReportContext, iter_files, read_record  # noqa: F401
from attnpatterns.report.html import Paragraph, Section, Table
from attnpatterns.report.sections_pruning import frame_table  # noqa: F401
from attnpatterns.run.layout import RunLayout

log = logging.getLogger("attnpatterns")


def load_distributions(ctx: ReportContext) -> dict[str, dict]:
    out = {}
    for task in ctx.tasks:
        p = RunLayout(ctx.run_dir).classify_dir(task) / "distribution.json"
        if p.is_file():
            out[task] = read_record(p)
    return out


def section_patterns(ctx: ReportContext) -> Section:
    from attnpatterns.report.distributions import chi_square
    from attnpatterns.report.plots import stacked_bars

    s = Section("patterns", "Pattern distributions: super-survivors vs all heads")
    dists = load_distributions(ctx)
    for task in ctx.tasks:
        if task not in dists:
            s.note_missing(
                f"{task}: no {CLASSIFY_DIR}/{task}/distribution.json (the classify stage has not run for "
                f"{task}; run 'attn run --stages classify,report --out {ctx.run_dir}')."
            )
    if not dists:
        return s
    s.add(
        Paragraph(
            "Every map of every head on the classify stage's dev examples, for each seed's fine-tuned model, "
            "classified "
            "by the shipped pattern classifiers (raw and normed); counts pooled over examples and seeds and shown as "
            "percentages. Super-survivors are the "
            "heads s-pruning kept in every seed. The chi-square test (scipy chi2_contingency, no continuity "
            "correction) "
            "compares the super-survivors with the other heads (the distribution of all heads is their mixture); "
            "maps of one head are not independent draws, so read p as a description of the counts. In brackets, where "
            "the "
            "classify stage recorded every map's type: the 95% interval of each share, a percentile bootstrap that "
            "resamples the seeds and then the dev examples within each seed (2000 draws)."
        )
    )
    for kind in KINDS:
        rows, groups, fr = [], [], []
        types: list[str] | None = None
        for task, d in dists.items():
            if kind not in d:
                s.note_missing(f"{task}: distribution.json has no {kind} maps.")
                continue
            types = d["types"]
            k = d[kind]
            test = chi_square(k["super"]["counts"], k["other"]["counts"], types)
            p_txt = f"{test.p:.3g}" if test.ok else f"n/a ({test.reason})"
            chi_txt = f"{test.chi2:.1f} (dof {test.dof})" if test.ok else "n/a"
            n_super = len(d.get("super_heads", []))
            for grp, label in (
                ("all", f"all heads ({d.get('num_heads_total', '?')})"),
                ("super", f"super-survivors ({n_super})"),
            ):
                c = np.asarray(k[grp]["counts"], dtype=float)
                f = c / c.sum() if c.sum() > 0 else np.zeros_like(c)
                lo, hi = k[grp].get("ci_low"), k[grp].get("ci_high")
                cells = [
                    f"{100 * v:.1f}%" if lo is None else f"{100 * v:.1f}% ({100 * a:.1f}-{100 * b:.1f})"
                    for v, a, b in zip(f, lo or f, hi or f)
                ]
                rows.append([task, label, int(c.sum())] + cells + ([chi_txt, p_txt] if grp == "super" else ["", ""]))
                groups.append(f"{task} {'all' if grp == 'all' else 'super'}")
                fr.append(f)
        if not rows or types is None:
            continue
        s.add(
            Table(
                ["task", "heads", "maps"] + list(types) + ["chi2 super vs other", "p"],
                rows,
                caption=f"{kind} maps: share of each pattern type",
            )
        )
        fig, _ = stacked_bars(np.array(fr), groups, types, title=f"Pattern types of {kind} maps")
        s.add(
            ctx.figure(fig, f"patterns-{kind}", f"{kind} maps: pattern types of all heads and of the super-survivors")
        )
    _annotator_sensitivity(ctx, s)
    return s


def _annotator_sensitivity(ctx: ReportContext, s: Section) -> None:
    """The super-survivor vs all-heads contrast under classifiers trained on each annotator's own labels
    (``classify/TASK/annotators/<variant>.json``, written by ``results/minilm/patterns_by_annotator.py``)."""
    for task in ctx.tasks:
        files = sorted((RunLayout(ctx.run_dir).classify_dir(task) / "annotators").glob("*.json"))
        if not files:
            continue
        variants = [(p.stem, read_record(p)) for p in files]
        variants.sort(key=lambda v: (v[0] != "consensus", v[0]))
        types = variants[0][1]["types"]
        rows = []
        for kind in KINDS:
            for name, d in variants:
                if kind not in d or "ci_low" not in d[kind]["all"]:
                    continue
                who = (d.get("labels_from") or {}).get(kind, name)
                a, sup = d[kind]["all"], d[kind]["super"]
                cells = []
                for t in range(len(types)):
                    if not sum(sup["counts"]):
                        cells.append(f"{100 * a['fractions'][t]:.0f} / no super-survivors")
                        continue
                    ci = f" ({100 * sup['ci_low'][t]:.0f}-{100 * sup['ci_high'][t]:.0f})" if "ci_low" in sup else ""
                    cells.append(f"{100 * a['fractions'][t]:.0f} / {100 * sup['fractions'][t]:.0f}{ci}")
                rows.append([kind, who] + cells)
        if rows:
            s.add(
                Paragraph(
                    f"{task}: the same maps classified by classifiers trained on the consensus labels (shipped) and on "
                    "each independent annotator's own labels. Each cell: share of all heads / share of the "
                    "super-survivors "
                    "(95% interval of the latter, bootstrap over seeds and examples), in percent. A finding that holds "
                    "under every annotator's classifier does not rest on one reading of the maps."
                )
            )
            s.add(
                Table(
                    ["kind", "labels from"] + list(types),
                    rows,
                    caption=f"{task}: all heads / super-survivors under each annotator's classifier",
                )
            )


def section_examples(ctx: ReportContext, examples_per_type: int = 6) -> Section:
    from attnpatterns.patterns import PATTERN_VALUES
    from attnpatterns.report.plots import example_grid

    s = Section("examples", "Example maps per predicted pattern type")
    s.add(
        Paragraph(
            "Maps the classifier put in each class (one row per type; each map on its own colour scale, rows "
            "= queries, columns = keys), for a reader to check the classifier by eye."
        )
    )
    for kind in KINDS:
        grid: dict[str, list] = {t: [] for t in PATTERN_VALUES}
        for task, seeds in ctx.tasks.items():
            for seed in seeds:
                d = RunLayout(ctx.run_dir).classify_dir(task, seed)
                if not (d / "examples.npz").is_file():
                    continue
                captions = read_record(d / "examples.json") if (d / "examples.json").is_file() else {}
                with np.load(d / "examples.npz", allow_pickle=False) as z:
                    for key in z.files:
                        parts = key.split("__")
                        if len(parts) == 3 and parts[0] == kind and parts[1] in grid:
                            grid[parts[1]].append((int(parts[2]), task, seed, z[key], str(captions.get(key, ""))))
        if not any(grid.values()):
            s.note_missing(
                f"no {kind} example maps ({CLASSIFY_DIR}/TASK/seed_S/examples.npz; the classify stage makes them)."
            )
            continue
        cells = {
            t: [(f"{task} s{seed} {cap}".strip(), m) for _, task, seed, m, cap in balanced(v)] for t, v in grid.items()
        }
        fig, _ = example_grid(cells, ncols=examples_per_type)
        s.add(ctx.figure(fig, f"examples-{kind}", f"{kind} maps: examples of each predicted type"))
    return s


def balanced(items: list[tuple]) -> list[tuple]:
    """Example maps ``(index, task, seed, map, caption)`` in turns over the tasks (each task's own in order of
    index, then seed), so that the first columns of a row come from every task that has a map of that type."""
    by_task: dict[str, list[tuple]] = {}
    for it in sorted(items, key=lambda x: (x[0], x[2])):
        by_task.setdefault(it[1], []).append(it)
    queues = [by_task[t] for t in sorted(by_task)]
    out: list[tuple] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out += [q[i] for q in queues if i < len(q)]
    return out
