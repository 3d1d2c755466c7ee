"""``attn table``: the results table of a run folder, or the authors' table in the same layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("table")(table_cmd)


@handle_errors
def table_cmd(
    run: Annotated[
        Optional[Path], typer.Option("--run", help="A run folder with TASK/seed_S/subnetworks/ results.")
    ] = None,
    reference: Annotated[
        Optional[Path],
        typer.Option(
            "--reference",
            help="The authors' evaluate_masked folder (../shared/reference/bert-experiments/evaluate_masked): "
            "print their bert-base table in the same layout.",
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Folder for table.md, table.csv and table.tex. Default: the run folder (with --run); "
            "nothing written (with --reference).",
        ),
    ] = None,
    tasks: Annotated[
        Optional[str], typer.Option("--tasks", help="Comma-separated tasks (default: every task found).")
    ] = None,
    digits: Annotated[int, typer.Option("--digits", help="Decimals in the cells.")] = 3,
    data_dir: DataDirOpt = None,
) -> None:
    """Write the results table: rows full model, majority baseline and every method x subnetwork x
    pruned/retrained; columns tasks; cells mean ± std over seeds; plus the subnetwork sizes.

    The Markdown is also printed. --reference reads the authors' results.json files instead.
    """
    from attnpatterns.errors import UserError
    from attnpatterns.report.reference_table import collect_reference
    from attnpatterns.report.table_format import to_markdown, write_tables
    from attnpatterns.report.tables import run_table

    if (run is None) == (reference is None):
        raise UserError(
            "give exactly one of --run (a run folder) or --reference (the authors' evaluate_masked folder)."
        )
    if digits < 0 or digits > 8:
        raise UserError(f"--digits must be between 0 and 8 (got {digits}).")
    task_list = [t for t in tasks.split(",") if t.strip()] if tasks else None
    if run is not None:
        from attnpatterns.prune.baselines import ensure_majority
        from attnpatterns.run.layout import RunLayout

        if run.is_dir():
            ensure_majority(run, list(RunLayout(run).tasks()), data_dir)
        table = run_table(run, task_list)
        out = out if out is not None else run
    else:
        table = collect_reference(reference)
        if task_list:
            from attnpatterns.data import get_task

            keep = [get_task(t).name for t in task_list]
            table.tasks = [t for t in table.tasks if t in keep]
    typer.echo(to_markdown(table, digits))
    if out is not None:
        paths = write_tables(table, out, digits=digits)
        typer.echo("wrote " + ", ".join(str(p) for p in paths))
