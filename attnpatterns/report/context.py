"""What every section of the report reads: the run folder's tasks and seeds, its model, and the context a section
is built in (where figures go, how paths are shown)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnpatterns.report.html import Figure
from attnpatterns.run import layout
from attnpatterns.run.layout import RunLayout, SeedLayout

log = logging.getLogger("attnpatterns")

REPORT_DIR = layout.REPORT
CLASSIFY_DIR = layout.CLASSIFY
_ITER = re.compile(r"^iter_(\d+)\.json$")
KINDS = ("raw", "normed")
METHODS = layout.PRUNE_METHODS


def find_tasks(run_dir: Path) -> dict[str, dict[int, Path]]:
    """{task: {seed: seed folder}} for every subfolder holding seed_S folders (sorted): :meth:`RunLayout.tasks`."""
    return RunLayout(run_dir).tasks()


def iter_files(d: Path) -> list[tuple[int, Path]]:
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _ITER.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def read_record(path: Path) -> Any:
    from attnpatterns.io import read_json

    return read_json(path)


def model_config(run_dir: Path, tasks: dict[str, dict[int, Path]]) -> dict | None:
    for seeds in tasks.values():
        for sdir in seeds.values():
            p = SeedLayout(sdir).finetuned / "config.json"
            if p.is_file():
                return read_record(p)
    return None


@dataclass
class ReportContext:
    run_dir: Path
    out: Path
    tasks: dict[str, dict[int, Path]]
    cfg: dict
    model_cfg: dict | None
    written: list[Path] = field(default_factory=list)
    table: Any = None  # the run's results table (report.sections_pruning.subnetwork_table), read once
    settings: Any = None  # the run's recorded settings (report.sections_run.settings_of), read once

    def figure(self, fig, stem: str, caption: str) -> Figure:
        from attnpatterns.report.plots import save_figure

        png, svg = save_figure(fig, self.out / stem)
        self.written += [png, svg]
        return Figure(stem=stem, caption=caption, png=png.read_bytes())

    def rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.run_dir))
        except ValueError:
            return str(p)
