"""The results table: full model, majority baseline, and every method x subnetwork x pruned/retrained.

Rows: ``full model``, ``majority baseline``, then for each method (s-pruning, m-pruning,
super-survivors) the ``good``, ``random`` and ``bad`` subnetworks, each ``pruned`` and ``retrained``.
Columns: tasks. Cells: the task's main dev metric (CoLA MCC, STS-B (Pearson+Spearman)/2, MRPC
accuracy, others accuracy), mean +- std over seeds. The std is the POPULATION std (ddof=0), as in
the authors' ``results.json`` files, so the two tables compare directly. A second table gives the
subnetwork sizes: the fraction of the prunable encoder weights kept (s-pruning and super sets also
as kept heads and MLPs), mean over seeds.

Two sources in one layout:

- :func:`collect_run` reads a run folder: ``TASK/seed_S/finetuned/metrics.json`` (full model),
  ``TASK/majority.json`` (majority baseline) and
  ``TASK/seed_S/subnetworks/METHOD/SUBNET/{pruned,retrained}.json``;
- :func:`attnpatterns.report.reference_table.collect_reference` reads the authors'
  ``evaluate_masked/<setting>/baseline/results.json`` (bert-base-uncased, 5 seeds, [mean, population std] per
  metric) and, when their ``masks/`` folder is beside it, the sizes of their s-pruning masks.

The layout (score and size frames) and the Markdown, CSV and LaTeX files are in
:mod:`attnpatterns.report.table_format`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.prune.subnetworks import SUBNETS
from attnpatterns.run.layout import RunLayout, SeedLayout

log = logging.getLogger("attnpatterns")

METHOD_LABELS = {"structured": "s-pruning", "magnitude": "m-pruning", "super": "super-survivors"}
SETTINGS = ("pruned", "retrained")
TASK_ORDER = ("CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE", "WNLI")


def row_keys(with_full_retrained: bool = False) -> list[tuple[str, str, str]]:
    """(method, subnetwork, setting) of every row, in table order; the first rows are the baselines.

    ``with_full_retrained``: a row for the unmasked model re-fine-tuned under the subnetworks' budget (written
    when that budget differs from the fine-tuning run's), the fair reference for the ``retrained`` rows.
    """
    keys = (
        [("full model", "", "")]
        + ([("full model", "", "retrained")] if with_full_retrained else [])
        + [("majority baseline", "", "")]
    )
    for m in METHOD_LABELS:
        for s in SUBNETS:
            for st in SETTINGS:
                keys.append((m, s, st))
    return keys


def row_label(key: tuple[str, str, str]) -> str:
    m, s, st = key
    if not s:
        return f"{m} re-fine-tuned (subnetworks' budget)" if st else m
    return f"{METHOD_LABELS.get(m, m)} {s} {st}"


def metric_key(task: str) -> str:
    """The key in a metrics dict of the task's table metric."""
    from attnpatterns.data import get_task

    spec = get_task(task)
    return "corr" if spec.metric == "pearson_spearman" else spec.main_key


@dataclass
class Table:
    """Long-form cells: one row per (method, subnet, setting, task) with mean, std, n and sizes."""

    cells: Any  # pandas DataFrame
    source: str
    tasks: list[str]
    notes: list[str] = field(default_factory=list)  # computed remarks printed under the scores
    per_seed: Any = None  # a run's table: the long per-seed frame of collect_run it summarises


# ----------------------------------------------------------------------------- reading a run


def collect_run(run: str | os.PathLike, tasks: Iterable[str] | None = None):
    """Per-seed scores of a run folder as a long DataFrame:
    columns method, subnet, setting, task, seed, score, kept_fraction, heads_kept, heads_total, mlps_kept,
    mlps_total."""
    import pandas as pd

    from attnpatterns.data import get_task
    from attnpatterns.io import read_json

    run = Path(run)
    if not run.is_dir():
        raise UserError(f"{run}: no such run folder; pass --run with the folder 'attn subnetworks' wrote into.")
    task_dirs = {}
    for name in RunLayout(run).tasks():
        try:
            task_dirs[get_task(name).name] = RunLayout(run).task_dir(name)
        except UserError:
            continue
    if tasks is not None:
        want = [get_task(t).name for t in tasks]
        missing = [t for t in want if t not in task_dirs]
        if missing:
            raise UserError(f"{run}: no results of task {missing[0]} (found: {', '.join(task_dirs) or 'none'}).")
        task_dirs = {t: task_dirs[t] for t in want}
    if not task_dirs:
        raise UserError(
            f"{run}: no TASK/seed_S folders; pass the run folder that 'attn finetune' and 'attn subnetworks' wrote."
        )
    rows = []
    for task, tdir in task_dirs.items():
        seeds = RunLayout.seeds_in(tdir)
        has_sub = any(SeedLayout(sd).full.is_file() for sd in seeds.values())
        for seed, sd in seeds.items():
            sl = SeedLayout(sd)
            ft = sl.full  # on the subnetworks' dev examples
            if not ft.is_file():
                ft = sl.finetuned / "metrics.json"
                if has_sub:  # other seeds score the full model on the subnetworks' dev examples: do not mix
                    ft = sd / "no-subnetworks-yet"
            # the unmasked model (fine-tuned; re-fine-tuned under the subnetworks' budget) and the majority class
            for path, method, setting, kept in (
                (ft, "full model", "", 1.0),
                (sl.full_retrained, "full model", "retrained", 1.0),
                (sl.majority, "majority baseline", "", None),
            ):
                if path.is_file():
                    r = read_json(path)
                    row = dict(
                        method=method,
                        subnet="",
                        setting=setting,
                        task=task,
                        seed=seed,
                        score=_score(task, r, path),
                        dev_examples=r.get("dev_examples"),
                    )
                    if kept is not None:
                        row["kept_fraction"] = kept
                    rows.append(row)
            sub = sl.subnetworks
            if not sub.is_dir():
                continue
            for method in METHOD_LABELS:
                for subnet in SUBNETS:
                    for setting in SETTINGS:
                        p = sub / method / subnet / f"{setting}.json"
                        if not p.is_file():
                            continue
                        r = read_json(p)
                        size = r.get("size") or {}
                        rows.append(
                            dict(
                                method=method,
                                subnet=subnet,
                                setting=setting,
                                task=task,
                                seed=seed,
                                score=_score(task, r, p),
                                kept_fraction=size.get("kept_fraction"),
                                heads_kept=size.get("heads_kept"),
                                heads_total=size.get("heads_total"),
                                mlps_kept=size.get("mlps_kept"),
                                mlps_total=size.get("mlps_total"),
                                dev_examples=r.get("dev_examples"),
                            )
                        )
        maj = RunLayout(run).majority(tdir.name)
        if any(x["method"] == "majority baseline" and x["task"] == task for x in rows):
            r = None  # per-seed majority scores on the subnetworks' dev examples are there
        else:
            r = read_json(maj) if maj.is_file() else None
        if r is not None:
            rows.append(
                dict(
                    method="majority baseline",
                    subnet="",
                    setting="",
                    task=task,
                    seed=None,
                    score=_score(task, r, maj),
                    dev_examples=r.get("dev_examples"),
                )
            )
    cols = [
        "method",
        "subnet",
        "setting",
        "task",
        "seed",
        "score",
        "kept_fraction",
        "heads_kept",
        "heads_total",
        "mlps_kept",
        "mlps_total",
        "dev_examples",
    ]
    return pd.DataFrame(rows, columns=cols), list(task_dirs)


def _score(task: str, record, path: Path) -> float:
    """The task's table metric from a result file's ``metrics``; UserError naming the file otherwise."""
    key = metric_key(task)
    metrics = record.get("metrics") if isinstance(record, dict) else None
    if not isinstance(metrics, dict) or key not in metrics:
        raise UserError(f"{path}: no '{key}' in its metrics; it is not a finished {task} result, delete it and rerun.")
    return float(metrics[key])


def summarise(per_seed) -> "object":
    """Mean, population std and number of seeds of every (method, subnet, setting, task)."""
    import pandas as pd

    if per_seed.empty:
        return pd.DataFrame(
            columns=[
                "method",
                "subnet",
                "setting",
                "task",
                "mean",
                "std",
                "n",
                "kept_fraction",
                "heads_kept",
                "mlps_kept",
                "heads_total",
                "mlps_total",
            ]
        )
    g = per_seed.groupby(["method", "subnet", "setting", "task"], sort=False, dropna=False)
    out = g.agg(
        mean=("score", "mean"),
        std=("score", lambda x: float(np.std(x, ddof=0))),
        n=("score", "size"),
        kept_fraction=("kept_fraction", "mean"),
        heads_kept=("heads_kept", "mean"),
        mlps_kept=("mlps_kept", "mean"),
        heads_total=("heads_total", "max"),
        mlps_total=("mlps_total", "max"),
    ).reset_index()
    return out


def run_table(run: str | os.PathLike, tasks: Iterable[str] | None = None) -> Table:
    """The table of a run folder, read only (``TASK/majority.json``:
    :func:`attnpatterns.prune.baselines.ensure_majority` writes it where the subnetworks stage did not)."""
    per_seed, found = collect_run(run, tasks)
    cells = summarise(per_seed)
    dev = {}
    for task in found:
        n = sorted({int(x) for x in per_seed.loc[per_seed["task"] == task, "dev_examples"].dropna()})
        if n:
            dev[task] = "/".join(map(str, n))
    note = ("; dev examples per evaluation: " + ", ".join(f"{t} {v}" for t, v in dev.items())) if dev else ""
    return Table(cells, f"run {run}{note}", [t for t in TASK_ORDER if t in found], unpruned_notes(per_seed), per_seed)


def unpruned_notes(per_seed) -> list[str]:
    """One remark per pruning method whose good mask kept every component in some (task, seed): there the random
    and bad counterparts are the same mask as good (the whole model), so those seeds cannot tell them apart."""
    if per_seed.empty or "kept_fraction" not in per_seed:
        return []
    good = per_seed[(per_seed["subnet"] == "good") & (per_seed["kept_fraction"] >= 1.0)]
    notes = []
    for method, g in good.groupby("method", sort=False):
        where = "; ".join(
            f"{task} seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}"
            for task, s in ((t, sorted({int(x) for x in gg["seed"]})) for t, gg in g.groupby("task", sort=False))
        )
        notes.append(
            f"{METHOD_LABELS.get(method, method)} kept the whole model in {where}: there good, random and bad "
            "are one mask (the full model) and score alike."
        )
    return notes
