"""``attn``: the typer app. Command groups live in their own modules and register themselves here."""

from __future__ import annotations

import importlib
import os

import typer

app = typer.Typer(
    name="attn",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Are the heads that pruning keeps the ones with interpretable attention patterns? "
    "Maps, annotation, pattern classifier, fine-tuning, pruning, statistics and reports for BERT-family models.",
)

# Each module defines register(app). Listed here so that the order of `attn --help` is the pipeline's order.
COMMAND_MODULES = [
    "maps",
    "finetune",
    "prune",
    "survivors",
    "stats",
    "subnetworks",
    "table",
    "annotate",
    "classifier",
    "classify",
    "run",
    "report",
    "sweep",
]


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="More log output.")) -> None:
    from cli.common import setup_logging

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    setup_logging(verbose)


for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"cli.{_name}")
    except ModuleNotFoundError as _e:
        if _e.name == f"cli.{_name}":
            continue
        raise
    _mod.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
