"""Per-task metrics as in the study: CoLA MCC; STS-B Pearson (and Spearman); MRPC/QQP acc and F1; others accuracy."""

from __future__ import annotations

import numpy as np

from attnpatterns.data.registry import TaskSpec, get_task


def compute_metrics(task: TaskSpec | str, preds, labels) -> dict[str, float]:
    """Metrics for predictions (class ids, or scores for STS-B) against labels."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    spec = get_task(task) if isinstance(task, str) else task
    preds = np.asarray(preds)
    labels = np.asarray(labels)
    if spec.metric == "pearson_spearman":
        # a constant prediction (the mean guess, a collapsed model) has no correlation with the labels: 0, not NaN
        # (np.ptp, not np.std: the std of identical floats can come out at 1e-16)
        if len(labels) < 2 or np.ptp(preds) == 0 or np.ptp(labels) == 0:
            p = s = 0.0
        else:
            p = float(pearsonr(preds, labels)[0])
            s = float(spearmanr(preds, labels)[0])
        return {"pearson": p, "spearmanr": s, "corr": (p + s) / 2}
    if spec.metric == "mcc":
        return {"mcc": float(matthews_corrcoef(labels, preds))}
    acc = float(accuracy_score(labels, preds))
    if spec.metric == "acc_f1":
        f1 = float(f1_score(labels, preds, zero_division=0))
        return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}
    return {"acc": acc}


def main_metric(task: TaskSpec | str, metrics: dict[str, float]) -> float:
    """The score compared against the 0.9 x full threshold (STS-B: (Pearson+Spearman)/2, as the authors did)."""
    spec = get_task(task) if isinstance(task, str) else task
    if spec.metric == "pearson_spearman":
        return metrics["corr"]
    return metrics[spec.main_key]
