"""The make-like stamp engine of ``attn run``: a stage is a list of units, each skipped when its outputs exist and its
stamp matches.

A stamp (``.stages/<stage>/<unit>.json``, :meth:`attnpatterns.run.layout.RunLayout.stamp`) holds a sha256 over the
unit's config and the *contents* of its input files (:func:`digest`), so a changed input reruns that unit and, through
its outputs, everything downstream; the same files reached through another path are the same input. A unit whose outputs
exist without a stamp (made by ``attn finetune`` and friends by hand) is adopted: stamped as it is, not redone, unless
the unit can tell they are not its own (a super-survivor set or a pattern distribution made from other seeds than the
run's), which is redone. A unit whose stamp no longer matches has its outputs removed before it reruns (the folders it
owns, nothing else).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from attnpatterns.run.layout import RunLayout

log = logging.getLogger("attnpatterns")


class Hasher:
    """sha256 of files, cached per (path, size, mtime) within one run (a fine-tuned model is read once)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}

    def file(self, path: Path) -> str:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._cache:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            self._cache[key] = h.hexdigest()
        return self._cache[key]

    def files(self, paths: Iterable[Path], root: Path) -> dict[str, str]:
        out = {}
        for p in paths:
            p = Path(p)
            if p.is_dir():
                # hidden names anywhere below (a killed save's temporary folder, checkpoints) are not contents
                for f in sorted(x for x in p.rglob("*") if x.is_file() and not hidden(x.relative_to(p))):
                    out[_relname(f, root)] = self.file(f)
            elif p.is_file():
                out[_relname(p, root)] = self.file(p)
            else:
                out[_relname(p, root)] = "missing"
        return out


def hidden(rel: Path) -> bool:
    """Whether a relative path has a hidden part: bookkeeping (.stages, .sweep, checkpoints) or a killed write's
    temporary (a .save.* folder), never a result or an input."""
    return any(part.startswith(".") for part in rel.parts)


def _relname(p: Path, root: Path) -> str:
    try:
        return str(p.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(p)


def digest(config: dict, inputs: dict[str, str]) -> str:
    """sha256 over the unit's config and the *contents* of its inputs. Inputs inside the run folder count by their
    name relative to it; inputs outside it (GLUE files, the model, the classifier) by their file name only, so
    the same files reached through another path (a moved or linked data folder) give the same digest. The paths
    are recorded in the stamp, not compared."""
    content = sorted((Path(name).name if os.path.isabs(name) else name, sha) for name, sha in inputs.items())
    blob = json.dumps({"config": config, "inputs": content}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass
class Unit:
    """One resumable piece of a stage: ``run()`` makes ``outputs``; ``owns`` is what a rerun may remove."""

    stage: str
    key: str  # e.g. "MRPC/seed_1337"
    label: str  # for progress lines
    outputs: list[Path]
    inputs: list[Path]
    config: dict
    run: Callable[[], Any]
    owns: list[Path] = field(default_factory=list)
    # for outputs found without a stamp: None when they are what this unit makes (adopt them), else why not (the
    # unit is redone); e.g. a super-survivor set made from other seeds. None: any such outputs are adopted.
    foreign: Callable[[], str | None] | None = None

    def stamp_path(self, root: Path) -> Path:
        return RunLayout(root).stamp(self.stage, self.key)


@dataclass
class StageReport:
    stage: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RunResult:
    out: Path
    stages: dict[str, StageReport]
    seconds: float
    report: Path | None = None

    @property
    def ran(self) -> int:
        return sum(len(s.ran) for s in self.stages.values())


class StampEngine:
    """Runs the units of a stage in one run folder, skipping, adopting or redoing each by its stamp."""

    def __init__(self, root: Path, hasher: Hasher | None = None):
        self.root = Path(root)
        self.hasher = hasher or Hasher()

    def run_stage(self, stage: str, units: list[Unit], i: int, n: int) -> StageReport:
        rep = StageReport(stage)
        t0 = time.perf_counter()
        states = [(u, self.state(u)) for u in units]
        todo = sum(1 for _, s in states if s[0] in ("run", "stale", "foreign"))
        log.info("[stage %d/%d] %s: %d unit(s), %d to run", i, n, stage, len(units), todo)
        k = 0
        for u, _ in states:
            # decided again right before the unit: an earlier unit of this stage may have changed its inputs
            state, dig, inputs = self.state(u)
            if state == "skip":
                rep.skipped.append(u.key)
                log.debug("  %s: up to date, skipped", u.label)
                continue
            if state == "adopt":
                self.write_stamp(u, dig, inputs, adopted=True, seconds=0.0)
                rep.adopted.append(u.key)
                log.info("  %s: outputs made outside 'attn run' adopted as they are", u.label)
                continue
            k += 1
            if state in ("stale", "foreign"):
                why = "inputs changed since it was made"
                if state == "foreign" and u.foreign is not None:
                    why = f"outputs found {u.foreign()}"
                for p in u.owns:
                    if p.is_dir():
                        shutil.rmtree(p)
                    elif p.exists():
                        p.unlink()
                log.info("  %s: %s; redoing it", u.label, why)
            log.info("  [%d] %s ...", k, u.label)
            t1 = time.perf_counter()
            u.run()
            missing = [str(p) for p in u.outputs if not p.exists()]
            if missing:
                raise RuntimeError(f"stage {stage} {u.key} finished without writing {', '.join(missing)}")
            # the inputs are hashed again after the run: a unit must not change them, but if a library did, the
            # stamp must describe what is on disk now
            dig, inputs = self.digest_of(u)
            dt = time.perf_counter() - t1
            self.write_stamp(u, dig, inputs, adopted=False, seconds=dt)
            rep.ran.append(u.key)
            log.info("  [%d] %s done in %.1f s", k, u.label, dt)
        rep.seconds = time.perf_counter() - t0
        return rep

    def digest_of(self, u: Unit) -> tuple[str, dict]:
        inputs = self.hasher.files(u.inputs, self.root)
        return digest(u.config, inputs), inputs

    def state(self, u: Unit) -> tuple[str, str, dict]:
        from attnpatterns.io import read_json

        dig, inputs = self.digest_of(u)
        done = all(p.exists() for p in u.outputs)
        sp = u.stamp_path(self.root)
        if sp.is_file():
            old = read_json(sp)
            # by content: recomputed from what the stamp recorded, so stamps written with path-keyed digests
            # (before content digests) and stamps made through another data path match as long as the contents do
            was = (
                digest(old["config"], old["inputs"])
                if isinstance(old.get("inputs"), dict) and "config" in old
                else old.get("digest")
            )
            if was == dig and done:
                if old.get("digest") != dig:  # one-time migration of the stamp to the content digest
                    self.write_stamp(u, dig, inputs, adopted=bool(old.get("adopted")), seconds=old.get("seconds", 0.0))
                return "skip", dig, inputs
            return ("stale" if was != dig else "run"), dig, inputs
        if done and u.foreign is not None and u.foreign() is not None:
            return "foreign", dig, inputs
        return ("adopt" if done else "run"), dig, inputs

    def write_stamp(self, u: Unit, dig: str, inputs: dict, adopted: bool, seconds: float) -> None:
        from attnpatterns.io import write_json

        write_json(
            u.stamp_path(self.root),
            {
                "stage": u.stage,
                "unit": u.key,
                "digest": dig,
                "config": u.config,
                "inputs": inputs,
                "adopted": adopted,
                "seconds": round(seconds, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
