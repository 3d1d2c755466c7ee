"""Shared CLI plumbing: one-line errors, common options, logging."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from attnpatterns.errors import UserError

ModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        help="Hub id or local folder of a BERT-family model. Default: the packaged pretrained MiniLM "
        "(all-MiniLM-L6-v2).",
    ),
]
DataDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--data-dir", help="A glue_data folder (TASK/train.tsv, TASK/dev.tsv). Default: $ATTN_GLUE_DIR, else the hub."
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
SeedsOpt = Annotated[str, typer.Option("--seeds", help="Comma-separated seeds, e.g. 1337,42,86,71,166.")]


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit non-zero."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable) -> Callable:
    """Turn a UserError (and a few environment errors) into one line on stderr and exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            fail(str(e))
        except PermissionError as e:
            fail(f"{e.filename}: permission denied; check the file's permissions or choose another path.")
        except IsADirectoryError as e:
            fail(f"{e.filename}: is a folder, a file was expected; pass a file path.")
        except KeyboardInterrupt:
            fail("interrupted; finished stages are kept, rerun the same command to continue.", code=130)

    return wrapper


def parse_seeds(seeds: str, option: str = "--seeds") -> list[int]:
    try:
        out = [int(s) for s in str(seeds).replace(" ", "").split(",") if s]
    except ValueError:
        raise UserError(f"{option} '{seeds}' is not a comma-separated list of integers, e.g. 1337,42,86.") from None
    if not out:
        raise UserError(f"{option} is empty; give at least one seed, e.g. 1337,42,86.")
    if len(set(out)) != len(out):
        raise UserError(f"{option} '{seeds}' repeats a seed; give each seed once.")
    return out


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("httpx", "urllib3", "datasets", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --threads everywhere: left out = torch's own choice (or the command's stated default); a number = that many torch CPU
# threads; below 1 = a one-line error (never a silent "default")
ThreadsOpt = Annotated[
    Optional[int], typer.Option("--threads", help="torch CPU threads (at least 1; default: torch's choice).")
]


def check_threads(threads: Optional[int]) -> Optional[int]:
    """``threads`` when it is None or at least 1, else the one-line error every command gives."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1 (got {threads}); leave it out for torch's default.")
    return threads


def apply_threads(threads: Optional[int]) -> None:
    """Check ``--threads`` and set torch's CPU threads when given."""
    if check_threads(threads) is not None:
        import torch

        torch.set_num_threads(int(threads))  # type: ignore[arg-type]
