"""``attn sweep``: the study's grid as independent jobs, run here or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, DeviceOpt, ModelOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_cmd)


@handle_errors
def sweep_cmd(
    tasks: Annotated[
        Optional[str],
        typer.Option(
            "--tasks", help="Comma-separated GLUE tasks, e.g. CoLA,SST-2,MRPC,STS-B,RTE. Default: the profile's."
        ),
    ] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option("--seeds", help="Comma-separated seeds, e.g. 1337,42,86,71,166. Default: the profile's."),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            "-x",
            help="local: the jobs one after the other in this "
            "process. processes: --workers jobs at once in processes of this machine (e.g. sharing one GPU). "
            "ray: each job a Ray task on the cluster at --address.",
        ),
    ] = "local",
    workers: Annotated[
        int, typer.Option("--workers", help="Processes at once with --executor processes (and in --plan).")
    ] = 1,
    costs: Annotated[
        Optional[Path],
        typer.Option(
            "--costs",
            help="A cost table (JSON: measured seconds per job kind and task on the device, see "
            "docs/scale.md): submit the jobs longest remaining chain first, and with --plan print the schedule.",
        ),
    ] = None,
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print which jobs share the device in which order and how long the whole grid takes (needs "
            "--costs; --workers processes; --budget seconds), then exit.",
        ),
    ] = False,
    budget: Annotated[
        Optional[float], typer.Option("--budget", help="With --plan: the device time available, in seconds.")
    ] = None,
    address: Annotated[
        Optional[str],
        typer.Option(
            "--address",
            help="The Ray cluster for --executor ray: HEAD_IP:PORT "
            "(the port of 'ray start --head', on a cluster node) or "
            "ray://HEAD_IP:10001 (Ray Client, from anywhere; needs "
            "pip install 'ray[client]'). Default: $RAY_ADDRESS.",
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="The run folder, shared by every worker (default: "
            "runs/<profile>). The same layout as 'attn run': a later 'attn run' "
            "over it skips what the sweep made.",
        ),
    ] = None,
    model: ModelOpt = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="quick: a smoke run (subsampled training, 1 epoch). paper: "
            "the study's settings (full training sets, 3 epochs).",
        ),
    ] = "quick",
    max_train_examples: Annotated[
        Optional[int],
        typer.Option(
            "--max-train-examples", help="Subsample every training set to N examples (seeded); overrides the profile."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "cpu",
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            help="Retries of a failed job (a UserError is not retried); "
            "each failed attempt's error is kept in OUT/.sweep/jobs/.",
        ),
    ] = 2,
    cpus_per_job: Annotated[
        float, typer.Option("--cpus-per-job", help="CPUs each Ray task asks for (and torch threads it uses).")
    ] = 1.0,
    gpus_per_job: Annotated[
        Optional[float],
        typer.Option(
            "--gpus-per-job",
            help="GPUs each training job asks for; "
            "a fraction packs several on one GPU. Default: 1 with "
            "--device cuda, else 0.",
        ),
    ] = None,
    threads: Annotated[
        Optional[int],
        typer.Option(
            "--threads", help="torch CPU threads per job (default: --cpus-per-job on Ray, torch's choice locally)."
        ),
    ] = None,
    analysis: Annotated[
        bool,
        typer.Option(
            "--analysis/--no-analysis",
            help="Also classify the maps and write the report (jobs classify, distribution, report).",
        ),
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the jobs (done or to run, dependencies, resources) and exit.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar over the jobs.")
    ] = True,
) -> None:
    """Run the study's grid as independent jobs over one shared run folder: per (task, seed) the fine-tuning and both
    prunings, the super-survivors per task, every subnetwork's pruned and re-fine-tuned evaluation, and the
    classification and report.

    Each job declares its inputs and outputs and is done when its outputs exist with a done marker (OUT/.sweep/jobs/); a
    rerun submits only what is missing. A failed job is retried (--retries), its error kept in its marker, and the jobs
    that depend on it wait for the next run. With --executor ray every job is a Ray task with a CPU/GPU request, on a
    cluster started with 'ray start'; the results are the same as with the local executor. --dry-run lists the jobs.
    """
    from attnpatterns.errors import UserError
    from attnpatterns.sweep.driver import EXECUTORS, SweepConfig, job_states, plan, run_sweep
    from cli.common import parse_seeds

    if executor not in EXECUTORS:
        raise UserError(f"unknown --executor '{executor}'; use {' or '.join(EXECUTORS)}.")
    if address and executor != "ray":
        raise UserError("--address is for --executor ray; add --executor ray or leave --address out.")
    from cli.common import check_threads

    check_threads(threads)
    cfg = SweepConfig(
        out=out if out is not None else Path("runs") / profile,
        tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
        seeds=parse_seeds(seeds) if seeds else None,
        profile=profile,
        model=model,
        data_dir=str(data_dir) if data_dir else None,
        device=device,
        max_train_examples=max_train_examples,
        analysis=analysis,
        retries=retries,
        cpus_per_job=cpus_per_job,
        gpus_per_job=gpus_per_job,
        threads=threads,
    )
    if plan_only:
        from attnpatterns.sweep.device_plan import describe, load_costs, simulate

        if costs is None:
            raise UserError("--plan needs --costs (a cost table of measured seconds per job kind; docs/scale.md).")
        table = load_costs(costs)
        todo = [job for job, done in job_states(cfg, plan(cfg)) if not done]
        typer.echo(describe(simulate(todo, table, workers), table, budget, todo))
        return
    if dry_run:
        states = job_states(cfg, plan(cfg))
        for job, done in states:
            res = f"cpu={job.num_cpus:g} gpu={job.num_gpus:g}"
            deps = (
                f"  after {len(job.deps)} job(s)"
                if len(job.deps) > 3
                else (f"  after {', '.join(job.deps)}" if job.deps else "")
            )
            typer.echo(f"{'done' if done else 'todo':<5} {job.id:<44} {res}{deps}")
        n_todo = sum(1 for _, d in states if not d)
        typer.echo(f"{len(states)} job(s): {n_todo} to run, {len(states) - n_todo} done ({cfg.out})")
        return
    if workers != 1 and executor != "processes":
        raise UserError("--workers is for --executor processes; add --executor processes or leave --workers out.")
    res = run_sweep(cfg, executor=executor, address=address, show_progress=progress, workers=workers, costs=costs)
    counts = {s: len(res.ids(s)) for s in ("ran", "done", "failed", "blocked")}
    typer.echo(
        f"{counts['ran']} ran, {counts['done']} done already, {counts['failed']} failed, "
        f"{counts['blocked']} waiting on a failed job ({res.seconds:.1f} s): {cfg.out}"
    )
    if not res.ok:
        for jid in res.ids("failed"):
            err = (res.attempts.get(jid) or [{}])[-1].get("error", "")
            typer.echo(f"failed: {jid}: {' '.join(str(err).split())[:300]}", err=True)
        typer.echo(
            f"error: {counts['failed']} job(s) failed (details in {cfg.out}/.sweep/jobs/); fix the cause and "
            "rerun the same command: only what is missing runs.",
            err=True,
        )
        raise typer.Exit(1)
