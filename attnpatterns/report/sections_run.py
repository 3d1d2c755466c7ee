"""The report's opening sections: the findings computed from the run's own numbers, and what the run is (its
profile, every deviation from the study's settings, the seeds behind each table, fine-tunes stuck at the majority
class)."""

from __future__ import annotations

import logging

from attnpatterns.report.context import ReportContext
from attnpatterns.report.html import Paragraph, Section, Table
from attnpatterns.report.run_settings import RunSettings, collect_settings
from attnpatterns.run.layout import SeedLayout

log = logging.getLogger("attnpatterns")


def settings_of(ctx: ReportContext) -> RunSettings:
    """The run's recorded settings, read once per report."""
    if ctx.settings is None:
        ctx.settings = collect_settings(ctx.run_dir, ctx.tasks, ctx.cfg)
    return ctx.settings


def profile_line(ctx: ReportContext) -> str | None:
    """The header's profile entry: the profile name, and what it means for reading the numbers."""
    rs = settings_of(ctx)
    if rs.profile is None:
        return "none recorded (stages run by hand): see 'What this run is'" if rs.deviations else None
    if rs.smoke:
        return f"{rs.profile}: a smoke run of every stage, not a result"
    if rs.deviations:
        return (
            f"{rs.profile}, with {len(rs.deviations)} deviation(s) from the study's settings (see 'What this run is')"
        )
    return f"{rs.profile}: the study's settings"


def section_about(ctx: ReportContext) -> Section:
    rs = settings_of(ctx)
    s = Section("about", "What this run is")
    if rs.smoke:
        s.add(
            Paragraph(
                "This is a smoke run (profile 'quick'): every stage ran on a few hundred examples for one epoch, so "
                "its numbers (0 heads kept, fine-tunes at the majority class, equal subnetworks) show that the "
                "stages connect, not what the model does. Run 'attn run --profile paper' for results.",
                kind="note",
            )
        )
    if rs.profile_description:
        s.add(Paragraph(f"Profile '{rs.profile}': {rs.profile_description}."))
    if rs.deviations:
        s.add(
            Table(
                ["deviation from the study's settings (read from the stages' own records)"],
                [[d] for d in rs.deviations],
                caption="Deviations",
            )
        )
    else:
        s.add(
            Paragraph(
                "Every recorded setting is the study's (lr 2e-5, 3 epochs, batch 32, max length 128, "
                "whole training and dev sets, no floor, 5 seeds)."
            )
        )
    tables = list(rs.seeds)
    tasks = list(ctx.tasks)
    if tables:
        s.add(
            Table(
                ["table"] + tasks,
                [[t] + [rs.seeds[t].get(task, 0) for task in tasks] for t in tables],
                caption="Seeds behind each table",
            )
        )
    if len({d for per in rs.devices.values() for d in per}) > 1:
        s.add(
            Table(
                ["stage", "device", "tasks"],
                [
                    [stage, dev, ", ".join(t for t in tasks if t in per[dev])]
                    for stage, per in rs.devices.items()
                    for dev in sorted(per)
                ],
                caption="Where the stages ran (the devices the stages recorded)",
                align=["l", "l", "l"],
            )
        )
        s.add(
            Paragraph(
                "The stages ran on more than one device. The same training differs a little between devices (on a "
                "GPU it runs in bf16 autocast), so a contrast is cleanest between cells that ran on one device; the "
                "table says which tasks' cells ran where.",
                kind="note",
            )
        )
    if rs.at_majority:
        s.add(
            Paragraph(
                "Fine-tunes that did not beat the majority class (their pruning and patterns say little): "
                + "; ".join(rs.at_majority)
                + ".",
                kind="note",
            )
        )
    return s


def section_findings(ctx: ReportContext) -> Section:
    from attnpatterns.report import findings as F
    from attnpatterns.report import tables
    from attnpatterns.report.sections_patterns import load_distributions
    from attnpatterns.report.sections_pruning import structured_stack, subnetwork_table

    s = Section("findings", "Findings: the study's three, on this run's numbers")
    rs = settings_of(ctx)
    rows: list[F.Finding] = []
    for task, seeds in ctx.tasks.items():
        stack = structured_stack(ctx, task, seeds)
        rows.append(F.stability_finding(task, None if stack is None else stack.reshape(len(stack), -1)))
    sub_rows: list[F.Finding] = []
    if any(SeedLayout(sd).subnetworks.is_dir() for seeds in ctx.tasks.values() for sd in seeds.values()):
        sub_rows = F.subnetwork_findings(subnetwork_table(ctx).per_seed, tables.METHOD_LABELS)
    covered = {f.task for f in sub_rows}
    rows += sub_rows + [
        F.Finding(
            "good subnetworks re-fine-tune better than random and bad",
            task,
            F.MISSING,
            "no subnetwork results (the subnetworks stage has not run)",
        )
        for task in ctx.tasks
        if task not in covered
    ]
    dists = load_distributions(ctx)
    for task in ctx.tasks:
        rows += F.pattern_findings(task, dists.get(task))
    s.add(
        Paragraph(
            "Each verdict is computed from the tables below: stability from the s-pruning masks (Fleiss' kappa with "
            "a bootstrap interval over heads; the super-survivor count against random masks of the same sizes), "
            "subnetworks from the per-seed re-fine-tuned scores (paired differences with a t-interval over seeds), "
            "patterns from the bootstrap intervals of the shares. 'not resolved': the interval straddles the line."
        )
    )
    if rs.smoke:
        s.add(Paragraph("A smoke run: these verdicts test the code path, not the model.", kind="note"))
    if rs.at_majority:
        s.add(
            Paragraph(
                f"{len(rs.at_majority)} fine-tune(s) did not beat the majority class: read their tasks' verdicts "
                "with that in mind (see 'What this run is').",
                kind="note",
            )
        )
    s.add(
        Table(
            ["finding", "task", "verdict", "evidence"],
            [[f.finding, f.task, f.verdict, f.evidence] for f in rows],
            caption="The study's findings on this run",
        )
    )
    return s
