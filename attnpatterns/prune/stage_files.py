"""The files of a pruning stage folder (``structured/``, ``magnitude/``) that s-pruning and m-pruning share: the
summary that marks it finished (and the settings it was made with), the per-iteration records."""

from __future__ import annotations

from pathlib import Path

from attnpatterns.errors import UserError


def check_done(out: Path, record: dict, what: str) -> dict | None:
    """The summary when ``out`` is finished with the same settings; UserError when it was made otherwise."""
    from attnpatterns.io import read_json

    s = out / "summary.json"
    if not s.is_file():
        return None
    summ = read_json(s)
    have = {k: summ.get(k) for k in record}
    if have != record:
        diff = [k for k in record if have[k] != record[k]]
        raise UserError(
            f"{s}: {what} was done with other settings ({', '.join(diff)}); delete {out} to redo it "
            "or use the settings it was made with."
        )
    return summ


def done_already(out: Path, record: dict, floor: str, what: str) -> dict | None:
    """``check_done`` of a stage's settings ``record`` (with ``floor`` added when it is not ``none``, so runs made
    before the option existed stay valid): the summary marked ``skipped``, or None when the stage is to run."""
    if floor != "none":
        record["floor"] = floor
    done = check_done(out, record, what)
    if done is not None:
        done["skipped"] = True
    return done


def clear_iterations(out: Path) -> None:
    """Remove the ``iter_*.json`` records of an earlier, unfinished run of the stage."""
    for f in out.glob("iter_*.json"):
        f.unlink()
