"""Classify the maps of chosen heads on a task's dev examples: per-head counts and the pooled distribution.

The forward pass runs in batches of examples; for each batch the maps of the chosen heads are cut to each
example's real tokens, prepared to the CNN's fixed input size on the fly, and classified many maps per CNN
batch, so the CNN's cost does not grow with the sentence length.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")

KIND_CHOICES = ("raw", "normed", "both")


@dataclass
class HeadClassification:
    """What :func:`classify_heads` returns.

    ``per_head``: one row per (kind, layer, head): ``n`` maps and a count per label (sums to ``n``).
    ``pooled``: one row per (kind, label): ``count`` (the sum of the per-head counts) and ``fraction``.
    ``predictions``: one row per classified map (kind, example, layer, head, label, probability).
    """

    task: str
    model: str
    kinds: list[str]
    heads: list[tuple[int, int]]
    example_ids: list[str]
    per_head: Any  # pandas DataFrame
    pooled: Any  # pandas DataFrame
    predictions: Any  # pandas DataFrame
    meta: dict = field(default_factory=dict)


def resolve_heads(heads, num_layers: int, num_heads: int) -> tuple[list[tuple[int, int]], str]:
    """(sorted (layer, head) pairs, a description) from None (all heads), a head-set path, a HeadSet or pairs."""
    from attnpatterns.prune.head_set import HeadSet, read_head_set

    if heads is None:
        return [(l, h) for l in range(num_layers) for h in range(num_heads)], "all heads"
    if isinstance(heads, (str, os.PathLike)):
        hs = read_head_set(heads, num_layers=num_layers, num_heads=num_heads)
        desc = str(heads)
    elif isinstance(heads, HeadSet):
        hs = HeadSet.from_json(heads.to_json(), num_layers=num_layers, num_heads=num_heads, source="head set")
        desc = "head set"
    else:
        hs = HeadSet.from_json([list(p) for p in heads], num_layers=num_layers, num_heads=num_heads, source="heads")
        desc = "given heads"
    if not hs.heads:
        raise UserError(f"{desc}: the head set is empty; there are no heads to classify.")
    return list(hs.heads), desc


def select_examples(tokenizer, examples: list, n: int, min_tokens: int, max_length: int, pair: bool) -> list:
    """The first ``n`` examples with at least ``min_tokens`` tokens (after truncation to ``max_length``)."""
    chosen = []
    for s in range(0, len(examples), 512):
        chunk = examples[s : s + 512]
        enc = tokenizer(
            [e.text_a for e in chunk],
            [e.text_b for e in chunk] if pair else None,
            truncation=True,
            max_length=max_length,
        )
        for e, ids in zip(chunk, enc["input_ids"]):
            if len(ids) >= min_tokens:
                chosen.append(e)
                if len(chosen) == n:
                    return chosen
    return chosen


def classify_heads(
    task: str,
    heads=None,
    *,
    model: str | None = None,
    n: int = 100,
    kind: str = "both",
    data_dir: str | os.PathLike | None = None,
    split: str = "dev",
    batch_size: int = 32,
    max_length: int = 128,
    device: str = "cpu",
    classifiers: dict[str, str | os.PathLike] | None = None,
    model_and_tokenizer: tuple | None = None,
    cnn_batch_size: int = 512,
    show_progress: bool = False,
) -> HeadClassification:
    """Classify the maps of ``heads`` (None: all heads) on the first ``n`` dev examples of ``task``.

    ``heads``: a head-set JSON path (``attn survivors`` output or a plain list of [layer, head] pairs),
    a :class:`~attnpatterns.prune.masks.HeadSet`, or pairs. ``kind``: raw, normed or both.
    ``model_and_tokenizer``: an already loaded (model, tokenizer), e.g. a fine-tuned model in memory.
    """
    import pandas as pd
    import torch

    from attnpatterns.classifier.features import NUM_FEATURES, map_features
    from attnpatterns.classifier.labels import LABELS
    from attnpatterns.classifier.model import Preprocess, prepare
    from attnpatterns.classifier.predict import get_classifier, logits_of
    from attnpatterns.data import get_task, load_task
    from attnpatterns.families import shape_of
    from attnpatterns.maps import attention_parts
    from attnpatterns.models import load_model, model_id
    from attnpatterns.progress import progress_iter

    if kind not in KIND_CHOICES:
        raise UserError(f"unknown --kind '{kind}'; use raw, normed or both.")
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}.")
    kinds = ["raw", "normed"] if kind == "both" else [kind]
    classifiers = classifiers or {}
    clfs = {k: get_classifier(k, classifiers.get(k)) for k in kinds}
    pres = {k: Preprocess(**c.preprocess) for k, c in clfs.items()}
    min_tokens = max(c.min_tokens for c in clfs.values())

    spec = get_task(task)
    if model_and_tokenizer is not None:
        mdl, tok = model_and_tokenizer
        mid = getattr(getattr(mdl, "config", None), "_name_or_path", "") or "given model"
    else:
        mdl, tok = load_model(model, device=device)
        mid = model_id(model)
    L, H, _ = shape_of(mdl)
    pairs, head_desc = resolve_heads(heads, L, H)
    pairs = sorted((int(p[0]), int(p[1])) for p in pairs)  # layer, then head: the order the maps are gathered in
    K = len(pairs)

    examples = load_task(spec, split, data_dir)
    chosen = select_examples(tok, examples, n, min_tokens, max_length, pair=bool(spec.text_b))
    if not chosen:
        raise UserError(f"{task} {split}: no example has at least {min_tokens} tokens (the classifier's minimum).")
    if len(chosen) < n:
        log.warning(
            "%s %s: only %d examples have at least %d tokens; classifying those.", task, split, len(chosen), min_tokens
        )

    dev = next(mdl.parameters()).device
    # the chosen heads grouped by layer, in the order of ``pairs`` (sorted by layer, then head), as indices on the
    # maps' device: None = every head of the layer
    by_layer: list[tuple[int, torch.Tensor | None]] = []
    for li in sorted({p[0] for p in pairs}):
        in_layer = [p[1] for p in pairs if p[0] == li]
        by_layer.append((li, None if in_layer == list(range(H)) else torch.tensor(in_layer, device=dev)))
    flat_idx = torch.tensor([p[0] * H + p[1] for p in pairs], device=dev)
    upto = max(p[0] for p in pairs) + 1
    preds = {k: np.zeros((len(chosen), K), dtype=np.int64) for k in kinds}
    probs = {k: np.zeros((len(chosen), K), dtype=np.float32) for k in kinds}
    starts = range(0, len(chosen), batch_size)
    for s in progress_iter(starts, total=len(starts), description=f"classify {task}", show=show_progress):
        chunk = chosen[s : s + batch_size]
        enc = tok(
            [e.text_a for e in chunk],
            [e.text_b for e in chunk] if spec.text_b else None,
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        batch = {k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        # L' x (B, H, T, T) and (B, L', H, T), L' = the last chosen layer + 1: the forward pass stops there
        layers, fnorm = attention_parts(mdl, batch, normed="normed" in kinds, upto=upto)
        mask = batch["attention_mask"].bool().cpu()
        S = {k: pres[k].size for k in kinds}
        # per kind: the resized maps (CNN recipes only) and the features of every (example, head)
        x = {k: torch.empty(len(chunk), K, 1, S[k], S[k]) if pres[k].cnn else None for k in kinds}
        feats = {k: torch.empty(len(chunk), K, NUM_FEATURES) if pres[k].features else None for k in kinds}
        for b in range(len(chunk)):
            n_real = int(mask[b].sum())
            right = bool(mask[b, :n_real].all())  # right padding: the real tokens come first
            idx = None if right else mask[b].nonzero().flatten().to(layers[0].device)
            parts = []  # (h, n, n) per layer, cut to the real tokens: only those entries are copied
            for li, hs in by_layer:
                a = layers[li][b] if hs is None else layers[li][b, hs]  # (h, T, T)
                parts.append(a[:, :n_real, :n_real] if right else a[:, idx][:, :, idx])
            raw_b = torch.cat(parts).float().cpu()  # (K, n, n)
            for k in kinds:
                if k == "raw":
                    m = raw_b
                else:  # alpha_ij * ||f_h(x_j)||, on the real tokens only
                    assert fnorm is not None  # asked for whenever "normed" is among the kinds
                    norms = fnorm[b].reshape(upto * H, -1)[flat_idx]  # (K, T)
                    norms = norms[:, :n_real] if right else norms[:, idx]
                    m = raw_b * norms.float().cpu()[:, None, :]
                xk, fk = x[k], feats[k]
                if xk is not None:
                    xk[b] = prepare(m, pres[k])  # (K, 1, S, S)
                if fk is not None:
                    fk[b] = map_features(m)  # (K, F), on the map at its own size
        for k in kinds:
            fk, xk = feats[k], x[k]
            f = fk.view(-1, NUM_FEATURES) if fk is not None else None
            xs = xk.view(-1, 1, S[k], S[k]) if xk is not None else None
            p = torch.softmax(logits_of(clfs[k].forward, xs, cnn_batch_size, f), dim=1)  # (B*K, 5)
            best, arg = p.max(dim=1)
            preds[k][s : s + len(chunk)] = arg.view(len(chunk), K).numpy()
            probs[k][s : s + len(chunk)] = best.view(len(chunk), K).numpy()

    from attnpatterns.bootstrap import bootstrap_fractions

    ids = [e.id for e in chosen]
    per_rows, pooled_rows, pred_frames = [], [], []
    for k in kinds:
        counts = np.stack([np.bincount(preds[k][:, j], minlength=len(LABELS)) for j in range(K)])  # (K, 5)
        for j, (l, h) in enumerate(pairs):
            per_rows.append(
                {
                    "kind": k,
                    "layer": l,
                    "head": h,
                    "n": int(counts[j].sum()),
                    **{lab: int(c) for lab, c in zip(LABELS, counts[j])},
                    "majority": LABELS[int(counts[j].argmax())],
                }
            )
        total = counts.sum(axis=0)
        per_example = np.stack([np.bincount(row, minlength=len(LABELS)) for row in preds[k]])  # (examples, 5)
        _, lo, hi = bootstrap_fractions(per_example, seed=0)
        for j, (lab, c) in enumerate(zip(LABELS, total)):
            pooled_rows.append(
                {
                    "kind": k,
                    "label": lab,
                    "count": int(c),
                    "fraction": float(c / total.sum()),
                    "ci_low": float(lo[j]),
                    "ci_high": float(hi[j]),
                }
            )
        pred_frames.append(
            pd.DataFrame(
                {
                    "kind": k,
                    "example": np.repeat(ids, K),
                    "layer": np.tile([p[0] for p in pairs], len(ids)),
                    "head": np.tile([p[1] for p in pairs], len(ids)),
                    "label": [LABELS[i] for i in preds[k].ravel()],
                    "probability": probs[k].ravel(),
                }
            )
        )
    meta = {
        "task": spec.name,
        "split": split,
        "model": mid,
        "n_requested": n,
        "n_examples": len(chosen),
        "min_tokens": min_tokens,
        "max_length": max_length,
        "heads_from": head_desc,
        "num_heads_classified": K,
        "model_shape": [L, H],
        "classifiers": {
            k: {"path": str(c.path), "sha256": (c.card.get("weights") or {}).get("sha256")} for k, c in clfs.items()
        },
    }
    return HeadClassification(
        task=spec.name,
        model=mid,
        kinds=kinds,
        heads=pairs,
        example_ids=ids,
        per_head=pd.DataFrame(per_rows),
        pooled=pd.DataFrame(pooled_rows),
        predictions=pd.concat(pred_frames, ignore_index=True),
        meta=meta,
    )


def write_outputs(result: HeadClassification, out_dir: str | os.PathLike) -> list[Path]:
    """per_head.csv, pooled.csv, predictions.csv and classify.json (all of it) in ``out_dir``, atomically."""
    from attnpatterns.io import write_json, write_text

    out = Path(out_dir)
    files = [
        write_text(out / "per_head.csv", result.per_head.to_csv(index=False)),
        write_text(out / "pooled.csv", result.pooled.to_csv(index=False)),
        write_text(out / "predictions.csv", result.predictions.to_csv(index=False, float_format="%.4f")),
    ]
    files.append(
        write_json(
            out / "classify.json",
            {
                **result.meta,
                "kinds": result.kinds,
                "heads": [list(p) for p in result.heads],
                "example_ids": result.example_ids,
                "pooled": result.pooled.to_dict(orient="records"),
                "per_head": result.per_head.to_dict(orient="records"),
            },
        )
    )
    return files


def pooled_table(result: HeadClassification) -> list[list]:
    """Rows label, then count, fraction and its 95% bootstrap interval (over examples) per kind: the printed summary."""
    from attnpatterns.classifier.labels import LABELS

    rows = []
    for lab in LABELS:
        row: list = [lab]
        for k in result.kinds:
            r = result.pooled[(result.pooled.kind == k) & (result.pooled.label == lab)].iloc[0]
            row += [int(r["count"]), float(r["fraction"]), f"{100 * r['ci_low']:.1f}-{100 * r['ci_high']:.1f}%"]
        rows.append(row)
    return rows
