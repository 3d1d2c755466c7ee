"""``attn subnetworks``: good, random and bad subnetworks of a pruning run, pruned and re-fine-tuned."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, DeviceOpt, SeedsOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("subnetworks")(subnetworks_cmd)


@handle_errors
def subnetworks_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="A GLUE task the run folder holds, e.g. MRPC.")],
    seeds: SeedsOpt,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="structured (s-pruning), magnitude (m-pruning) or super "
            "(super-survivors of the s-pruning masks over --seeds).",
        ),
    ],
    run: Annotated[
        Path, typer.Option("--run", help="The run folder 'attn finetune' and 'attn prune' wrote (runs/NAME).")
    ],
    subnets: Annotated[str, typer.Option("--subnets", help="Which subnetworks, comma-separated.")] = "good,random,bad",
    settings: Annotated[
        str,
        typer.Option(
            "--settings",
            help="pruned (mask on the fine-tuned model), retrained (mask on "
            "the pre-trained weights, fine-tuned again), or both.",
        ),
    ] = "pruned,retrained",
    max_train_examples: Annotated[
        Optional[int],
        typer.Option(
            "--max-train-examples",
            help="Training examples per re-fine-tuning (seeded subsample). Default: as the fine-tuning run.",
        ),
    ] = None,
    max_dev_examples: Annotated[
        Optional[int],
        typer.Option(
            "--max-dev-examples",
            help="Evaluate on a dev subsample seeded by the seed (the same examples as 'attn prune "
            "--max-dev-examples'); the full model and the majority class are scored on it too. "
            "Default: the whole dev set.",
        ),
    ] = None,
    pretrained: Annotated[
        Optional[str],
        typer.Option(
            "--pretrained",
            help="Folder or hub id of the pre-trained weights for 'retrained'. Default: the model the "
            "fine-tuning run names in its run.json.",
        ),
    ] = None,
    keep_checkpoints: Annotated[
        bool,
        typer.Option(
            "--keep-checkpoints/--no-keep-checkpoints",
            help="Keep each re-fine-tuned model.safetensors (about the model's size each).",
        ),
    ] = False,
    super_from: Annotated[
        Optional[str],
        typer.Option(
            "--super-from",
            help="With --method super: the seeds whose s-pruning masks define the super-survivors "
            "(e.g. all 5), when the subnetworks are evaluated on fewer --seeds. Default: --seeds.",
        ),
    ] = None,
    threads: Annotated[
        Optional[int], typer.Option("--threads", help="torch CPU threads (default: torch's choice).")
    ] = None,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "cpu",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Evaluate the good, random and bad subnetworks of one pruning method, pruned and re-fine-tuned.

    good = the pruning result; random and bad = size-matched counterparts drawn with the seed (s-pruning: Bernoulli per
    head and MLP / the pruned components topped up with good ones; m-pruning: random weights / remove the largest
    weights; super: drawn from the in-between / never-kept components).

    pruned = the mask on the fine-tuned model, evaluated on dev; retrained = the mask on the pre-trained weights, a
    fresh classifier under the same seed, fine-tuned again with the fine-tuning run's hyperparameters, the mask fixed.

    Results go to RUN/TASK/seed_S/subnetworks/METHOD/SUBNET/ (mask, pruned.json, retrained.json). Finished results are
    skipped: rerun the same command to continue an interrupted run.
    """
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks
    from cli.common import apply_threads, parse_seeds

    apply_threads(threads)
    cfg = SubnetworkConfig(
        run=run,
        task=task,
        seeds=parse_seeds(seeds),
        method=method.strip().lower(),
        subnets=tuple(x.strip() for x in subnets.split(",") if x.strip()),
        settings=tuple(x.strip() for x in settings.split(",") if x.strip()),
        max_train_examples=max_train_examples,
        max_dev_examples=max_dev_examples,
        pretrained=pretrained,
        device=device,
        data_dir=str(data_dir) if data_dir else None,
        keep_checkpoints=keep_checkpoints,
        super_from=parse_seeds(super_from, "--super-from") if super_from else None,
    )
    results = run_subnetworks(cfg, show_progress=progress)
    done = sum(not r.skipped for r in results)
    typer.echo(f"{cfg.task} {cfg.method}: {done} evaluated, {len(results) - done} done before")
    for r in sorted(results, key=lambda r: (r.subnet, r.setting, r.seed)):
        typer.echo(
            f"  seed {r.seed:>5}  {r.subnet:<6} {r.setting:<9} score {r.score:.4f}  kept {r.size['kept_fraction']:.3f}"
        )
