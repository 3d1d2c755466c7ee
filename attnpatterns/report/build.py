"""``attn report``: read a run folder, draw the plots, write ``report/index.html`` and ``report/report.md``.

Inputs (docs/CONTRACTS.md, run folder): ``TASK/seed_S/finetuned/metrics.json``, ``structured/`` (masks,
``iter_KK.json``), ``magnitude/`` (``iter_KK.json``, ``mask.safetensors``), ``subnetworks/``, ``TASK/super/``,
and the classify stage's ``classify/TASK/distribution.json`` + ``classify/TASK/seed_S/heads.json`` /
``examples.npz``. Every section whose inputs are missing says so in the page, with the stage that makes them.

No model is loaded here: m-pruning masks are read as arrays and mapped to heads by parameter name.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from attnpatterns.errors import UserError
from attnpatterns.report.context import (  # noqa: F401 (re-exported)
    CLASSIFY_DIR,
    KINDS,
    METHODS,
    REPORT_DIR,
    ReportContext,
    find_tasks,
    model_config,
    read_record,
)
from attnpatterns.report.html import Document
from attnpatterns.report.sections_patterns import section_examples, section_patterns
from attnpatterns.report.sections_pruning import (  # noqa: F401 (re-exported)
    section_finetune,
    section_importance,
    section_shared,
    section_subnetworks,
    section_survival,
)
from attnpatterns.report.sections_run import profile_line, section_about, section_findings
from attnpatterns.run.layout import RunLayout, SeedLayout

log = logging.getLogger("attnpatterns")


@dataclass
class ReportResult:
    out_dir: Path
    html: Path
    markdown: Path
    figures: list[Path] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # section id -> what was missing
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------- the build


def build_report(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    examples_per_type: int = 6,
    data_dir: str | os.PathLike | None = None,
    show_progress: bool = False,
    title: str | None = None,
) -> ReportResult:
    """Write the report of ``run_dir`` into ``out_dir`` (default ``run_dir/report``); return what was written.

    ``title`` names the report in its heading (default: the run folder's name).

    The sections only read the run folder. One record is completed first: ``TASK/majority.json`` of a task that has
    none (the subnetworks stage writes it), from ``data_dir`` (else ``$ATTN_GLUE_DIR``) by
    :func:`attnpatterns.prune.baselines.ensure_majority`; without data the table goes without that row.
    """
    from attnpatterns.io import write_json, write_text
    from attnpatterns.progress import progress_iter
    from attnpatterns.prune.baselines import ensure_majority
    from attnpatterns.report.html import render_html, render_markdown

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder; pass the --out folder of 'attn run'.")
    out = Path(out_dir) if out_dir is not None else run_dir / REPORT_DIR
    tasks = find_tasks(run_dir)
    cfg = read_record(RunLayout(run_dir).config) if RunLayout(run_dir).config.is_file() else {}
    if not tasks:
        raise UserError(f"{run_dir}: no TASK/seed_S folders; this is not a run folder of 'attn run' (or it is empty).")
    ensure_majority(run_dir, list(tasks), data_dir)
    ctx = ReportContext(
        run_dir=run_dir,
        out=out,
        tasks=tasks,
        cfg=cfg,
        model_cfg=model_config(run_dir, tasks),
    )

    doc = Document(title=f"attnpatterns report: {title or run_dir.name}")
    doc.meta = _meta(ctx)
    builders = [
        section_findings,
        section_about,
        section_finetune,
        section_patterns,
        section_survival,
        section_importance,
        section_shared,
        section_subnetworks,
        section_examples,
    ]
    for b in progress_iter(builders, len(builders), "report sections", show_progress):
        kw = {"examples_per_type": examples_per_type} if b is section_examples else {}
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


def _remove_stale(out: Path, written: list[Path]) -> None:
    """Plots of an earlier report that this one did not draw (e.g. a task since removed)."""
    man = out / "manifest.json"
    if not man.is_file():
        return
    try:
        old = set(read_record(man).get("files", []))
    except UserError:
        return
    keep = {p.name for p in written}
    for name in old - keep:
        p = out / name
        if p.suffix in (".png", ".svg") and p.is_file() and p.parent == out:
            p.unlink()


def _meta(ctx: ReportContext) -> list[tuple[str, str]]:
    cfg = ctx.cfg
    meta = [
        ("run folder", str(ctx.run_dir)),
        ("model", str(cfg.get("model_id") or cfg.get("model") or _model_from_runs(ctx) or "unknown")),
        ("tasks", ", ".join(ctx.tasks)),
        ("seeds", seeds_line(ctx.tasks)),
    ]
    prof = profile_line(ctx)
    if prof:
        meta.append(("profile", prof))
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


def seeds_line(tasks: dict[str, dict[int, Path]]) -> str:
    """The seeds of the run: "42, 1337" when every task has the same finished fine-tunes, else the seeds of all
    tasks and, in brackets, each task that differs and the seeds whose fine-tuning has not finished (a seed folder
    without finetuned/metrics.json), e.g. "42, 71, 1337 (SST-2: 1337; 42 still fine-tuning)"."""
    done = {
        t: sorted(s for s, d in seeds.items() if (SeedLayout(d).finetuned / "metrics.json").is_file())
        for t, seeds in tasks.items()
    }
    running = {t: sorted(set(seeds) - set(done[t])) for t, seeds in tasks.items()}
    every = sorted({s for ss in done.values() for s in ss})
    notes = []
    for t in tasks:
        if done[t] == every and not running[t]:
            continue
        part = f"{t}: " + (", ".join(map(str, done[t])) or "none finished")
        if running[t]:
            part += "; " + ", ".join(map(str, running[t])) + " still fine-tuning"
        notes.append(part)
    return ", ".join(map(str, every)) + (f" ({'; '.join(notes)})" if notes else "")


def _model_from_runs(ctx: ReportContext) -> str | None:
    for seeds in ctx.tasks.values():
        for sdir in seeds.values():
            p = SeedLayout(sdir).finetuned / "metrics.json"
            if p.is_file():
                return read_record(p).get("model")
    return None


# ------------------------------------------------------------------------------------------------- sections
