"""``attn survivors``: the heads and MLPs kept in every seed of one task (super-survivors), as a head-set JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import handle_errors


def register(app: typer.Typer) -> None:
    app.command("survivors")(survivors_cmd)


@handle_errors
def survivors_cmd(
    masks: Annotated[
        Path,
        typer.Option(
            "--masks",
            help="Folder of masks: TASK/seed_S/head_mask.npy + mlp_mask.npy (the authors' layout) or a run "
            "folder (TASK/seed_S/structured/mask.json).",
        ),
    ],
    task: Annotated[str, typer.Option("--task", help="The task folder to read, e.g. MRPC (case ignored).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The head-set JSON to write (atomically), e.g. super-survivors.json.")
    ],
    seeds: Annotated[
        Optional[str],
        typer.Option(
            "--seeds", help="Comma-separated seeds to combine (each must exist). Default: every seed_S folder found."
        ),
    ] = None,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            "-m",
            help="Model id to record in the JSON, checked against the run folder's mask.json files. "
            "Default: the model named by mask.json (none for the authors' .npy masks).",
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="Which components to write: super (kept in every seed), in_between (kept in some seeds, "
            "not all) or never (kept in no seed).",
        ),
    ] = "super",
) -> None:
    r"""Write the components kept in every seed of TASK (AND over seeds) as a head-set JSON with "seeds".

    The output is {"model", "task", "seeds", "num_layers", "num_heads", "heads": \[\[layer, head], ...], "mlps":
    \[layer, ...]}; "mlps" is left out when the masks hold no MLP masks.

    --split in_between or --split never writes one of the other two disjoint sets instead (kept in some seeds but not
    all; kept in none): the pools that size-matched random and bad counterparts are drawn from.
    """
    from attnpatterns.errors import UserError
    from attnpatterns.prune.head_set import write_head_set
    from attnpatterns.prune.survivors import survivors_from_dir
    from cli.common import parse_seeds

    if split not in ("super", "in_between", "never"):
        raise UserError(f"--split '{split}' is not one of super, in_between, never.")
    if out.suffix != ".json":
        raise UserError(f"--out '{out}' must end in .json.")
    seed_list = parse_seeds(seeds) if seeds is not None else None
    ts, found_model = survivors_from_dir(masks, task, seeds=seed_list, model=model)
    hs = ts.head_set(split, model=found_model)
    write_head_set(out, hs)
    c = ts.heads.counts
    msg = (
        f"wrote {out}: {ts.task}, seeds {','.join(map(str, ts.seeds))}: {hs.size} heads ({split}); "
        f"heads super/in-between/never = {c['super']}/{c['in_between']}/{c['never']} of "
        f"{hs.num_layers * hs.num_heads}"
    )
    if ts.mlps is not None:
        m = ts.mlps.counts
        msg += f"; MLPs super/in-between/never = {m['super']}/{m['in_between']}/{m['never']} of {hs.num_layers}"
    typer.echo(msg)
