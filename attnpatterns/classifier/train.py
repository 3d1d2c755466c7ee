"""Seeded training of the pattern CNN on the annotated maps.

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

import copy
import logging
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from attnpatterns.classifier.data import (  # noqa: F401 (re-exported)
    MapData,
    data_hash,
    load_data,
    stratified_folds,
    stratified_split,
)
from attnpatterns.classifier.recipes import (  # noqa: F401 (re-exported)
    CNN8,
    FEATURES,
    IMPROVED,
    L2_GRID,
    ORIGINAL,
    Recipe,
    TrainConfig,
    recipe_grid,
)
from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")


# ----------------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------------


def min_tokens_of(data: MapData) -> int:
    return int(min(m.shape[0] for m in data.maps))


def preprocess_for(recipe: Recipe, train: MapData):
    from attnpatterns.classifier.model import Preprocess

    size = recipe.size if recipe.size > 0 else max(m.shape[0] for m in train.maps)
    return Preprocess(
        size=int(size), mode=recipe.mode, scale=recipe.scale, features=recipe.features or not recipe.cnn, cnn=recipe.cnn
    )


def _augment(x, gen, scale: str):
    """Type-preserving augmentation of prepared inputs (B, 1, S, S): token-order reversal and multiplicative noise."""
    import torch

    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1, -2), x)  # reverse token order: M[::-1, ::-1]
    x = x * torch.exp(0.15 * torch.randn(x.shape, generator=gen))
    if scale == "max":
        x = x / x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    elif scale == "mass":
        x = x * (x.shape[-1] / x.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12))
    return x


@dataclass
class FitResult:
    model: Any  # PatternCNN or PatternLinear, eval mode
    preprocess: Any  # classifier.model.Preprocess
    best_epoch: int
    best_val: dict
    history: list[dict]


def _training_maps(train: MapData, recipe: Recipe, cfg: TrainConfig) -> tuple[list, np.ndarray]:
    """The training part's maps and labels, with the recipe's synthetic maps added."""
    from attnpatterns.classifier.labels import LABEL_INDEX

    maps, y = list(train.maps), train.y.copy()
    if recipe.synthetic_per_class > 0:
        from attnpatterns.classifier.synthetic import synthetic_set

        lo, hi = min_tokens_of(train), max(m.shape[0] for m in train.maps)
        sm, sl = synthetic_set(recipe.synthetic_per_class, kind=cfg.kind, sizes=(lo, hi), seed=cfg.seed + 1)
        maps += sm
        y = np.concatenate([y, np.array([LABEL_INDEX[s] for s in sl])])
    return maps, y


def fit_linear(train: MapData, val: MapData | None, recipe: Recipe, cfg: TrainConfig) -> FitResult:
    """Multinomial logistic regression on the standardised pattern features (PatternLinear).

    For each L2 strength C of ``L2_GRID`` the convex loss mean cross-entropy + ||W||^2 / (2 C N) (scikit-learn's
    LogisticRegression objective divided by N; the bias is not penalised) is minimised to convergence by
    full-batch L-BFGS in float64; the C with the best validation weighted F1 is kept (ties: the smaller C, the
    stronger regularisation), so the validation slice chooses the model as it chooses the CNN's checkpoint.
    Deterministic: no random initialisation (zeros) and no batches. Without a validation slice: C = 1.
    """
    import torch
    import torch.nn.functional as F

    from attnpatterns.classifier.labels import LABELS
    from attnpatterns.classifier.model import PatternLinear
    from attnpatterns.classifier.predict import logits_of, prepared_features
    from attnpatterns.classifier.scoring import scores

    torch.set_num_threads(max(1, cfg.threads))
    maps, y = _training_maps(train, recipe, cfg)
    pre = preprocess_for(recipe, train)
    f_tr = prepared_features(maps, pre)
    y_tr = torch.as_tensor(y)
    has_val = val is not None and len(val) > 0
    f_va = prepared_features(val.maps, pre) if val is not None and has_val else None
    base = PatternLinear(len(LABELS), f_tr.shape[1])
    base.set_feature_scaling(f_tr)
    z = base.standardised(f_tr).double()  # (N, F)
    history, best_key, best = [], None, None
    for C in L2_GRID if has_val else (1.0,):
        W = torch.zeros(len(LABELS), z.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(len(LABELS), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS(
            [W, b],
            lr=1.0,
            max_iter=2000,
            tolerance_grad=1e-10,
            tolerance_change=1e-14,
            history_size=50,
            line_search_fn="strong_wolfe",
        )

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(z @ W.T + b, y_tr) + (W**2).sum() / (2 * C * len(y_tr))
            loss.backward()
            return loss

        opt.step(closure)
        model = PatternLinear(len(LABELS), f_tr.shape[1])
        model.load_state_dict(base.state_dict())
        with torch.no_grad():
            model.out.weight.copy_(W.detach().float())
            model.out.bias.copy_(b.detach().float())
        model.eval()
        rec = {"C": C, "train_loss": float(closure().detach())}
        if val is not None and has_val:
            logits = logits_of(model, None, feats=f_va)
            sc = scores(val.y, logits.argmax(1).numpy())
            rec.update(
                val_loss=float(F.cross_entropy(logits, torch.as_tensor(val.y))),
                val_weighted_f1=sc["weighted_f1"],
                val_macro_f1=sc["macro_f1"],
            )
            key = (sc["weighted_f1"], -C)
        else:
            key = (0.0, 0.0)
        history.append(rec)
        if best_key is None or key > best_key:
            best_key, best, best_rec, best_i = key, model, rec, len(history) - 1
    return FitResult(model=best, preprocess=pre, best_epoch=best_i, best_val=best_rec, history=history)


def fit(
    train: MapData, val: MapData | None, recipe: Recipe, cfg: TrainConfig, show_progress: bool = False
) -> FitResult:
    """Train one classifier: the CNN, keeping the state with the best validation weighted F1 (ties: lower loss);
    or, for a recipe without the CNN, the logistic regression of :func:`fit_linear`."""
    if not recipe.cnn:
        return fit_linear(train, val, recipe, cfg)
    import torch
    import torch.nn.functional as F

    from attnpatterns.classifier.features import NUM_FEATURES
    from attnpatterns.classifier.labels import LABELS
    from attnpatterns.classifier.model import PatternCNN
    from attnpatterns.classifier.predict import logits_of, prepared_batches, prepared_features
    from attnpatterns.classifier.scoring import scores
    from attnpatterns.progress import progress_iter
    from attnpatterns.seed import set_seed

    set_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    maps, y = _training_maps(train, recipe, cfg)
    pre = preprocess_for(recipe, train)
    x_tr = prepared_batches(maps, pre)
    f_tr = prepared_features(maps, pre)  # None without the feature branch
    y_tr = torch.as_tensor(y)
    x_va = prepared_batches(val.maps, pre) if val is not None and len(val) else None
    f_va = prepared_features(val.maps, pre) if val is not None and x_va is not None else None
    y_va = torch.as_tensor(val.y) if val is not None and x_va is not None else None

    model = PatternCNN(
        num_classes=len(LABELS),
        num_features=NUM_FEATURES if pre.features else 0,
        dropout=recipe.dropout if pre.features else 0.0,
    )
    if f_tr is not None:
        model.set_feature_scaling(f_tr)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    weight = None
    if recipe.class_weights:
        counts = np.bincount(y, minlength=len(LABELS)).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / (counts > 0).sum(), 0.0)
        weight = torch.as_tensor(w, dtype=torch.float32)
    gen = torch.Generator().manual_seed(cfg.seed)
    best_key, best_state, best_epoch, best_val = None, None, -1, {}
    history = []
    stale = 0
    for epoch in progress_iter(
        range(cfg.epochs), total=cfg.epochs, description=f"train {recipe.name}", show=show_progress
    ):
        model.train()
        perm = torch.randperm(x_tr.shape[0], generator=gen)
        total = 0.0
        for s in range(0, len(perm), cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            xb = x_tr[idx]
            if recipe.augment:
                xb = _augment(xb, gen, pre.scale)
            loss = F.cross_entropy(model(xb, f_tr[idx] if f_tr is not None else None), y_tr[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        rec = {"epoch": epoch, "train_loss": total / len(perm)}
        if x_va is not None and y_va is not None:
            logits = logits_of(model, x_va, feats=f_va)
            vloss = float(F.cross_entropy(logits, y_va))
            sc = scores(y_va.numpy(), logits.argmax(1).numpy())
            rec.update(val_loss=vloss, val_weighted_f1=sc["weighted_f1"], val_macro_f1=sc["macro_f1"])
            key = (sc["weighted_f1"], -vloss)
        else:
            key = (0.0, -rec["train_loss"])
        history.append(rec)
        if best_key is None or key > best_key:
            best_key, best_state, best_epoch, best_val = key, copy.deepcopy(model.state_dict()), epoch, rec
            stale = 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(model=model, preprocess=pre, best_epoch=best_epoch, best_val=best_val, history=history)


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
