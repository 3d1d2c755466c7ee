"""``attn report``: read a run folder, draw the plots, write ``report/index.html`` and ``report/report.md``.

Inputs (docs/CONTRACTS.md, run folder): ``TASK/seed_S/finetuned/metrics.json``, ``structured/`` (masks,
``iter_KK.json``), ``magnitude/`` (``iter_KK.json``, ``mask.safetensors``), ``subnetworks/``, ``TASK/super/``,
and the classify stage's ``classify/TASK/distribution.json`` + ``classify/TASK/seed_S/heads.json`` /
``examples.npz``. Every section whose inputs are missing says so in the page, with the stage that makes them.

No model is loaded here: m-pruning masks are read as arrays and mapped to heads by parameter name.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnpatterns import layout
from attnpatterns.errors import UserError
from attnpatterns.layout import RunLayout, SeedLayout
from attnpatterns.report.html import Document, Figure, Paragraph, Section, Table

log = logging.getLogger("attnpatterns")

REPORT_DIR = layout.REPORT
CLASSIFY_DIR = layout.CLASSIFY
_ITER = re.compile(r"^iter_(\d+)\.json$")
KINDS = ("raw", "normed")
METHODS = layout.PRUNE_METHODS


@dataclass
class ReportResult:
    out_dir: Path
    html: Path
    markdown: Path
    figures: list[Path] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # section id -> what was missing
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------- run layout


def find_tasks(run_dir: Path) -> dict[str, dict[int, Path]]:
    """{task: {seed: seed folder}} for every subfolder holding seed_S folders (sorted): :meth:`RunLayout.tasks`."""
    return RunLayout(run_dir).tasks()


def _iter_files(d: Path) -> list[tuple[int, Path]]:
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _ITER.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def _read(path: Path) -> Any:
    from attnpatterns.io import read_json

    return read_json(path)


def _model_config(run_dir: Path, tasks: dict[str, dict[int, Path]]) -> dict | None:
    for seeds in tasks.values():
        for sdir in seeds.values():
            p = SeedLayout(sdir).finetuned / "config.json"
            if p.is_file():
                return _read(p)
    return None


# ------------------------------------------------------------------------------------------------- the build


def build_report(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    examples_per_type: int = 6,
    data_dir: str | os.PathLike | None = None,
    show_progress: bool = False,
) -> ReportResult:
    """Write the report of ``run_dir`` into ``out_dir`` (default ``run_dir/report``); return what was written.

    ``data_dir`` (else ``$ATTN_GLUE_DIR``) is read only for a task whose majority baseline the run folder lacks.
    """
    from attnpatterns.io import write_json, write_text
    from attnpatterns.progress import progress_iter
    from attnpatterns.report.html import render_html, render_markdown

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder; pass the --out folder of 'attn run'.")
    out = Path(out_dir) if out_dir is not None else run_dir / REPORT_DIR
    tasks = find_tasks(run_dir)
    cfg = _read(run_dir / "config.json") if (run_dir / "config.json").is_file() else {}
    if not tasks:
        raise UserError(f"{run_dir}: no TASK/seed_S folders; this is not a run folder of 'attn run' (or it is empty).")
    ctx = _Ctx(
        run_dir=run_dir,
        out=out,
        tasks=tasks,
        cfg=cfg,
        model_cfg=_model_config(run_dir, tasks),
        data_dir=str(data_dir) if data_dir is not None else None,
    )

    doc = Document(title=f"attnpatterns report: {run_dir.name}")
    doc.meta = _meta(ctx)
    builders = [
        _sec_finetune,
        _sec_patterns,
        _sec_survival,
        _sec_importance,
        _sec_shared,
        _sec_subnetworks,
        _sec_examples,
    ]
    for b in progress_iter(builders, len(builders), "report sections", show_progress):
        kw = {"examples_per_type": examples_per_type} if b is _sec_examples else {}
        doc.sections.append(b(ctx, **kw))

    out.mkdir(parents=True, exist_ok=True)
    html_path = write_text(out / "index.html", render_html(doc))
    md_path = write_text(out / "report.md", render_markdown(doc))
    _remove_stale(out, ctx.written)
    write_json(
        out / "manifest.json",
        {
            "files": sorted(p.name for p in ctx.written),
            "run": str(run_dir),
            "missing": {s.id: s.missing for s in doc.sections if s.missing},
        },
    )
    return ReportResult(
        out,
        html_path,
        md_path,
        list(ctx.written),
        {s.id: s.missing for s in doc.sections if s.missing},
        time.perf_counter() - t0,
    )


@dataclass
class _Ctx:
    run_dir: Path
    out: Path
    tasks: dict[str, dict[int, Path]]
    cfg: dict
    model_cfg: dict | None
    data_dir: str | None = None
    written: list[Path] = field(default_factory=list)

    def figure(self, fig, stem: str, caption: str) -> Figure:
        from attnpatterns.report.plots import save_figure

        png, svg = save_figure(fig, self.out / stem)
        self.written += [png, svg]
        return Figure(stem=stem, caption=caption, png=png.read_bytes())

    def rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.run_dir))
        except ValueError:
            return str(p)


def _remove_stale(out: Path, written: list[Path]) -> None:
    """Plots of an earlier report that this one did not draw (e.g. a task since removed)."""
    man = out / "manifest.json"
    if not man.is_file():
        return
    try:
        old = set(_read(man).get("files", []))
    except UserError:
        return
    keep = {p.name for p in written}
    for name in old - keep:
        p = out / name
        if p.suffix in (".png", ".svg") and p.is_file() and p.parent == out:
            p.unlink()


def _meta(ctx: _Ctx) -> list[tuple[str, str]]:
    cfg = ctx.cfg
    seeds = sorted({s for t in ctx.tasks.values() for s in t})
    meta = [
        ("run folder", str(ctx.run_dir)),
        ("model", str(cfg.get("model_id") or cfg.get("model") or _model_from_runs(ctx) or "unknown")),
        ("tasks", ", ".join(ctx.tasks)),
        ("seeds", ", ".join(map(str, seeds))),
    ]
    if cfg.get("profile"):
        meta.append(("profile", str(cfg["profile"])))
    if ctx.model_cfg:
        mc = ctx.model_cfg
        meta.append(
            (
                "shape",
                f"{mc.get('num_hidden_layers')} layers x {mc.get('num_attention_heads')} heads, hidden "
                f"{mc.get('hidden_size')}",
            )
        )
    meta.append(("written", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    return meta


def _model_from_runs(ctx: _Ctx) -> str | None:
    for seeds in ctx.tasks.values():
        for sdir in seeds.values():
            p = SeedLayout(sdir).finetuned / "metrics.json"
            if p.is_file():
                return _read(p).get("model")
    return None


# ------------------------------------------------------------------------------------------------- sections


def _sec_finetune(ctx: _Ctx) -> Section:
    s = Section("finetune", "Fine-tuned models")
    rows = []
    for task, seeds in ctx.tasks.items():
        for seed, sdir in seeds.items():
            p = sdir / "finetuned" / "metrics.json"
            if not p.is_file():
                s.note_missing(f"{task} seed {seed}: no {ctx.rel(p)} (the fine-tune stage has not finished).")
                continue
            m = _read(p)
            rows.append(
                [
                    task,
                    seed,
                    m.get("main_metric", "score"),
                    m.get("score"),
                    m.get("train_examples"),
                    m.get("dev_examples"),
                    m.get("train_seconds"),
                ]
            )
    if rows:
        s.add(
            Table(
                ["task", "seed", "metric", "dev score", "train examples", "dev examples", "train s"],
                rows,
                caption="Dev score of each fine-tuned model (the full score the pruning thresholds are 0.9 x of)",
            )
        )
    return s


def _load_distributions(ctx: _Ctx) -> dict[str, dict]:
    out = {}
    for task in ctx.tasks:
        p = RunLayout(ctx.run_dir).classify_dir(task) / "distribution.json"
        if p.is_file():
            out[task] = _read(p)
    return out


def _sec_patterns(ctx: _Ctx) -> Section:
    from attnpatterns.report.distributions import chi_square
    from attnpatterns.report.plots import stacked_bars

    s = Section("patterns", "Pattern distributions: super-survivors vs all heads")
    dists = _load_distributions(ctx)
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


def _annotator_sensitivity(ctx: _Ctx, s: Section) -> None:
    """The super-survivor vs all-heads contrast under classifiers trained on each annotator's own labels
    (``classify/TASK/annotators/<variant>.json``, written by ``results/minilm/patterns_by_annotator.py``)."""
    for task in ctx.tasks:
        files = sorted((RunLayout(ctx.run_dir).classify_dir(task) / "annotators").glob("*.json"))
        if not files:
            continue
        variants = [(p.stem, _read(p)) for p in files]
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


def _structured_survival(ctx: _Ctx, task: str, seeds: dict[int, Path], s: Section) -> np.ndarray | None:
    from attnpatterns.prune.masks import read_seed_dir

    stack = []
    for seed, sdir in seeds.items():
        d = SeedLayout(sdir).structured
        if not (d / "summary.json").is_file():
            s.note_missing(f"{task} seed {seed}: s-pruning has not finished (no {ctx.rel(d / 'summary.json')}).")
            continue
        hm, _, _ = read_seed_dir(sdir)
        if hm is not None:
            stack.append(hm)
    return np.mean(stack, axis=0) if stack else None


def head_weight_survival(
    masks: dict[str, np.ndarray], num_layers: int, num_heads: int, model_type: str = "bert"
) -> np.ndarray:
    """Per head, the fraction of its prunable weights an m-pruning mask keeps: (L, H) in [0, 1].

    A head's weights: its rows of the Q, K, V weights and biases (the nn.Linear output slice h*d:(h+1)*d) and
    its columns of the attention output weight (the input slice). Names are the model's parameter names.
    """
    from attnpatterns.families import family_for

    fam = family_for(model_type)
    kept = np.zeros((num_layers, num_heads))
    total = np.zeros((num_layers, num_heads))
    pat = re.compile(r"(?:^|\.)" + re.escape(fam.layers) + r"\.(\d+)\.(.+)\.(weight|bias)$")
    rows_of = {fam.query, fam.key, fam.value}
    for name, m in masks.items():
        mt = pat.search(name)
        if not mt:
            continue
        layer, sub, what = int(mt.group(1)), mt.group(2), mt.group(3)
        if layer >= num_layers:
            raise UserError(f"m-pruning mask '{name}' names layer {layer}, but the model has {num_layers} layers.")
        a = np.asarray(m).astype(bool)
        if sub in rows_of:
            d = a.shape[0] // num_heads
            per = a.reshape(num_heads, d, -1) if what == "weight" else a.reshape(num_heads, d, 1)  # (H, d, in)
            kept[layer] += per.reshape(num_heads, -1).sum(axis=1)
            total[layer] += per.reshape(num_heads, -1).shape[1]
        elif sub == fam.attn_out and what == "weight":
            d = a.shape[1] // num_heads
            per = a.reshape(a.shape[0], num_heads, d).transpose(1, 0, 2)  # (H, out, d)
            kept[layer] += per.reshape(num_heads, -1).sum(axis=1)
            total[layer] += per.reshape(num_heads, -1).shape[1]
    if not total.any():
        raise UserError(
            "the m-pruning mask names no attention weights this report knows; "
            f"expected names like '...{fam.layers}.0.{fam.query}.weight'."
        )
    return np.divide(kept, total, out=np.full_like(kept, np.nan), where=total > 0)


def _load_weight_masks(path: Path) -> dict[str, np.ndarray]:
    from attnpatterns.prune.masks import read_weight_masks

    return {k: v.numpy() for k, v in read_weight_masks(path)[0].items()}


def _magnitude_survival(ctx: _Ctx, task: str, seeds: dict[int, Path], s: Section) -> np.ndarray | None:
    mc = ctx.model_cfg
    if mc is None:
        s.note_missing(f"{task}: no fine-tuned config.json, so the m-pruning masks cannot be mapped to heads.")
        return None
    per = []
    for seed, sdir in seeds.items():
        sl = SeedLayout(sdir)
        d = sl.magnitude
        if not sl.summary("magnitude").is_file() or not sl.mask("magnitude").is_file():
            s.note_missing(f"{task} seed {seed}: m-pruning has not finished (no {ctx.rel(d / 'summary.json')}).")
            continue
        per.append(
            head_weight_survival(
                _load_weight_masks(sl.mask("magnitude")),
                mc["num_hidden_layers"],
                mc["num_attention_heads"],
                mc.get("model_type", "bert"),
            )
        )
    return np.mean(per, axis=0) if per else None


def _sec_survival(ctx: _Ctx) -> Section:
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


def _sec_importance(ctx: _Ctx) -> Section:
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
            files = _iter_files(SeedLayout(sdir).structured)
            if not files:
                s.note_missing(
                    f"{task} seed {seed}: no s-pruning iterations ({ctx.rel(sdir / 'structured')}/iter_KK.json)."
                )
            for k, p in files:
                it = _read(p)
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
            files = _iter_files(SeedLayout(sdir).magnitude)
            if not files:
                s.note_missing(
                    f"{task} seed {seed}: no m-pruning iterations ({ctx.rel(sdir / 'magnitude')}/iter_KK.json)."
                )
                continue
            its = [_read(p) for _, p in files]
            xs[seed] = [float(_first(it, "kept_fraction", "kept", default=math.nan)) for it in its]
            ys[seed] = [float(_first(it, "score", default=math.nan)) for it in its]
            summ = SeedLayout(sdir).summary("magnitude")
            if summ.is_file():
                t = _first(_read(summ), "threshold", default=None)
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


def _sec_shared(ctx: _Ctx) -> Section:
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


def _sec_subnetworks(ctx: _Ctx) -> Section:
    s = Section("subnetworks", "Subnetworks: good, random and bad, pruned and re-fine-tuned")
    have = any(SeedLayout(sdir).subnetworks.is_dir() for seeds in ctx.tasks.values() for sdir in seeds.values())
    if not have:
        s.note_missing("no TASK/seed_S/subnetworks/ results (the subnetworks stage has not run).")
        return s
    try:
        from attnpatterns.report import tables
    except ImportError:
        s.note_missing("the results-table module (attnpatterns.report.tables) is not installed in this checkout.")
        return s
    table = tables.run_table(ctx.run_dir, data_dir=ctx.data_dir)
    scores = tables.score_frame(table)
    if table.cells.empty or not (table.cells["method"].isin(list(tables.METHOD_LABELS))).any():
        s.note_missing("the subnetworks folders hold no finished evaluation (pruned.json / retrained.json).")
        return s
    s.add(
        Paragraph(
            "Rows: the full fine-tuned model, the majority-class baseline, and for each pruning method its good, "
            "random and bad subnetworks, evaluated as pruned (mask on the fine-tuned model) and retrained (mask "
            "on the pre-trained weights, fine-tuned again). Cells: dev score, mean ± population std over seeds."
        )
    )
    s.add(_frame_table(scores, "setting", "Dev scores of the subnetworks"))
    s.add(
        _frame_table(
            tables.size_frame(table),
            "subnetwork",
            "Subnetwork sizes: fraction of the prunable encoder "
            "weights kept (kept heads h and MLPs m for s-pruning and super sets)",
        )
    )
    for p in tables.write_tables(table, ctx.out, stem="subnetworks-table"):
        ctx.written.append(p)
    s.add(
        Paragraph(
            "The same table as Markdown, CSV and LaTeX: subnetworks-table.md, .csv, .tex beside this page.", kind="note"
        )
    )
    return s


def _frame_table(df, first: str, caption: str) -> Table:
    return Table(
        [first] + [str(c) for c in df.columns],
        [[str(i)] + [str(v) for v in r] for i, r in zip(df.index, df.values.tolist())],
        caption=caption,
    )


def _sec_examples(ctx: _Ctx, examples_per_type: int = 6) -> Section:
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
                captions = _read(d / "examples.json") if (d / "examples.json").is_file() else {}
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
        # sorted by index first: the examples spread over tasks and seeds (round-robin)
        cells = {
            t: [
                (f"{task} s{seed} {cap}".strip(), m)
                for _, task, seed, m, cap in sorted(v, key=lambda x: (x[0], x[1], x[2]))
            ]
            for t, v in grid.items()
        }
        fig, _ = example_grid(cells, ncols=examples_per_type)
        s.add(ctx.figure(fig, f"examples-{kind}", f"{kind} maps: examples of each predicted type"))
    return s
