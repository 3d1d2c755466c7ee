"""``attn``: the typer app. Command groups live in their own modules and register themselves here."""

from __future__ import annotations

import importlib
import os

import typer
from typer.core import TyperGroup


class WorkflowOrder(TyperGroup):
    """Commands in the order of the workflow (COMMAND_MODULES), groups and single commands alike."""

    def list_commands(self, ctx):  # type: ignore[override]
        order = {name: i for i, name in enumerate(COMMAND_MODULES)}
        return sorted(self.commands, key=lambda name: (order.get(name, len(order)), name))


app = typer.Typer(
    name="attn",
    cls=WorkflowOrder,
    # plain text: help paragraphs are re-flowed to the terminal's width (the rich mode keeps the source's line
    # breaks and reads [layer, head] as markup)
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Are the heads that pruning keeps the ones with interpretable attention patterns? "
    "Maps, annotation, pattern classifier, fine-tuning, pruning, statistics and reports for BERT-family models.",
)

# Each module defines register(app). Listed here so that the order of `attn --help` is the pipeline's order.
COMMAND_MODULES = [
    "maps",  # 1. maps of a model
    "annotate",  # 2. label maps in Label Studio
    "classifier",  # 3. train / evaluate the pattern classifier
    "finetune",  # 4. the pruning study: fine-tune, prune, survivors, statistics, subnetworks, the table
    "prune",
    "survivors",
    "stats",
    "subnetworks",
    "table",
    "classify",  # 5. pattern distributions of any head set
    "run",  # all of it in one run folder, and its report
    "report",
    "paper",  # the run beside the study's bert-base numbers
    "sweep",  # the same grid on a cluster
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
