"""``attn run``: the whole study over one run folder, from fine-tuning to the report, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, DeviceOpt, ModelOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)


@handle_errors
def run_cmd(
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="The run folder (default: runs/<profile>).")
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="quick: MiniLM-sized smoke run of every stage (MRPC, two "
            "seeds, subsampled training; minutes on a CPU). paper: the study's settings "
            "(five GLUE tasks, five seeds, full training sets, 3 epochs).",
        ),
    ] = "quick",
    tasks: Annotated[
        Optional[str],
        typer.Option("--tasks", help="Comma-separated GLUE tasks, e.g. MRPC,RTE. Default: the profile's."),
    ] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option("--seeds", help="Comma-separated seeds, e.g. 1337,42,86,71,166. Default: the profile's."),
    ] = None,
    stages: Annotated[
        Optional[str],
        typer.Option(
            "--stages",
            help="Only these stages, comma-separated (finetune, structured, magnitude, survivors, "
            "subnetworks, classify, report), e.g. classify,report over a run made by hand. "
            "Default: all.",
        ),
    ] = None,
    model: ModelOpt = None,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "cpu",
    threads: Annotated[
        Optional[int], typer.Option("--threads", help="torch CPU threads (default: torch's choice).")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Fine-tune, prune (s- and m-pruning), find super-survivors, evaluate the good/random/bad subnetworks,
    classify the attention maps of all heads and of the super-survivors (raw and normed), and write the report.

    Every stage is resumable: a finished piece whose inputs have not changed is skipped (stamps in
    OUT/.stages/), so rerunning the same command continues an interrupted run and a finished run does no
    work. Data: --data-dir, else $ATTN_GLUE_DIR, else the hub.
    """
    from attnpatterns.run.pipeline import RunConfig, run_pipeline
    from cli.common import apply_threads, parse_seeds

    apply_threads(threads)
    cfg = RunConfig(
        out=out if out is not None else Path("runs") / profile,
        profile=profile,
        model=model,
        tasks=[t for t in tasks.split(",") if t.strip()] if tasks else None,
        seeds=parse_seeds(seeds) if seeds else None,
        data_dir=str(data_dir) if data_dir else None,
        device=device,
        stages=[s.strip() for s in stages.split(",") if s.strip()] if stages else None,
        show_progress=progress,
    )
    res = run_pipeline(cfg)
    for name, st in res.stages.items():
        parts = [f"{len(st.ran)} ran", f"{len(st.skipped)} up to date"]
        if st.adopted:
            parts.append(f"{len(st.adopted)} adopted")
        typer.echo(f"{name:<12} {', '.join(parts)} ({st.seconds:.1f} s)")
    typer.echo(f"done in {res.seconds:.1f} s: {cfg.out}" + (f"; report: {res.report}" if res.report else ""))
