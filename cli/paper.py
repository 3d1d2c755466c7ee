"""``attn paper``: a run beside the study's bert-base numbers, one table per finding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import handle_errors


def register(app: typer.Typer) -> None:
    app.command("paper")(paper_cmd)


@handle_errors
def paper_cmd(
    run: Annotated[Path, typer.Option("--run", help="A run folder of 'attn run' (or one laid out like it).")],
    reference: Annotated[
        Path,
        typer.Option(
            "--reference",
            help="The authors' folder with masks/heads/ and evaluate_masked/ (../shared/reference/bert-experiments).",
        ),
    ] = Path("../shared/reference/bert-experiments"),
    tasks: Annotated[
        Optional[str], typer.Option("--tasks", help="Comma-separated tasks (default: every task of the run).")
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the Markdown here too.")] = None,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="Write the tables even when cells are missing (a task, seed or stage not finished): they read "
            "'missing' and are listed at the end. Default: a missing cell is an error.",
        ),
    ] = False,
) -> None:
    """Put a run beside the study's bert-base numbers, one table per finding: stability of s-pruning, good / random /
    bad subnetworks, pattern shares of the super-survivors vs all heads (Prasanna, Rogers and Rumshisky 2020)."""
    from attnpatterns.io import write_text
    from attnpatterns.report.paper import compare_with_paper, to_markdown

    task_list = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    md = to_markdown(compare_with_paper(run, reference, task_list, allow_missing))
    typer.echo(md)
    if out is not None:
        write_text(out, md)
        typer.echo(f"wrote {out}")
