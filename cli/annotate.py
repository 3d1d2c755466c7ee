"""``attn annotate``: a local Label Studio, pushing maps to it, pulling the labels into the dataset.

The sub-app; its commands live in ``cli/annotate_server.py`` (setup, serve, invite, backend) and
``cli/annotate_labels.py`` (push, pull, agreement, sheet, baseline), and are re-exported here.
"""

from __future__ import annotations

import typer

from cli.annotate_labels import (  # noqa: F401 (re-exported)
    KindOpt,
    ProjectOpt,
    agreement_cmd,
    baseline_cmd,
    pull_cmd,
    push_cmd,
    sheet_cmd,
)
from cli.annotate_server import backend_cmd, invite_cmd, serve_cmd, setup_cmd


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        name="annotate",
        no_args_is_help=True,
        add_completion=False,
        help="Annotate attention maps with the five pattern types in a local Label Studio, alone or as a group: "
        "setup, serve, invite, "
        "backend, push, pull, agreement, sheet, baseline. "
        "The API key comes from LABEL_STUDIO_API_KEY (and the URL from LABEL_STUDIO_URL), never from a file.",
    )
    sub.command("setup")(setup_cmd)
    sub.command("serve")(serve_cmd)
    sub.command("invite")(invite_cmd)
    sub.command("backend")(backend_cmd)
    sub.command("push")(push_cmd)
    sub.command("pull")(pull_cmd)
    sub.command("agreement")(agreement_cmd)
    sub.command("sheet")(sheet_cmd)
    sub.command("baseline")(baseline_cmd)
    app.add_typer(sub, name="annotate")
