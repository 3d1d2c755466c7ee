"""The reference scores beside the subnetworks: the majority class of a task (``TASK/majority.json``) and, per seed, the
unmasked fine-tuned model and the majority class on the subnetworks' dev examples."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from attnpatterns.errors import UserError
from attnpatterns.prune.subnetwork_config import SubnetworkConfig
from attnpatterns.run.layout import RunLayout

log = logging.getLogger("attnpatterns")


def majority_baseline(task: str, data_dir: str | os.PathLike | None = None) -> dict:
    """Dev metrics of always predicting the training set's most frequent label (STS-B: its mean)."""
    from attnpatterns.data import compute_metrics, get_task, load_task, main_metric
    from attnpatterns.prune.structured import majority_guess

    spec = get_task(task)
    train = load_task(spec, "train", data_dir)
    dev = load_task(spec, "dev", data_dir)
    guess: Any = majority_guess(spec, [e.label for e in train])
    metrics = compute_metrics(spec, [guess] * len(dev), [e.label for e in dev])
    return {
        "task": spec.name,
        "prediction": guess,
        "metrics": metrics,
        "score": float(main_metric(spec, metrics)),
        "main_metric": spec.main_key,
        "train_examples": len(train),
        "dev_examples": len(dev),
    }


def dev_count(run_dir: Path) -> int | None:
    from attnpatterns.io import read_json

    return read_json(run_dir / "metrics.json").get("dev_examples")


def write_reference_scores(cfg: SubnetworkConfig, seed: int, rec: dict, dev_of) -> None:
    """``subnetworks/full.json`` (the unmasked fine-tuned model) and ``subnetworks/majority.json`` of one seed,
    on the dev examples the subnetworks are evaluated on (the whole dev set: the fine-tuning run's own score)."""
    from attnpatterns.data import compute_metrics, get_task, main_metric
    from attnpatterns.evaluation import evaluate
    from attnpatterns.finetune_runs import load_finetuned
    from attnpatterns.io import read_json, write_json

    spec = get_task(cfg.task)
    base = RunLayout(cfg.run).seed(cfg.task, seed).subnetworks
    for name in ("full", "majority"):
        path = base / f"{name}.json"
        if path.is_file():
            if read_json(path).get("max_dev_examples") != cfg.max_dev_examples:
                raise UserError(
                    f"{path}: made on {read_json(path).get('max_dev_examples') or 'all'} dev examples, but "
                    f"{cfg.max_dev_examples or 'all'} were asked for; use one --max-dev-examples per run "
                    "folder or delete its subnetworks/ results."
                )
            continue
        dev = dev_of(seed)
        if name == "full":
            if cfg.max_dev_examples is None:
                metrics = rec["metrics_file"]["metrics"]
            else:
                model, tok, _ = load_finetuned(rec["dir"], device=cfg.device)
                metrics = evaluate(
                    model, tok, spec, dev, batch_size=cfg.eval_batch_size, max_length=int(rec["config"]["max_length"])
                )
        else:
            guess = read_json(RunLayout(cfg.run).majority(cfg.task))["prediction"]
            metrics = compute_metrics(spec, [guess] * len(dev), [e.label for e in dev])
        write_json(
            path,
            {
                "task": cfg.task,
                "seed": seed,
                "setting": name,
                "metrics": metrics,
                "score": float(main_metric(spec, metrics)),
                "main_metric": spec.main_key,
                "dev_examples": len(dev),
                "max_dev_examples": cfg.max_dev_examples,
            },
        )


def write_majority(run: Path, task: str, data_dir=None) -> dict:
    from attnpatterns.io import read_json, write_json

    path = RunLayout(run).majority(task)
    if path.is_file():
        return read_json(path)
    r = majority_baseline(task, data_dir)
    write_json(path, r)
    return r


def ensure_majority(run: Path, tasks, data_dir=None) -> list[str]:
    """``TASK/majority.json`` for every task of ``tasks`` that lacks it (the subnetworks stage writes it; a run
    without that stage gets it here from the task's dev set). Returns the tasks whose data could not be read."""
    from attnpatterns.errors import UserError

    failed = []
    for task in tasks:
        if RunLayout(run).majority(task).is_file():
            continue
        try:
            write_majority(Path(run), task, data_dir)
        except UserError as e:
            log.warning("%s: no majority baseline (%s)", task, e)
            failed.append(task)
    return failed
