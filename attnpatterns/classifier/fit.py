"""Fitting one recipe on a training part: the CNN (Adam, batches, augmentation, class weights, the best-on-validation
checkpoint) or the logistic regression on features (its L2 strength chosen on the validation slice), and the map
preprocessing each recipe uses."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnpatterns.classifier.data import MapData
from attnpatterns.classifier.recipes import L2_GRID, Recipe, TrainConfig

log = logging.getLogger("attnpatterns")


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
    """The training part's maps and labels, with the recipe's synthetic maps added (after the real ones)."""
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

    from attnpatterns.classifier.predict import prepared_features

    torch.set_num_threads(max(1, cfg.threads))
    maps, y = _training_maps(train, recipe, cfg)
    pre = preprocess_for(recipe, train)
    f_tr = prepared_features(maps, pre)
    with_val = val if val is not None and len(val) > 0 else None
    f_va = prepared_features(with_val.maps, pre) if with_val is not None else None
    best, best_i, best_rec, history = _linear_on_features(f_tr, y, f_va, with_val.y if with_val is not None else None)
    return FitResult(model=best, preprocess=pre, best_epoch=best_i, best_val=best_rec, history=history)


def _linear_on_features(f_tr, y: np.ndarray, f_va=None, y_va: np.ndarray | None = None):
    """:func:`fit_linear` on computed features: training features (N, F) with labels ``y``, validation features
    and labels (or None) -> (best PatternLinear, its index in the history, its record, the history over C)."""
    import torch
    import torch.nn.functional as F

    from attnpatterns.classifier.labels import LABELS
    from attnpatterns.classifier.model import PatternLinear
    from attnpatterns.classifier.predict import logits_of
    from attnpatterns.classifier.scoring import scores

    y_tr = torch.as_tensor(y)
    has_val = f_va is not None and y_va is not None
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
        if f_va is not None and y_va is not None:
            logits = logits_of(model, None, feats=f_va)
            sc = scores(y_va, logits.argmax(1).numpy())
            rec.update(
                val_loss=float(F.cross_entropy(logits, torch.as_tensor(y_va))),
                val_weighted_f1=sc["weighted_f1"],
                val_macro_f1=sc["macro_f1"],
            )
            key = (sc["weighted_f1"], -C)
        else:
            key = (0.0, 0.0)
        history.append(rec)
        if best_key is None or key > best_key:
            best_key, best, best_rec, best_i = key, model, rec, len(history) - 1
    return best, best_i, best_rec, history


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
    if recipe.soft and train.soft is not None:  # vote shares for the real maps, one-hot for the synthetic ones
        t_tr = F.one_hot(y_tr, len(LABELS)).float()
        t_tr[: len(train)] = torch.as_tensor(train.soft, dtype=torch.float32)
    else:
        t_tr = y_tr
    x_va = prepared_batches(val.maps, pre) if val is not None and len(val) else None
    f_va = prepared_features(val.maps, pre) if val is not None and x_va is not None else None
    y_va = torch.as_tensor(val.y) if val is not None and x_va is not None else None

    model = PatternCNN(
        num_classes=len(LABELS),
        num_features=NUM_FEATURES if pre.features else 0,
        dropout=recipe.dropout if pre.features else 0.0,
        head=recipe.head,
    )
    if f_tr is not None:
        model.set_feature_scaling(f_tr)
    if recipe.head == "wide":  # start from the logistic regression on the features, held fixed; the CNN head adds
        linear = _linear_on_features(f_tr, y, f_va, y_va.numpy() if y_va is not None else None)[0]
        with torch.no_grad():
            model.lin.weight.copy_(linear.out.weight)
            model.lin.bias.copy_(linear.out.bias)
            model.out.weight.zero_()
        model.lin.requires_grad_(False)
        set_seed(cfg.seed)
    opt = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=recipe.weight_decay
    )
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
            loss = F.cross_entropy(model(xb, f_tr[idx] if f_tr is not None else None), t_tr[idx], weight=weight)
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
            key = (sc["weighted_f1"], -vloss) if recipe.select == "f1" else (-vloss, sc["weighted_f1"])
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
