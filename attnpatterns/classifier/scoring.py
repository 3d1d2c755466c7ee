"""Scores of a classifier's labels against annotators' labels, the heuristic scorer's labels, and predictions on
prepared maps: what training (``classifier.train``) and evaluation (``classifier.evaluate``) both use."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from attnpatterns.errors import UserError


def scores(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> dict:
    """Weighted/macro F1, accuracy, per-class precision/recall/F1/support, confusion matrix; label indices in."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    from attnpatterns.classifier.labels import LABELS

    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    labels = list(range(len(LABELS)))
    if len(y_true) == 0:
        raise UserError("no held-out maps to score; annotate more maps.")
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = [i for i in labels if (y_true == i).any()]
    return {
        "n": int(len(y_true)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        # macro over the classes present in the held-out set (an absent class has no recall to average)
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class": {
            LABELS[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in labels
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def heuristic_labels(maps: Sequence[np.ndarray], tokens: Sequence[Sequence[str] | None] | None = None) -> np.ndarray:
    """Label indices from the heuristic scorer :func:`attnpatterns.patterns.suggest` (tokens when known)."""
    from attnpatterns.classifier.labels import LABEL_INDEX
    from attnpatterns.patterns import suggest

    toks = tokens if tokens is not None else [None] * len(maps)
    out = []
    for m, t in zip(maps, toks):
        a = np.clip(np.asarray(m, dtype=np.float64), 0.0, None)
        out.append(LABEL_INDEX[suggest(a, t).label.value])
    return np.array(out, dtype=np.int64)


def predict_prepared(model, maps: Sequence[np.ndarray], pre) -> np.ndarray:
    """Label indices of the CNN for maps of any sizes."""
    from attnpatterns.classifier.predict import logits_of, prepared_batches, prepared_features

    if not len(maps):
        return np.zeros(0, dtype=np.int64)
    return logits_of(model, prepared_batches(maps, pre), feats=prepared_features(maps, pre)).argmax(1).numpy()
