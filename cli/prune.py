"""``attn prune structured|magnitude``: s-pruning and m-pruning of fine-tuned runs, per (task, seed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, DeviceOpt, SeedsOpt, handle_errors

prune_app = typer.Typer(
    no_args_is_help=True, help="Prune fine-tuned runs: s-pruning (heads + MLPs) or m-pruning (weights)."
)

RunOpt = Annotated[
    Path, typer.Option("--run", "-r", help="Run folder made by 'attn finetune --out' (holds TASK/seed_S/finetuned/).")
]
TaskOpt = Annotated[str, typer.Option("--task", "-t", help="GLUE task, e.g. MRPC.")]
MaxDevOpt = Annotated[
    Optional[int],
    typer.Option(
        "--max-dev-examples", help="Score and rank on a seeded random subsample of the dev set (default: all of it)."
    ),
]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="torch CPU threads (default: torch's choice).")]


def register(app: typer.Typer) -> None:
    app.add_typer(prune_app, name="prune")


def _seed_dirs(run: Path, task: str, seeds: str) -> list[tuple[int, Path]]:
    from attnpatterns.data import get_task
    from attnpatterns.errors import UserError
    from attnpatterns.run.layout import RunLayout, SeedLayout
    from cli.common import parse_seeds

    spec = get_task(task)
    if not Path(run).is_dir():
        raise UserError(f"{run}: no such run folder; run 'attn finetune --out {run}' first.")
    out = []
    for seed in parse_seeds(seeds):
        d = RunLayout(run).seed_dir(spec.name, seed)
        if not SeedLayout(d).finetuned.is_dir():
            raise UserError(
                f"{d / 'finetuned'}: missing; fine-tune it first: "
                f"attn finetune --task {spec.name} --seeds {seed} --out {run}"
            )
        out.append((seed, d))
    return out


FloorOpt = Annotated[
    str,
    typer.Option(
        "--floor",
        help="none: the study's rule (score >= 0.9 x full). majority: a mask must also score strictly above "
        "the majority class on the same dev examples (not in the study; for fine-tunes whose 0.9 x score is below the "
        "majority baseline, where the study's rule lets pruning remove everything).",
    ),
]


def _threads(threads: Optional[int]) -> None:
    from cli.common import apply_threads

    apply_threads(threads)


@prune_app.command("structured")
@handle_errors
def structured_cmd(
    task: TaskOpt,
    run: RunOpt,
    seeds: SeedsOpt = "1337,42,86,71,166",
    max_dev_examples: MaxDevOpt = None,
    running_total: Annotated[
        bool,
        typer.Option(
            "--running-total",
            help="Sum |g_1|, |g_1+g_2|, ... as the authors' code did (gate gradient never zeroed); "
            "default: the published formula, sum of per-batch |g|.",
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Dev batch size of the importance pass.")] = 32,
    floor: FloorOpt = "none",
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = None,
) -> None:
    """s-pruning: mask the 10% least important heads and 1 MLP per step while the dev score stays >= 0.9 x
    full, then heads only (half as many per step), then MLPs only (1 per step). Importance = summed |dL/d gate|.

    Writes RUN/TASK/seed_S/structured/: iter_KK.json (mask, score, importance of every iteration),
    mask.json (kept heads and MLPs), head_mask.npy + mlp_mask.npy (the authors' layout), summary.json.
    """
    from attnpatterns.prune.structured import SPruneConfig, s_prune

    _threads(threads)
    cfg = SPruneConfig(
        max_dev_examples=max_dev_examples,
        running_total=running_total,
        batch_size=batch_size,
        floor=floor.strip().lower(),
    )
    from attnpatterns.data.loaders import require_data

    dirs = _seed_dirs(run, task, seeds)
    require_data(task, data_dir, ("dev",))  # before the model loads
    for seed, d in dirs:
        s = s_prune(d, cfg, device=device, data_dir=str(data_dir) if data_dir else None)
        state = "skipped (done)" if s["skipped"] else f"{s['seconds']:.0f} s"
        typer.echo(
            f"{s['task']} seed {seed}: {s['heads_kept']}/{s['num_layers'] * s['num_heads']} heads, "
            f"{s['mlps_kept']}/{s['num_layers']} MLPs kept, {s['main_metric']} {s['score']:.4f} "
            f"(full {s['full_score']:.4f}) [{state}] -> {d / 'structured'}"
        )


@prune_app.command("magnitude")
@handle_errors
def magnitude_cmd(
    task: TaskOpt,
    run: RunOpt,
    seeds: SeedsOpt = "1337,42,86,71,166",
    max_dev_examples: MaxDevOpt = None,
    max_steps: Annotated[int, typer.Option("--max-steps", help="At most this many 10% steps (the study: 10).")] = 10,
    floor: FloorOpt = "none",
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = None,
) -> None:
    """m-pruning: remove 10% of the remaining prunable weights (Q, K, V, attention output, intermediate and
    output dense; not the output dense bias) by global magnitude per step, at most 10 steps, while the dev
    score stays >= 0.9 x full.

    Writes RUN/TASK/seed_S/magnitude/: iter_KK.json (kept fraction, score), mask.safetensors (the final
    weight masks, name -> bool), summary.json.
    """
    from attnpatterns.prune.magnitude import MPruneConfig, m_prune

    _threads(threads)
    cfg = MPruneConfig(max_dev_examples=max_dev_examples, max_steps=max_steps, floor=floor.strip().lower())
    from attnpatterns.data.loaders import require_data

    dirs = _seed_dirs(run, task, seeds)
    require_data(task, data_dir, ("dev",))  # before the model loads
    for seed, d in dirs:
        s = m_prune(d, cfg, device=device, data_dir=str(data_dir) if data_dir else None)
        state = "skipped (done)" if s["skipped"] else f"{s['seconds']:.0f} s"
        typer.echo(
            f"{s['task']} seed {seed}: {s['kept_fraction']:.3f} of prunable weights kept after "
            f"{s['final_step']} steps, {s['main_metric']} {s['score']:.4f} (full {s['full_score']:.4f}) "
            f"[{state}] -> {d / 'magnitude'}"
        )
