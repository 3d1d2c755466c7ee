"""Label Studio's own environment under the project's cache, each part made once: the virtualenv and a migrated,
empty database to copy into new data folders.

The ``label-studio`` package pins Django and many other packages that clash with this project's dependencies, so it
lives in a separate virtualenv under the project's cache (``$ATTN_CACHE_DIR`` or ``~/.cache/attnpatterns``):
``labelstudio-venv/``. It is created once (a few minutes), then reused. ``label-studio --version`` is never called:
in Label Studio 1.x it also starts a server on all interfaces.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")

LS_REQUIREMENT = "label-studio>=1.20,<2"
_STAMP = ".attn-installed"


def cache_dir() -> Path:
    """``$ATTN_CACHE_DIR`` or ``~/.cache/attnpatterns``."""
    env = os.environ.get("ATTN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "attnpatterns"


def venv_dir() -> Path:
    return cache_dir() / "labelstudio-venv"


def default_data_dir() -> Path:
    return cache_dir() / "labelstudio-data"


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def venv_ready(venv: Path | None = None) -> bool:
    venv = venv or venv_dir()
    return (venv / _STAMP).is_file() and _bin(venv, "label-studio").exists()


def installed_version(venv: Path | None = None) -> str:
    """The label-studio version in the venv, read from its package metadata (never by running it)."""
    venv = venv or venv_dir()
    stamp = venv / _STAMP
    return stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else ""


def ensure_venv(
    venv: Path | None = None, requirement: str = LS_REQUIREMENT, python: str | None = None, timeout: float = 3600
) -> Path:
    """Create the Label Studio virtualenv once; returns the path of its ``label-studio`` executable.

    A venv cannot be moved after creation, so it is built in place and marked complete with a stamp
    file written last; a venv without the stamp (an interrupted install) is removed and rebuilt.
    """
    venv = venv or venv_dir()
    exe = _bin(venv, "label-studio")
    if venv_ready(venv):
        return exe
    if venv.exists():
        log.info("removing an incomplete Label Studio environment at %s", venv)
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log.info("creating the Label Studio environment at %s (one time; this takes a few minutes)", venv)
    py = python or sys.executable
    try:
        _run([py, "-m", "venv", str(venv)], "create the virtualenv", timeout=600)
        vpy = str(_bin(venv, "python"))
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
        _run([vpy, "-m", "pip", "install", "-q", requirement], f"pip install '{requirement}'", timeout=timeout, env=env)
        out = _run(
            [vpy, "-c", "import importlib.metadata as m; print(m.version('label-studio'))"],
            "read the label-studio version",
            timeout=120,
        )
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    version = out.strip().splitlines()[-1]
    (venv / _STAMP).write_text(version + "\n", encoding="utf-8")
    log.info("Label Studio %s installed", version)
    return exe


def _run(cmd: list[str], what: str, timeout: float, env: dict | None = None) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise UserError(
            f"cannot {what}: '{cmd[0]}' not found; install Python's venv module (apt-get install python3-venv)."
        ) from None
    except subprocess.TimeoutExpired:
        raise UserError(
            f"cannot {what}: no result after {timeout:.0f} s; check the network or the package index."
        ) from None
    if p.returncode != 0:
        tail = [ln for ln in (p.stderr or p.stdout or "").splitlines() if ln.strip() and not ln.startswith("WARNING")]
        raise UserError(f"cannot {what} (exit {p.returncode}): {tail[-1][:300] if tail else 'no output'}")
    return p.stdout


def template_db(exe: Path) -> Path:
    """A migrated, empty Label Studio database for this venv's version, made once and copied into new
    data folders: a fresh database otherwise spends minutes in migrations at every first start."""
    venv = exe.parent.parent
    version = installed_version(venv) or "unknown"
    tpl = cache_dir() / f"labelstudio-template-{version}" / "label_studio.sqlite3"
    if tpl.is_file():
        return tpl
    work = tpl.parent.with_name(tpl.parent.name + f".tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(work),
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        COLLECT_ANALYTICS="false",
    )
    log.info("preparing a Label Studio database (one time; about a minute or two)")
    try:
        _run(
            [str(exe), "init", "-q", "--data-dir", str(work)],
            "initialise a Label Studio database",
            timeout=1800,
            env=env,
        )
        if not (work / "label_studio.sqlite3").is_file():
            raise UserError(
                f"Label Studio did not create a database in {work}; run 'attn annotate serve -v' to see its log."
            )
        tpl.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / "label_studio.sqlite3", tpl.with_suffix(".part"))
        os.replace(tpl.with_suffix(".part"), tpl)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tpl
