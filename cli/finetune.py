"""``attn finetune``: fine-tune a model on a GLUE task for several seeds, one run folder per (task, seed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, DeviceOpt, ModelOpt, SeedsOpt, handle_errors

ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="torch CPU threads (default: torch's choice).")]


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune_cmd)


@handle_errors
def finetune_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="GLUE task, e.g. MRPC, RTE, CoLA.")],
    seeds: SeedsOpt = "1337,42,86,71,166",
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder; each seed goes to OUT/TASK/seed_S/finetuned/.")
    ] = Path("runs/default"),
    model: ModelOpt = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs (the study: 3).")] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Training batch size (the study: 32).")] = 32,
    lr: Annotated[
        float, typer.Option("--lr", help="Peak learning rate, linear decay to 0, no warmup (the study: 2e-5).")
    ] = 2e-5,
    max_length: Annotated[int, typer.Option("--max-length", help="Maximum tokens per input (the study: 128).")] = 128,
    max_train_examples: Annotated[
        Optional[int],
        typer.Option(
            "--max-train-examples",
            help="Train on a random subsample of this many examples (seeded by the run's seed); default: all.",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = None,
    checkpoint_minutes: Annotated[
        float,
        typer.Option(
            "--checkpoint-minutes",
            help="Minutes of training between resumable checkpoints (.checkpoint.pt in the run folder, deleted when "
            "the run is done); rerun the same command after an interruption to continue. 0: after every step.",
        ),
    ] = 10.0,
) -> None:
    """Fine-tune with the study's hyperparameters (AdamW eps 1e-8, no decay on bias/LayerNorm, linear
    schedule, no warmup, grad clip 1.0), once per seed.

    Each run writes OUT/TASK/seed_S/finetuned/ (model.safetensors, config, tokenizer, run.json,
    metrics.json). A finished run with the same options is skipped; an interrupted one continues from its
    last checkpoint; a folder holding a run of another model or config is an error.
    """
    from attnpatterns.data import get_task
    from attnpatterns.data.loaders import require_data
    from cli.common import parse_seeds

    spec = get_task(task)
    seed_list = parse_seeds(seeds)
    require_data(spec, data_dir)  # before torch and the model: no data is a one-line error within seconds
    from attnpatterns.finetune import FinetuneConfig, finetune
    from attnpatterns.run.layout import RunLayout
    from cli.common import apply_threads

    apply_threads(threads)
    for seed in seed_list:
        cfg = FinetuneConfig(
            task=spec.name,
            seed=seed,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            max_length=max_length,
            max_train_examples=max_train_examples,
            device=device,
            data_dir=str(data_dir) if data_dir else None,
            checkpoint_minutes=checkpoint_minutes,
        )
        res = finetune(cfg, RunLayout(out).seed(spec.name, seed).finetuned)
        state = "skipped (done)" if res.skipped else f"{res.train_seconds:.0f} s"
        typer.echo(f"{spec.name} seed {seed}: {spec.main_key} = {res.score:.4f} [{state}] -> {res.out_dir}")
