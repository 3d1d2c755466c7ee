"""Seeded training of the pattern CNN on the annotated maps: train, compare and cross-validate recipes, and the card
of a trained model (fitting one recipe: ``classifier/fit.py``, re-exported here).

The original recipe (docs/method.md): stratified 80/20 split, Adam 1e-3, batch 64, best-on-validation
checkpoint, maps centre zero-padded to the largest size, no value normalisation, no augmentation,
no class weights. The improvements (each a field of :class:`Recipe`, each compared against the
original on the same split):

- a fixed small input (every map resized to S x S) and per-map max scaling, so maps of any length
  and weight-normed maps of any scale look alike to the CNN;
- type-preserving augmentation: reversing the token order (``M[::-1, ::-1]``: a column stays a
  column, the +-1 diagonals swap, blocks stay blocks) and multiplicative noise;
- class weights (inverse class frequency) in the loss;
- optionally synthetic maps of each type added to the training part (never to validation or test).

Held-out metrics are honest: the checkpoint is chosen on a validation slice of the training part
(``val_fraction``), never on the 20% test part that the metrics are computed on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from attnpatterns.classifier.data import (  # noqa: F401 (re-exported)
    MapData,
    data_hash,
    load_data,
    stratified_folds,
    stratified_split,
)
from attnpatterns.classifier.fit import (  # noqa: F401 (re-exported)
    FitResult,
    fit,
    fit_linear,
    min_tokens_of,
    preprocess_for,
)
from attnpatterns.classifier.recipes import (  # noqa: F401 (re-exported)
    CNN8,
    CNN8SOFT,
    CNN8WIDE,
    FEATURES,
    IMPROVED,
    L2_GRID,
    ORIGINAL,
    RECIPES,
    SHIPPED,
    Recipe,
    TrainConfig,
    recipe_grid,
    recipe_named,
)
from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")


@dataclass
class TrainResult:
    """One trained recipe on one split, with its held-out metrics and the heuristic's on the same maps."""

    recipe: Recipe
    fit: FitResult
    train_ids: list[str]
    val_ids: list[str]
    test_ids: list[str]
    test: dict
    heuristic: dict
    data_hash: str
    min_tokens: int
    counts: dict


def split_data(data: MapData, cfg: TrainConfig) -> tuple[MapData, MapData, MapData]:
    """(train, val, test): the stratified 80/20 split, then a validation slice of the 80 for checkpointing."""
    keep, test = stratified_split(data.y, cfg.test_fraction, cfg.seed)
    part = data.subset(keep)
    if cfg.val_fraction > 0:
        tr, va = stratified_split(part.y, cfg.val_fraction, cfg.seed + 1)
        return part.subset(tr), part.subset(va), data.subset(test)
    return part, part.subset([]), data.subset(test)


def train_on_split(
    data: MapData,
    train: MapData,
    val: MapData,
    test: MapData,
    recipe: Recipe,
    cfg: TrainConfig,
    show_progress: bool = False,
) -> TrainResult:
    from attnpatterns.classifier.scoring import heuristic_labels, predict_prepared, scores

    f = fit(train, val if len(val) else None, recipe, cfg, show_progress=show_progress)
    pred = predict_prepared(f.model, test.maps, f.preprocess)
    heur = heuristic_labels(test.maps)
    return TrainResult(
        recipe=recipe,
        fit=f,
        train_ids=train.ids,
        val_ids=val.ids,
        test_ids=test.ids,
        test=scores(test.y, pred),
        heuristic=scores(test.y, heur),
        data_hash=data_hash(data.ids, [r["label"] for r in data.rows], data.maps) if data.rows else "",
        min_tokens=min_tokens_of(data),
        counts=data.counts(),
    )


def train(cfg: TrainConfig, data: MapData | None = None, show_progress: bool = False) -> TrainResult:
    """Train ``cfg.recipe`` on the stratified split of the annotated maps of ``cfg.kind``."""
    data = data if data is not None else load_data(cfg.data, cfg.kind)
    check_enough(data)
    tr, va, te = split_data(data, cfg)
    return train_on_split(data, tr, va, te, cfg.recipe, cfg, show_progress)


def compare(
    cfg: TrainConfig, recipes: Sequence[Recipe], data: MapData | None = None, show_progress: bool = False
) -> list[TrainResult]:
    """Every recipe trained and tested on the same split (same seed)."""
    data = data if data is not None else load_data(cfg.data, cfg.kind)
    check_enough(data)
    tr, va, te = split_data(data, cfg)
    out = []
    for r in recipes:
        log.info("recipe %s", r.name)
        out.append(train_on_split(data, tr, va, te, r, cfg, show_progress))
    return out


def cross_validate(
    cfg: TrainConfig,
    folds: int,
    recipes: Sequence[Recipe] | None = None,
    data: MapData | None = None,
    show_progress: bool = False,
) -> dict:
    """Stratified k-fold: per recipe, the test scores of every fold and their mean and std."""
    from attnpatterns.classifier.scoring import heuristic_labels, predict_prepared, scores

    if folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}.")
    data = data if data is not None else load_data(cfg.data, cfg.kind)
    check_enough(data, folds)
    recipes = list(recipes or [cfg.recipe])
    parts = stratified_folds(data.y, folds, cfg.seed)
    out: dict = {"folds": folds, "seed": cfg.seed, "recipes": {}}
    heur = []
    for k, test_idx in enumerate(parts):
        heur.append(scores(data.y[test_idx], heuristic_labels([data.maps[i] for i in test_idx])))
    out["heuristic"] = _summary(heur)
    for r in recipes:
        per = []
        for k, test_idx in enumerate(parts):
            rest = np.setdiff1d(np.arange(len(data)), test_idx)
            part = data.subset(rest)
            tr, va = stratified_split(part.y, cfg.val_fraction, cfg.seed + 1 + k)
            test = data.subset(test_idx)
            f = fit(part.subset(tr), part.subset(va), r, replace(cfg, seed=cfg.seed + k), show_progress)
            per.append(scores(test.y, predict_prepared(f.model, test.maps, f.preprocess)))
        out["recipes"][r.name] = _summary(per)
    return out


def _summary(per: list[dict]) -> dict:
    keys = ("weighted_f1", "macro_f1", "accuracy")
    return {
        "per_fold": [{k: p[k] for k in keys} for p in per],
        **{f"{k}_mean": float(np.mean([p[k] for p in per])) for k in keys},
        **{f"{k}_std": float(np.std([p[k] for p in per])) for k in keys},
    }


def check_enough(data: MapData, folds: int = 5) -> None:
    """One-line errors for too few maps (under 10) or a single label: before any training."""
    counts = np.bincount(data.y)
    if len(data) < 10:
        raise UserError(
            f"{data.source}: only {len(data)} annotated maps; annotate at least 10 (ideally hundreds) first."
        )
    if (counts > 0).sum() < 2:
        raise UserError(f"{data.source}: every map has the same label; annotate maps of at least two types.")


_SCORE_KEYS = ("n", "weighted_f1", "macro_f1", "accuracy", "per_class", "confusion")


def training_card(
    result: TrainResult,
    cfg: TrainConfig,
    data: MapData,
    *,
    labels_from: str,
    command: str,
    data_source: str | None = None,
    extra_training: dict | None = None,
    extra_metrics: dict | None = None,
):
    """The card of a trained classifier (:class:`attnpatterns.classifier.card.Card`): the training data and its hash,
    the config and recipe, the split, the held-out scores beside the heuristic's, and the command that made it."""
    from attnpatterns.classifier.card import Card
    from attnpatterns.classifier.labels import LABELS

    training = {
        "data": data_source if data_source is not None else str(cfg.data),
        "data_hash": result.data_hash,
        "n_maps": len(data),
        "class_counts": result.counts,
        "config": cfg.to_dict(),
        "recipe": result.recipe.to_dict(),
        "labels_from": labels_from,
        "n_train": len(result.train_ids),
        "n_val": len(result.val_ids),
        "n_test": len(result.test_ids),
        "test_ids": result.test_ids,
        "val_ids": result.val_ids,
        **(extra_training or {}),
    }
    metrics = {
        "held_out": {k: result.test[k] for k in _SCORE_KEYS},
        "heuristic_held_out": {k: result.heuristic[k] for k in _SCORE_KEYS},
        "validation": result.fit.best_val,
        "best_epoch": result.fit.best_epoch,
        **(extra_metrics or {}),
    }
    return Card(
        kind=cfg.kind,
        labels=list(LABELS),
        preprocess=result.fit.preprocess.to_dict(),
        min_tokens=result.min_tokens,
        training=training,
        metrics=metrics,
        command=command,
    )
