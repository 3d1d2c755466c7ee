"""The report's sections on fine-tuning and pruning: fine-tuned scores, head survival, importance per iteration,
shared heads between tasks, and the subnetworks table."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from attnpatterns.report.context import CLASSIFY_DIR, KINDS, METHODS, REPORT_DIR, ReportContext, iter_files, read_record  # noqa: F401
from attnpatterns.report.html import Paragraph, Section, Table
from attnpatterns.report.run_settings import majority_score
from attnpatterns.run.layout import SeedLayout

log = logging.getLogger("attnpatterns")


def section_finetune(ctx: ReportContext) -> Section:
    s = Section("finetune", "Fine-tuned models")
    rows = []
    for task, seeds in ctx.tasks.items():
        for seed, sdir in seeds.items():
            p = sdir / "finetuned" / "metrics.json"
            if not p.is_file():
                s.note_missing(f"{task} seed {seed}: no {ctx.rel(p)} (the fine-tune stage has not finished).")
                continue
            m = read_record(p)
            maj = majority_score(ctx.run_dir, task)
            flag = "" if maj is None else ("at or below" if float(m.get("score", 0.0)) <= maj + 1e-9 else "above")
            rows.append(
                [
                    task,
                    seed,
                    m.get("main_metric", "score"),
                    m.get("score"),
                    "n/a" if maj is None else f"{maj:.3f} ({flag})",
                    m.get("train_examples"),
                    m.get("dev_examples"),
                    m.get("train_seconds"),
                ]
            )
    if rows:
        s.add(
            Table(
                ["task", "seed", "metric", "dev score", "majority class", "train examples", "dev examples", "train s"],
                rows,
                caption="Dev score of each fine-tuned model (the full score the pruning thresholds are 0.9 x of)",
            )
        )
    return s


def structured_stack(
    ctx: ReportContext, task: str, seeds: dict[int, Path], s: Section | None = None
) -> np.ndarray | None:
    """(seeds, L, H) head masks of the seeds whose s-pruning has finished (the others noted as missing in ``s``)."""
    from attnpatterns.prune.masks import read_seed_dir

    stack = []
    for seed, sdir in seeds.items():
        d = SeedLayout(sdir).structured
        if not (d / "summary.json").is_file():
            if s is not None:
                s.note_missing(f"{task} seed {seed}: s-pruning has not finished (no {ctx.rel(d / 'summary.json')}).")
            continue
        hm, _, _ = read_seed_dir(sdir)
        if hm is not None:
            stack.append(np.asarray(hm))
    return np.stack(stack) if stack else None


def subnetwork_table(ctx: ReportContext):
    """The run's results table (:func:`attnpatterns.report.tables.run_table`), read once per report."""
    from attnpatterns.report import tables

    if ctx.table is None:
        ctx.table = tables.run_table(ctx.run_dir)
    return ctx.table


def _structured_survival(ctx: ReportContext, task: str, seeds: dict[int, Path], s: Section) -> np.ndarray | None:
    stack = structured_stack(ctx, task, seeds, s)
    return None if stack is None else stack.mean(axis=0)


def _magnitude_survival(ctx: ReportContext, task: str, seeds: dict[int, Path], s: Section) -> np.ndarray | None:
    """Mean over seeds of each head's kept weight fraction under m-pruning: the stage's record in ``summary.json``
    (enough on its own, e.g. in a folder of committed results), else the mask mapped to heads through the fine-tuned
    ``config.json``."""
    from attnpatterns.prune.head_weights import magnitude_head_survival

    mc = ctx.model_cfg or {}
    shape = (mc.get("num_hidden_layers"), mc.get("num_attention_heads"))
    per = []
    for seed, sdir in seeds.items():
        sl = SeedLayout(sdir)
        if not sl.summary("magnitude").is_file():
            s.note_missing(f"{task} seed {seed}: m-pruning has not finished (no {ctx.rel(sl.summary('magnitude'))}).")
            continue
        try:
            per.append(magnitude_head_survival(sdir, *shape, mc.get("model_type", "bert")))
        except FileNotFoundError as e:
            s.note_missing(f"{task} seed {seed}: {e}.")
    if len({a.shape for a in per}) > 1:
        s.note_missing(f"{task}: the seeds' m-pruning records disagree on the model's shape.")
        return None
    return np.mean(per, axis=0) if per else None


def section_survival(ctx: ReportContext) -> Section:
    from attnpatterns.report.plots import survival_heatmap

    s = Section("survival", "Head survival (layer x head)")
    s.add(
        Paragraph(
            "s-pruning: the fraction of seeds whose final mask keeps the head. m-pruning removes weights, "
            "not heads: the mean over seeds of the fraction of the head's Q, K, V and output weights kept."
        )
    )
    for task, seeds in ctx.tasks.items():
        surv = _structured_survival(ctx, task, seeds, s)
        if surv is not None:
            fig, _ = survival_heatmap(surv, title=f"{task}: s-pruning, fraction of seeds kept")
            s.add(
                ctx.figure(
                    fig, f"survival-{task}-structured", f"{task}, s-pruning: fraction of seeds that keep each head"
                )
            )
        surv = _magnitude_survival(ctx, task, seeds, s)
        if surv is not None:
            fig, _ = survival_heatmap(
                surv, title=f"{task}: m-pruning, fraction of head weights kept", label="fraction of weights kept"
            )
            s.add(
                ctx.figure(
                    fig,
                    f"survival-{task}-magnitude",
                    f"{task}, m-pruning: fraction of each head's weights kept (mean over seeds)",
                )
            )
    return s


def section_importance(ctx: ReportContext) -> Section:
    from attnpatterns.report.plots import importance_distributions, score_curve

    s = Section("importance", "Importance scores per pruning iteration")
    s.add(
        Paragraph(
            "s-pruning: the normalised head importance of every head still unmasked when the iteration's "
            "importance was computed, pooled over seeds. m-pruning: the dev score along the pruning path "
            "(kept fraction of prunable weights), one line per seed, with the mean 0.9 x full threshold."
        )
    )
    for task, seeds in ctx.tasks.items():
        per_iter: dict[int, list[np.ndarray]] = {}
        for seed, sdir in seeds.items():
            files = iter_files(SeedLayout(sdir).structured)
            if not files:
                s.note_missing(
                    f"{task} seed {seed}: no s-pruning iterations ({ctx.rel(sdir / 'structured')}/iter_KK.json)."
                )
            for k, p in files:
                it = read_record(p)
                imp = it.get("head_importance")
                if imp is None:
                    s.note_missing(f"{ctx.rel(p)}: no head_importance.")
                    continue
                imp = np.asarray(imp, dtype=float)
                mask = np.asarray(it.get("head_mask", np.ones_like(imp)), dtype=float)
                per_iter.setdefault(k, []).append(imp[mask > 0])
        if per_iter:
            ks = sorted(per_iter)
            fig, _ = importance_distributions(
                [np.concatenate(per_iter[k]) for k in ks],
                iteration_labels=[str(k) for k in ks],
                title=f"{task}: head importance per s-pruning iteration",
            )
            s.add(ctx.figure(fig, f"importance-{task}-structured", f"{task}, s-pruning: head importance per iteration"))
        xs, ys, thr = {}, {}, []
        for seed, sdir in seeds.items():
            files = iter_files(SeedLayout(sdir).magnitude)
            if not files:
                s.note_missing(
                    f"{task} seed {seed}: no m-pruning iterations ({ctx.rel(sdir / 'magnitude')}/iter_KK.json)."
                )
                continue
            its = [read_record(p) for _, p in files]
            xs[seed] = [float(_first(it, "kept_fraction", "kept", default=math.nan)) for it in its]
            ys[seed] = [float(_first(it, "score", default=math.nan)) for it in its]
            summ = SeedLayout(sdir).summary("magnitude")
            if summ.is_file():
                t = _first(read_record(summ), "threshold", default=None)
                if t is not None:
                    thr.append(float(t))
        if xs:
            fig, _ = score_curve(
                xs, ys, threshold=float(np.mean(thr)) if thr else None, title=f"{task}: m-pruning path"
            )
            s.add(ctx.figure(fig, f"importance-{task}-magnitude", f"{task}, m-pruning: dev score per iteration"))
    return s


def _first(d: dict, *keys: str, default=None):
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def section_shared(ctx: ReportContext) -> Section:
    from attnpatterns.prune.masks import discover_masks
    from attnpatterns.report.plots import shared_heads_heatmap
    from attnpatterns.stats import compute_stats

    s = Section("shared", "Shared surviving heads between tasks, and stability over seeds")
    done = {
        t: [seed for seed, sd in seeds.items() if SeedLayout(sd).summary("structured").is_file()]
        for t, seeds in ctx.tasks.items()
    }
    usable = {t: v for t, v in done.items() if len(v) >= 2}
    for t, v in done.items():
        if len(v) < 2:
            s.note_missing(f"{t}: {len(v)} finished s-pruning seed(s); stability and shared heads need at least two.")
    if not usable:
        return s
    table: dict = {}
    for t, seeds in usable.items():
        table.update(discover_masks(ctx.run_dir, seeds=seeds, tasks=[t]))
    st = compute_stats(table, source=str(ctx.run_dir))
    names = list(st.tasks)
    n = len(names)
    mean = np.full((n, n), np.nan)
    std = np.full((n, n), np.nan)
    for key, sh in st.shared_heads.items():
        a, b = key.split("/")
        i, j = names.index(a), names.index(b)
        mean[i, j] = mean[j, i] = sh.mean
        std[i, j] = std[j, i] = sh.std
    s.add(
        Paragraph(
            "Cell A/B: heads kept by both tasks' s-pruning masks under the same seed, mean ± std over the seeds "
            "both have; the diagonal is the number of surviving heads of the task."
            + (" Only one task in this run: the matrix is its diagonal." if n == 1 else "")
        )
    )
    fig, _ = shared_heads_heatmap(mean, names, std=std, title="Shared surviving heads")
    s.add(ctx.figure(fig, "shared-heads", "Shared surviving heads between tasks (same seed, mean ± std)"))
    rows = []
    for t, ts in st.tasks.items():
        h = ts.heads
        m = ts.mlps
        rows.append(
            [
                t,
                len(ts.seeds),
                f"{h.mean_kept:.1f} ± {h.std_kept:.1f} / {h.total}" if h else None,
                None if h is None or math.isnan(h.fleiss_kappa) else h.fleiss_kappa,
                h.super_survivors if h else None,
                h.never_kept if h else None,
                f"{m.mean_kept:.1f} ± {m.std_kept:.1f} / {m.total}" if m else None,
                None if m is None or math.isnan(m.fleiss_kappa) else m.fleiss_kappa,
            ]
        )
    s.add(
        Table(
            [
                "task",
                "seeds",
                "heads kept",
                "Fleiss κ heads",
                "super-survivors",
                "never kept",
                "MLPs kept",
                "Fleiss κ MLPs",
            ],
            rows,
            caption="Stability of s-pruning over seeds (κ blank when undefined: every seed agrees on every component)",
        )
    )
    return s


def section_subnetworks(ctx: ReportContext) -> Section:
    s = Section("subnetworks", "Subnetworks: good, random and bad, pruned and re-fine-tuned")
    have = any(SeedLayout(sdir).subnetworks.is_dir() for seeds in ctx.tasks.values() for sdir in seeds.values())
    if not have:
        s.note_missing("no TASK/seed_S/subnetworks/ results (the subnetworks stage has not run).")
        return s
    try:
        from attnpatterns.report import table_format, tables
    except ImportError:
        s.note_missing("the results-table module (attnpatterns.report.tables) is not installed in this checkout.")
        return s
    table = subnetwork_table(ctx)
    scores = table_format.score_frame(table)
    if table.cells.empty or not (table.cells["method"].isin(list(tables.METHOD_LABELS))).any():
        s.note_missing("the subnetworks folders hold no finished evaluation (pruned.json / retrained.json).")
        return s
    s.add(
        Paragraph(
            "Rows: the full fine-tuned model, the majority-class baseline, and for each pruning method its good, "
            "random and bad subnetworks, evaluated as pruned (mask on the fine-tuned model) and retrained (mask "
            "on the pre-trained weights, fine-tuned again). " + table_format.score_caption(table)
        )
    )
    s.add(frame_table(scores, "setting", "Dev scores of the subnetworks"))
    for note in table.notes:
        s.add(Paragraph(note, kind="note"))
    s.add(
        frame_table(
            table_format.size_frame(table),
            "subnetwork",
            "Subnetwork sizes: fraction of the prunable encoder "
            "weights kept (kept heads h and MLPs m for s-pruning and super sets)",
        )
    )
    for p in table_format.write_tables(table, ctx.out, stem="subnetworks-table"):
        ctx.written.append(p)
    s.add(
        Paragraph(
            "The same table as Markdown, CSV and LaTeX: subnetworks-table.md, .csv, .tex beside this page.", kind="note"
        )
    )
    return s


def frame_table(df, first: str, caption: str) -> Table:
    return Table(
        [first] + [str(c) for c in df.columns],
        [[str(i)] + [str(v) for v in r] for i, r in zip(df.index, df.values.tolist())],
        caption=caption,
    )
