"""``attn classify``: pattern types of chosen heads' maps on a task's dev examples."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, DeviceOpt, ModelOpt, handle_errors


class KindChoice(str, Enum):
    raw = "raw"
    normed = "normed"
    both = "both"


def register(app: typer.Typer) -> None:
    app.command("classify")(classify_cmd)


@handle_errors
def classify_cmd(
    task: Annotated[str, typer.Option("--task", help="A GLUE task (e.g. MRPC); its dev examples are used.")],
    heads: Annotated[
        Optional[Path],
        typer.Option(
            "--heads",
            help="Head set: the JSON of 'attn survivors' (e.g. super-survivors.json) or a plain JSON list of [layer, "
            "head] pairs. Default: all heads.",
        ),
    ] = None,
    model: ModelOpt = None,
    n: Annotated[
        int,
        typer.Option("--n", help="How many dev examples (the first n with at least the classifier's minimum length)."),
    ] = 100,
    kind: Annotated[
        KindChoice, typer.Option("--kind", help="Which maps to classify: raw, normed or both.")
    ] = KindChoice.both,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            help="Folder for per_head.csv, pooled.csv, predictions.csv and classify.json. Default: classify/<TASK>/.",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    classifier_raw: Annotated[
        Optional[Path],
        typer.Option(
            "--classifier-raw", help="Raw-map classifier .safetensors. Default: models/pattern-cnn-raw.safetensors."
        ),
    ] = None,
    classifier_normed: Annotated[
        Optional[Path],
        typer.Option(
            "--classifier-normed",
            help="Normed-map classifier .safetensors. Default: models/pattern-cnn-normed.safetensors.",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per forward pass.")] = 32,
    max_length: Annotated[int, typer.Option("--max-length", help="Maximum tokens per input.")] = 128,
    device: DeviceOpt = "cpu",
) -> None:
    """Classify the attention maps of the given heads (or all heads) on n dev examples of a task.

    Writes per-head counts of the five pattern types and their pooled distribution (CSV and JSON)
    and prints the pooled table.
    """
    from attnpatterns.classifier.heads import classify_heads, pooled_table, write_outputs
    from cli.classifier import format_rows

    classifiers = {k: v for k, v in (("raw", classifier_raw), ("normed", classifier_normed)) if v is not None}
    if heads is not None:
        _say_which_model(heads, model)
    from attnpatterns.data.loaders import require_data

    require_data(task, data_dir, ("dev",))  # before the model loads
    res = classify_heads(
        task,
        heads,
        model=model,
        n=n,
        kind=kind.value,
        data_dir=data_dir,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        classifiers=classifiers,
        show_progress=True,
    )
    out = out or Path("classify") / res.task
    files = write_outputs(res, out)
    typer.echo(
        f"{res.task}: {len(res.example_ids)} dev examples x {len(res.heads)} heads ({res.meta['heads_from']}), "
        f"model {res.model}"
    )
    header = ["pattern"]
    for k in res.kinds:
        header += [f"{k} maps", f"{k} share", f"{k} 95% CI (examples)"]
    typer.echo(format_rows(pooled_table(res), header))
    typer.echo(f"wrote {', '.join(str(f) for f in files)}")


def _say_which_model(heads: Path, model) -> None:
    """A head set kept by fine-tuned runs is classified in the model it names unless --model says otherwise: say so
    on stderr, with the option that picks a fine-tuned model, so the choice is never silent."""
    from attnpatterns.io import read_json
    from attnpatterns.models import model_id

    try:
        hs = read_json(heads)
    except Exception:  # noqa: BLE001 - the head-set reader gives the one-line error in a moment
        return
    if not isinstance(hs, dict):  # a plain list of pairs names no model
        return
    used = model_id(model)
    task, seeds = hs.get("task"), hs.get("seeds") or ([hs["seed"]] if hs.get("seed") is not None else [])
    if model is None and seeds:
        where = f"RUN/{task or 'TASK'}/seed_{seeds[0]}/finetuned"
        typer.echo(
            f"note: {heads} holds heads kept by fine-tuned {task or ''} runs (seeds {', '.join(map(str, seeds))}); "
            f"their maps are classified in the pre-trained {used}. Pass --model {where} for a fine-tuned model's maps.",
            err=True,
        )
    elif hs.get("model") and model is not None and hs["model"] not in (str(model), used):
        typer.echo(f"note: {heads} was made with {hs['model']}; classifying the maps of {used} (--model).", err=True)
