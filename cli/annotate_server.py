"""``attn annotate`` serving commands: Label Studio's virtualenv (setup), a local Label Studio (serve), the
organisation's invite link (invite), the pattern classifier as an ML backend (backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import handle_errors


@handle_errors
def setup_cmd() -> None:
    """Create Label Studio's own virtualenv and a migrated empty database under the cache, once.

    'serve' does this itself when needed; running it ahead (e.g. in CI) keeps that wait out of later steps.
    The cache is $ATTN_CACHE_DIR, default ~/.cache/attnpatterns.
    """
    import time

    from attnpatterns.annotate import ls_install

    t0 = time.monotonic()
    fresh = not ls_install.venv_ready()
    exe = ls_install.ensure_venv()
    t1 = time.monotonic()
    tpl = ls_install.template_db(exe)
    t2 = time.monotonic()
    typer.echo(
        f"Label Studio {ls_install.installed_version()} in {ls_install.venv_dir()} "
        f"({'installed in ' + format(t1 - t0, '.0f') + ' s' if fresh else 'already there'}); "
        f"empty database {tpl} ({t2 - t1:.0f} s)"
    )


@handle_errors
def serve_cmd(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8080,
    data_dir: Annotated[
        Optional[Path],
        typer.Option("--data-dir", help="Label Studio's database and media. Default: <cache>/labelstudio-data."),
    ] = None,
    username: Annotated[
        Optional[str],
        typer.Option(
            "--username",
            help="Login e-mail of the user. Default: $LABEL_STUDIO_USERNAME or annotator@localhost.localdomain.",
        ),
    ] = None,
) -> None:
    """Start a local Label Studio on 127.0.0.1 (Ctrl-C stops it).

    The first run creates Label Studio's own virtualenv under $ATTN_CACHE_DIR (default ~/.cache/attnpatterns;
    a few minutes) and its database. The user is created at the first start: its password is
    $LABEL_STUDIO_PASSWORD (or a random one, shown once), its API token $LABEL_STUDIO_API_KEY (or a random one,
    shown in Label Studio under Account & Settings > Legacy Token). Secrets reach the server through its
    environment only.
    """
    import os
    import secrets
    import signal
    import time

    from attnpatterns.annotate import server as srv

    cfg = srv.ServerConfig(
        data_dir=data_dir or srv.default_data_dir(),
        port=port,
        username=username or os.environ.get("LABEL_STUDIO_USERNAME") or srv.DEFAULT_USER,
        password=os.environ.get("LABEL_STUDIO_PASSWORD") or None,
        token=os.environ.get("LABEL_STUDIO_API_KEY") or None,
    )
    first = not srv.user_exists_hint(cfg)
    shown_password = None
    if first and not cfg.password:
        cfg.password = shown_password = secrets.token_urlsafe(12)
    if not srv.venv_ready():
        typer.echo(f"creating Label Studio's virtualenv in {srv.venv_dir()} (one time, a few minutes) ...", err=True)
    typer.echo(f"starting Label Studio (data in {cfg.data_dir}) ...", err=True)
    t0 = time.monotonic()
    server = srv.start(cfg)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Ctrl-C stops it even when started from a shell that ignores SIGINT (a background job, nohup)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    typer.echo(
        f"Label Studio is running at {server.url} (ready after {time.monotonic() - t0:.0f} s; log: {server.log_path})"
    )
    typer.echo(f"  log in as: {cfg.username}")
    if shown_password:
        typer.echo(f"  password:  {shown_password}  (shown once; set LABEL_STUDIO_PASSWORD to choose it next time)")
    elif first:
        typer.echo("  password:  the value of $LABEL_STUDIO_PASSWORD")
    else:
        typer.echo("  password:  the one set at the first start (LABEL_STUDIO_PASSWORD then)")
    if first and cfg.token:
        typer.echo("  API key:   the value of $LABEL_STUDIO_API_KEY (set for this user)")
    else:
        typer.echo("  API key:   Account & Settings > Legacy Token in Label Studio; export it as LABEL_STUDIO_API_KEY")
    typer.echo(f"  then:      export LABEL_STUDIO_URL={server.url}; attn annotate push --kind raw --task MRPC --n 50")
    typer.echo("Press Ctrl-C to stop.")
    try:
        while server.running():
            time.sleep(0.5)
        typer.echo(f"error: Label Studio exited (code {server.proc.returncode}); see {server.log_path}", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping Label Studio ...", err=True)
    finally:
        server.stop()
    typer.echo("stopped.", err=True)


@handle_errors
def invite_cmd() -> None:
    """Print the sign-up link of the Label Studio organisation: each annotator of a group opens it once and chooses
    an e-mail and password; their labels are then kept apart by user (pull, agreement). Needs LABEL_STUDIO_API_KEY."""
    from attnpatterns.annotate.labelstudio import invite_link

    typer.echo(invite_link())


@handle_errors
def backend_cmd(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 9090,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Interface to listen on. The backend has no authentication: keep the default 127.0.0.1 unless the "
            "network is trusted.",
        ),
    ] = "127.0.0.1",
    models: Annotated[
        Optional[Path],
        typer.Option(
            "--models",
            help="Folder of the classifiers it starts from (pattern-cnn-<kind>.safetensors) and where retrained ones "
            "are written beside them. Default: the shipped models/ ($ATTN_CLASSIFIER_DIR overrides).",
        ),
    ] = None,
    data: Annotated[
        Optional[Path],
        typer.Option(
            "--data",
            help="Annotated set whose labels join the project's when retraining (the project's label wins on a map "
            "both hold).",
        ),
    ] = Path("annotations"),
    base: Annotated[
        bool, typer.Option("--base/--no-base", help="--no-base: retrain on the project's labels alone.")
    ] = True,
    recipe: Annotated[
        Optional[str],
        typer.Option(
            "--recipe",
            help="Recipe of retraining: one of attn classifier train's --recipe choices. Default: the shipped one.",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--shipped",
            help="--resume: start from the newest retrained model in --models instead of the shipped one.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of retraining.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads for retraining (at least 1).")] = 2,
) -> None:
    """Serve the pattern classifier to Label Studio as an ML backend (predictions with scores; retraining on request).

    Connect it with 'attn annotate push --backend http://127.0.0.1:9090' (or in the project's Settings > Model).
    Label Studio's 'Start training' (or POST /train) refits the recipe on the project's consensus labels plus --data
    in the background; the new model is written beside the shipped one as
    pattern-cnn-<kind>-retrained-<time>.safetensors
    and serves under a new model version. Retraining reads the project through LABEL_STUDIO_URL and
    LABEL_STUDIO_API_KEY from the environment. Ctrl-C stops it.
    """
    import ipaddress
    import logging

    import uvicorn

    from attnpatterns.annotate.backend import PatternBackend, make_app
    from attnpatterns.errors import UserError
    from cli.common import check_threads

    check_threads(threads)
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a TCP port; use 1024..65535.")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        logging.getLogger("attnpatterns").warning(
            "the ML backend listens on %s without authentication; anyone who "
            "reaches it can read predictions and start training",
            host,
        )
    from attnpatterns.annotate.server import port_free

    if loopback and not port_free(port, host if host != "localhost" else "127.0.0.1"):
        raise UserError(f"port {port} on {host} is in use; stop what runs there or pass another --port.")
    typer.echo("loading the classifiers ...", err=True)
    be = PatternBackend(models, data if base else None, recipe=recipe, seed=seed, threads=threads, resume=resume)
    typer.echo(
        f"ML backend at http://{host}:{port} (model version {be.model_version()}; "
        + ", ".join(f"{k}: {p.name}" for k, p in sorted(be.active.items()))
        + ")"
    )
    typer.echo(f"  connect it: attn annotate push --backend http://{host}:{port} ...  (Ctrl-C stops it)")
    uvicorn.run(make_app(be), host=host, port=port, log_level="warning", access_log=False)
