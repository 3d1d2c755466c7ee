"""A local Label Studio server in its own virtual environment (``annotate/ls_install.py``, re-exported here).

The server listens on 127.0.0.1 only, keeps its database and media in a local data folder, and is
started with the user's e-mail, password and API token in its *environment* (Label Studio reads
``LABEL_STUDIO_USERNAME``, ``LABEL_STUDIO_PASSWORD`` and ``LABEL_STUDIO_USER_TOKEN``), never on its
command line, where other users of the machine could read them. Legacy tokens are enabled so the
token works as ``Authorization: Token <key>`` (what the SDK sends).

``label-studio --version`` is never called: in Label Studio 1.x it also starts a server on all
interfaces.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from attnpatterns.annotate.ls_install import (  # noqa: F401 (re-exported)
    LS_REQUIREMENT,
    cache_dir,
    default_data_dir,
    ensure_venv,
    installed_version,
    template_db,
    venv_dir,
    venv_ready,
)
from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_USER = "annotator@localhost.localdomain"
# Label Studio's default SSRF-banned subnets (core/utils/io.py validate_ip) less 127.0.0.0/8 and ::1/128
BANNED_SUBNETS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "233.252.0.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::ffff:0:0/96",
    "::ffff:0:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001:0000::/32",
    "2001:20::/28",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)


def free_port(host: str = HOST) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(port: int, host: str = HOST) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError:
            return False
    # Label Studio itself probes 'localhost' and silently moves to the next port when it is taken
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(0.5)
        return s.connect_ex(("localhost", port)) != 0


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=default_data_dir)
    port: int = DEFAULT_PORT
    username: str = DEFAULT_USER
    password: str | None = None  # None: use the existing user's password (set at the first start)
    token: str | None = None  # None: the user's existing token (or a random one on the first start)
    log_path: Path | None = None  # None: <data_dir>/server.log
    venv: Path | None = None

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if not (0 < int(self.port) < 65536):
            raise UserError(f"--port {self.port} is not a TCP port; use 1024..65535.")
        if "@" not in self.username:
            raise UserError(
                f"--username '{self.username}' is not an e-mail address; Label Studio logs users in by e-mail."
            )
        if self.token is not None and len(self.token) <= 5:
            raise UserError("the API key is too short; Label Studio ignores tokens of 5 characters or fewer.")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def server_env(cfg: ServerConfig) -> dict:
    """The server's environment: secrets go here, never on the command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_"))}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(cfg.data_dir),
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",  # no call to pypi.org at start
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        COLLECT_ANALYTICS="false",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        # the ML backend ('attn annotate backend') runs beside it on 127.0.0.1, which Label Studio's SSRF guard
        # blocks by default: keep the guard, with every default banned subnet except the loopback ones
        USE_DEFAULT_BANNED_SUBNETS="false",
        USER_ADDITIONAL_BANNED_SUBNETS=",".join(BANNED_SUBNETS),
        LABEL_STUDIO_USERNAME=cfg.username,
        PYTHONUNBUFFERED="1",
    )
    if cfg.password:
        env["LABEL_STUDIO_PASSWORD"] = cfg.password
    if cfg.token:
        env["LABEL_STUDIO_USER_TOKEN"] = cfg.token
    return env


class Server:
    """A running Label Studio process; :meth:`stop` ends it (also as a context manager)."""

    def __init__(self, proc: subprocess.Popen, cfg: ServerConfig, log_path: Path):
        self.proc = proc
        self.cfg = cfg
        self.log_path = log_path

    @property
    def url(self) -> str:
        return self.cfg.url

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM to the server's process group (it runs in a session of its own, workers included), then SIGKILL
        after ``timeout`` seconds; returns the exit code."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(self.proc.pid, sig)  # started with start_new_session: its group id is its pid
            else:
                self.proc.send_signal(sig)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(cfg: ServerConfig, wait: bool = True, timeout: float = 900, use_template: bool = True) -> Server:
    """Start Label Studio on 127.0.0.1:``cfg.port`` (creating its venv first if needed).

    With ``wait`` the call returns once ``/health`` answers; a server that exits or does not answer
    within ``timeout`` seconds gives a UserError with the last line of its log.
    """
    exe = ensure_venv(cfg.venv)
    if not port_free(cfg.port):
        raise UserError(f"port {cfg.port} on {HOST} is in use; stop what runs there or pass another --port.")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = cfg.data_dir / "label_studio.sqlite3"
    if use_template and not db.exists():
        shutil.copyfile(template_db(exe), db)
    log_path = cfg.log_path or (cfg.data_dir / "server.log")
    cmd = [
        str(exe),
        "start",
        "--no-browser",
        "--internal-host",
        HOST,
        "--port",
        str(cfg.port),
        "--data-dir",
        str(cfg.data_dir),
        "--enable-legacy-api-token",
        "--log-level",
        "WARNING",
    ]
    fh = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            cmd,
            env=server_env(cfg),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(cfg.data_dir),
        )
    finally:
        fh.close()
    server = Server(proc, cfg, log_path)
    if wait:
        try:
            wait_healthy(server, timeout)
        except BaseException:
            server.stop()
            raise
    return server


def wait_healthy(server: Server, timeout: float = 900) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.running():
            raise UserError(
                f"Label Studio exited (code {server.proc.returncode}) before answering: "
                f"{last_log_line(server.log_path)}; see {server.log_path}."
            )
        try:
            if requests.get(server.url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise UserError(f"Label Studio at {server.url} did not answer within {timeout:.0f} s; see {server.log_path}.")


def last_log_line(path: Path) -> str:
    try:
        lines = [
            ln.strip() for ln in Path(path).read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()
        ]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no log"


def user_exists_hint(cfg: ServerConfig) -> bool:
    """Whether the data folder already holds a database (so the user was created at an earlier start)."""
    return (cfg.data_dir / "label_studio.sqlite3").is_file()


@dataclass
class Credentials:
    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)


def start_throwaway(data_dir: str | os.PathLike, timeout: float = 900) -> tuple[Server, Credentials]:
    """A server on a free port with a fresh data folder and a random user, password and token (for tests
    and demos). The secrets live in memory and in the server's environment only."""
    import secrets

    creds = Credentials(
        username="tester@localhost.localdomain", password=secrets.token_urlsafe(12), token=secrets.token_hex(20)
    )
    cfg = ServerConfig(
        data_dir=Path(data_dir), port=free_port(), username=creds.username, password=creds.password, token=creds.token
    )
    return start(cfg, timeout=timeout), creds
