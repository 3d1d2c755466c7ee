"""Scores of the pattern CNN and of the heuristic scorer on the same held-out maps.

Weighted and macro F1, accuracy, per-class precision/recall/F1/support and the confusion matrix
(rows = true label, columns = predicted), as data; tables and a PNG from that data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from attnpatterns.classifier.scoring import heuristic_labels, predict_prepared, scores
from attnpatterns.errors import UserError


@dataclass
class EvalReport:
    kind: str
    classifier: str
    n: int
    cnn: dict
    heuristic: dict
    card_metrics: dict


def evaluate(
    kind: str,
    data: str | os.PathLike = "annotations",
    classifier: str | os.PathLike | None = None,
    all_maps: bool = False,
) -> EvalReport:
    """Score a trained classifier on the held-out maps named in its card (or on every map with ``all_maps``)."""
    from attnpatterns.classifier.predict import get_classifier
    from attnpatterns.classifier.train import data_hash, load_data

    clf = get_classifier(kind, classifier)
    d = load_data(data, kind)
    if all_maps:
        test = d
    else:
        want = (clf.card.get("training") or {}).get("test_ids") or []
        if not want:
            raise UserError(f"{clf.path}: its card names no held-out maps; evaluate with --all or retrain.")
        index = {i: k for k, i in enumerate(d.ids)}
        missing = [i for i in want if i not in index]
        if missing:
            raise UserError(
                f"{len(missing)} held-out map(s) of the card (e.g. '{missing[0]}') are not in {d.source}; "
                "pass the --data the model was trained on, or use --all."
            )
        test = d.subset([index[i] for i in want])
    trained_hash = (clf.card.get("training") or {}).get("data_hash")
    now_hash = data_hash(d.ids, [r["label"] for r in d.rows], d.maps)
    if trained_hash and trained_hash != now_hash:
        import logging

        logging.getLogger("attnpatterns").warning(
            "the annotations changed since this model was trained (data hash differs); held-out maps are still the "
            "card's."
        )
    pred = predict_prepared(clf.model, test.maps, clf.preprocess)
    return EvalReport(
        kind=kind,
        classifier=str(clf.path),
        n=len(test),
        cnn=scores(test.y, pred),
        heuristic=scores(test.y, heuristic_labels(test.maps)),
        card_metrics=clf.card.get("metrics", {}),
    )


def per_class_table(cnn: dict, heuristic: dict | None = None) -> list[list]:
    """Rows: label, CNN precision, recall, F1, support (and the heuristic's precision, recall, F1)."""
    rows = []
    for lab, v in cnn["per_class"].items():
        row = [lab, v["precision"], v["recall"], v["f1"], v["support"]]
        if heuristic is not None:
            h = heuristic["per_class"][lab]
            row += [h["precision"], h["recall"], h["f1"]]
        rows.append(row)
    return rows


def confusion_csv(cm: Sequence[Sequence[int]]) -> str:
    from attnpatterns.classifier.labels import LABELS

    lines = ["true\\predicted," + ",".join(LABELS)]
    for lab, row in zip(LABELS, cm):
        lines.append(lab + "," + ",".join(str(int(x)) for x in row))
    return "\n".join(lines) + "\n"


def plot_confusion(cm: Sequence[Sequence[int]], title: str = "", fig_ax=None):
    """A confusion-matrix heat map (rows true, columns predicted) with counts; returns (fig, ax)."""
    from attnpatterns.classifier.labels import LABELS

    if fig_ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.5, 4.8), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig, ax = fig_ax
    a = np.asarray(cm, dtype=float)
    ax.imshow(a, cmap="Blues")
    ax.set_xticks(range(len(LABELS)), labels=LABELS, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(LABELS)), labels=LABELS, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = a.max() if a.size else 0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            ax.text(
                j,
                i,
                str(int(a[i, j])),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if top and a[i, j] > 0.6 * top else "black",
            )
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig, ax


def write_report(report: EvalReport, out_dir: str | os.PathLike) -> list[Path]:
    """metrics.json, per_class.csv, confusion.csv, confusion_heuristic.csv, confusion.png in ``out_dir``."""
    from dataclasses import asdict

    from attnpatterns.io import atomic_path, write_json, write_text

    out = Path(out_dir)
    files = [write_json(out / "metrics.json", asdict(report))]
    head = "label,cnn_precision,cnn_recall,cnn_f1,support,heuristic_precision,heuristic_recall,heuristic_f1\n"
    body = "".join(
        ",".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in r) + "\n"
        for r in per_class_table(report.cnn, report.heuristic)
    )
    files.append(write_text(out / "per_class.csv", head + body))
    files.append(write_text(out / "confusion.csv", confusion_csv(report.cnn["confusion"])))
    files.append(write_text(out / "confusion_heuristic.csv", confusion_csv(report.heuristic["confusion"])))
    fig, _ = plot_confusion(
        report.cnn["confusion"], f"{report.kind} maps: CNN, weighted F1 {report.cnn['weighted_f1']:.3f} (n={report.n})"
    )
    with atomic_path(out / "confusion.png") as tmp:
        fig.savefig(tmp, format="png")
    files.append(out / "confusion.png")
    return files
