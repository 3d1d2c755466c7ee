"""``attn report``: the HTML page and its Markdown twin for a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)


@handle_errors
def report_cmd(
    run: Annotated[
        Path,
        typer.Option(
            "--run", help="The run folder ('attn run --out', or one made with attn finetune/prune/subnetworks)."
        ),
    ],
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Where to write the report (default: RUN/report).")
    ] = None,
    examples_per_type: Annotated[
        int, typer.Option("--examples-per-type", help="Example maps per pattern type in the grid.")
    ] = 6,
    data_dir: DataDirOpt = None,
    title: Annotated[
        Optional[str],
        typer.Option(
            "--title",
            help="The report's name, in its heading (default: the run folder's name; e.g. the study's name for a "
            "folder of committed results such as results/minilm-full/masks).",
        ),
    ] = None,
) -> None:
    """Write OUT/index.html (one self-contained page, no network assets) and OUT/report.md, with the plots as
    PNG and SVG beside them: pattern distributions (raw and normed, super-survivors vs all heads, chi-square per
    task), head survival heatmaps, importance per pruning iteration, shared heads between tasks, the subnetwork
    results table and example maps per pattern type. A section whose inputs are missing says so.
    """
    from attnpatterns.errors import UserError
    from attnpatterns.report.build import build_report

    if examples_per_type < 1:
        raise UserError(f"--examples-per-type must be at least 1 (got {examples_per_type}).")
    res = build_report(run, out, examples_per_type=examples_per_type, data_dir=data_dir, title=title)
    typer.echo(f"wrote {res.html} and {res.markdown} ({len(res.figures)} files beside them, {res.seconds:.1f} s)")
    for sec, what in res.missing.items():
        for w in what:
            typer.echo(f"  missing ({sec}): {w}", err=True)
