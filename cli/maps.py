"""``attn maps``: raw and weight-normed attention maps of one input or of a task's examples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, DeviceOpt, ModelOpt, handle_errors


def register(app: typer.Typer) -> None:
    app.command("maps")(maps_cmd)


@handle_errors
def maps_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npz to write (written atomically).")],
    text: Annotated[Optional[str], typer.Option("--text", help="One input text.")] = None,
    text_pair: Annotated[Optional[str], typer.Option("--text-pair", help="Second segment of a sentence pair.")] = None,
    task: Annotated[
        Optional[str], typer.Option("--task", help="A GLUE task (e.g. MRPC): maps of its dev examples.")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="With --task: how many dev examples (the first n).")] = 100,
    split: Annotated[str, typer.Option("--split", help="With --task: train or dev.")] = "dev",
    model: ModelOpt = None,
    data_dir: DataDirOpt = None,
    max_length: Annotated[int, typer.Option("--max-length", help="Maximum tokens per input.")] = 128,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    device: DeviceOpt = "cpu",
) -> None:
    """Write raw and weight-normed attention maps to an .npz.

    One input (--text): arrays raw and normed, each (layers, heads, T, T) float32 over the real
    tokens, and tokens. A task (--task): raw_<i>, normed_<i>, tokens_<i> per example and ids.
    """
    from attnpatterns.maps_io import maps_for_task, maps_for_text

    if (text is None) == (task is None):
        from attnpatterns.errors import UserError

        raise UserError("give exactly one of --text or --task.")
    if not str(out).endswith(".npz"):
        from attnpatterns.errors import UserError

        raise UserError(f"--out '{out}' must end in .npz.")
    if text is not None:
        shape = maps_for_text(text, text_pair, out, model=model, max_length=max_length, device=device)
        typer.echo(f"wrote {out}: raw and normed maps {shape}")
    else:
        from attnpatterns.data.loaders import require_data

        require_data(task, data_dir, (split,))  # before the model loads
        count = maps_for_task(
            task,
            out,
            n=n,
            split=split,
            model=model,
            data_dir=data_dir,
            max_length=max_length,
            batch_size=batch_size,
            device=device,
        )
        typer.echo(f"wrote {out}: maps of {count} {task} {split} examples")
