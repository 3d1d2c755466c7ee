"""``attn stats``: stability of s-pruning masks over seeds, per task and between tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import handle_errors


def register(app: typer.Typer) -> None:
    app.command("stats")(stats_cmd)


@handle_errors
def stats_cmd(
    masks: Annotated[
        Path,
        typer.Option(
            "--masks",
            help="Folder of masks: TASK/seed_S/head_mask.npy + mlp_mask.npy (the authors' layout, e.g. "
            "bert-experiments/masks/heads_mlps) or a run folder (TASK/seed_S/structured/).",
        ),
    ],
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write every statistic to this JSON file (atomically).")
    ] = None,
    markdown_out: Annotated[
        Optional[Path],
        typer.Option("--markdown", help="Also write the Markdown tables printed on stdout to this file."),
    ] = None,
    tasks: Annotated[
        Optional[str],
        typer.Option("--tasks", help="Comma-separated tasks to include (each must exist). Default: every task found."),
    ] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option(
            "--seeds", help="Comma-separated seeds to use (each task must have them). Default: every seed_S folder."
        ),
    ] = None,
    model: Annotated[
        Optional[str],
        typer.Option("--model", "-m", help="Expected model id, checked against the run folder's mask.json files."),
    ] = None,
    skip_unfinished: Annotated[
        bool,
        typer.Option(
            "--skip-unfinished",
            help="Leave out seed folders whose s-pruning has not finished (e.g. while a run is "
            "going on) instead of stopping with an error, and tasks left with fewer than two seeds; each is named in a "
            "warning.",
        ),
    ] = False,
) -> None:
    r"""Stability of s-pruning masks over seeds, for every task found, as Markdown tables on stdout.

    Per task: Fleiss' kappa of head and of MLP survival (subjects = components, raters = seeds), Cochran's Q, per-head
    std of survival, mean surviving heads and MLPs, super-survivor / in-between / never-kept counts.

    Between tasks: shared heads and MLPs, sum(mask_A\[seed] * mask_B\[seed]) on the seeds both have, mean and std over
    those seeds.

    Every std is over seeds with ddof=0. A kappa that is undefined (every component kept, or every one pruned, in every
    seed) is reported as n/a (null in the JSON) with a note.
    """
    from attnpatterns.errors import UserError
    from attnpatterns.io import write_json, write_text
    from attnpatterns.prune.masks import discover_masks, model_of
    from attnpatterns.stats import compute_stats, to_markdown
    from cli.common import parse_seeds

    seed_list = parse_seeds(seeds) if seeds is not None else None
    task_list = [t for t in tasks.replace(" ", "").split(",") if t] if tasks is not None else None
    table = discover_masks(masks, seeds=seed_list, tasks=task_list, model=model, skip_unfinished=skip_unfinished)
    if skip_unfinished:
        for t in [t for t, per_seed in table.items() if len(per_seed) < 2]:
            typer.echo(f"warning: {t} has {len(table[t])} finished seed(s); left out (kappa needs two)", err=True)
            del table[t]
        if not table:
            raise UserError(f"{masks}: no task has two finished seeds yet; wait for the run or prune more seeds.")
    found = model if model is not None else model_of(masks, {t: list(v) for t, v in table.items()})
    report = compute_stats(table, source=str(masks), model=found)
    md = to_markdown(report)
    typer.echo(md, nl=False)
    if json_out is not None:
        write_json(json_out, report.to_json())
        typer.echo(f"wrote {json_out}", err=True)
    if markdown_out is not None:
        write_text(markdown_out, md)
        typer.echo(f"wrote {markdown_out}", err=True)
