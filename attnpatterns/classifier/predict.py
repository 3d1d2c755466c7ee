"""Classify maps with a trained pattern CNN: arrays in memory, stacks of head maps, or .npy files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from attnpatterns.errors import UserError

_CACHE: dict = {}


def get_classifier(kind: str, path: str | os.PathLike | None = None):
    """The loaded classifier for ``kind`` (default: ``models/pattern-cnn-<kind>.safetensors``), cached per file."""
    from attnpatterns.classifier import card as card_mod
    from attnpatterns.classifier.labels import check_kind

    check_kind(kind)
    p = Path(path) if path is not None else card_mod.default_path(kind)
    if not p.is_file():
        raise UserError(
            f"{p}: classifier file not found; train one with 'attn classifier train --kind {kind}' or pass "
            f"--classifier."
        )
    key = (str(p.resolve()), kind, p.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = card_mod.load(p, kind=kind)
    return _CACHE[key]


def _by_length(maps: Sequence, fn, out):
    """Fill ``out[i]`` for every map with ``fn`` applied to the (k, n, n) stack of all maps of one length n."""
    import torch

    by_len: dict[int, list[int]] = {}
    for i, m in enumerate(maps):
        by_len.setdefault(int(m.shape[-1]), []).append(i)
    for idx in by_len.values():
        stack = torch.stack([torch.as_tensor(np.asarray(maps[i]), dtype=torch.float32) for i in idx])  # (k, n, n)
        out[idx] = fn(stack)
    return out


def prepared_batches(maps: Sequence, pre, order: Sequence[int] | None = None):
    """Stack maps of any lengths into one (N, 1, S, S) tensor, preparing all maps of one length in one call."""
    import torch

    from attnpatterns.classifier.model import Preprocess, prepare

    pre = pre if isinstance(pre, Preprocess) else Preprocess(**pre)
    if not pre.cnn:  # a features-only model: no resized map to make
        return None
    return _by_length(maps, lambda stack: prepare(stack, pre), torch.empty(len(maps), 1, pre.size, pre.size))


def prepared_features(maps: Sequence, pre):
    """(N, F) pattern features of maps of any lengths when ``pre.features`` (else None), by length as above."""
    import torch

    from attnpatterns.classifier.features import NUM_FEATURES, map_features
    from attnpatterns.classifier.model import Preprocess

    pre = pre if isinstance(pre, Preprocess) else Preprocess(**pre)
    if not pre.features:
        return None
    return _by_length(maps, map_features, torch.empty(len(maps), NUM_FEATURES))


def logits_of(model, x, batch_size: int = 512, feats=None):
    """Run the classifier (a model, or a loaded classifier's ``forward``) on prepared inputs (N, 1, S, S) [and
    features (N, F)] in batches; (N, classes) logits. ``x`` is None for a features-only model."""
    import torch

    from attnpatterns.classifier.labels import LABELS

    outs = []
    n = x.shape[0] if x is not None else (feats.shape[0] if feats is not None else 0)
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            outs.append(
                model(
                    x[s : s + batch_size] if x is not None else None,
                    feats[s : s + batch_size] if feats is not None else None,
                )
            )
    return torch.cat(outs) if outs else torch.empty(0, len(LABELS))


def check_maps(maps: Sequence, where: str = "map") -> list[np.ndarray]:
    """Each map as a finite, non-negative, square 2-D float32 array; a UserError naming the first bad one."""
    out = []
    for i, m in enumerate(maps):
        a = np.asarray(m)
        name = f"{where} {i}" if len(maps) > 1 else where
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
            raise UserError(f"{name}: expected a square 2-D map (T x T over the real tokens), got shape {a.shape}.")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise UserError(f"{name}: expected numbers, got dtype {a.dtype}; save the map as a float array.")
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise UserError(f"{name}: the map holds NaN or infinite values; recompute it.")
        if (a < 0).any():
            raise UserError(f"{name}: the map holds negative values; attention maps are non-negative.")
        out.append(a)
    return out


def classify_maps(
    maps: Sequence, kind: str, classifier: str | os.PathLike | None = None, batch_size: int = 512
) -> tuple[list[str], np.ndarray]:
    """Labels and class probabilities (N, 5) for 2-D maps of any sizes.

    ``kind`` is raw or normed; ``classifier`` a .safetensors path (default: the shipped model).
    """
    import torch

    clf = get_classifier(kind, classifier)
    arrays = check_maps(maps)
    if not arrays:
        return [], np.zeros((0, len(clf.labels)), dtype=np.float32)
    x = prepared_batches(arrays, clf.preprocess)
    f = prepared_features(arrays, clf.preprocess)
    probs = torch.softmax(logits_of(clf.forward, x, batch_size, f), dim=1).numpy()
    return [clf.labels[i] for i in probs.argmax(1)], probs


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """One map from a .npy file, without pickle; a one-line UserError for anything that is not a 2-D numeric array."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path.")
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise UserError(
                f"{path}: holds pickled objects, which are refused; save a plain float array with np.save."
            ) from None
        raise UserError(
            f"{path}: not a .npy array ({str(e).splitlines()[0][:120]}); save the map with np.save."
        ) from None
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot be read as .npy ({type(e).__name__}); save the map with np.save.") from None
    if isinstance(a, np.lib.npyio.NpzFile):
        a.close()
        raise UserError(f"{path}: is an .npz archive; save one map per file with np.save (.npy).")
    return check_maps([a], where=str(path))[0]


@dataclass
class Prediction:
    name: str
    label: str
    probability: float


def read_maps_npz(path: str | os.PathLike, kind: str) -> list[tuple[str, np.ndarray]]:
    """Every head's ``kind`` map in an ``attn maps`` archive, named ``<stem>:L<l>H<h>`` (one input, key ``<kind>``)
    or ``<stem>:<example id>:L<l>H<h>`` (a task's examples, keys ``<kind>_<i>`` and ``ids``); no pickle."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path.")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(
            f"{path}: cannot be read as an .npz archive ({type(e).__name__}); make it with 'attn maps'."
        ) from None
    with z:
        keys = set(z.files)
        if kind in keys:
            stacks = [(path.stem, z[kind])]
        else:
            idx = sorted(
                int(k.split("_", 1)[1]) for k in keys if k.startswith(f"{kind}_") and k.split("_", 1)[1].isdigit()
            )
            if not idx:
                raise UserError(f"{path}: no {kind} maps (keys '{kind}' or '{kind}_<i>'); make it with 'attn maps'.")
            ids = [str(x) for x in z["ids"]] if "ids" in keys else [str(i) for i in idx]
            stacks = [(f"{path.stem}:{ids[i] if i < len(ids) else i}", z[f"{kind}_{i}"]) for i in idx]
    out = []
    for name, a in stacks:
        if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
            raise UserError(f"{path}: {name} has shape {a.shape}, not (layers, heads, n, n); make it with 'attn maps'.")
        for layer in range(a.shape[0]):
            for head in range(a.shape[1]):
                out.append((f"{name}:L{layer}H{head}", check_maps([a[layer, head]], where=f"{path} {name}")[0]))
    return out


def predict_files(
    paths: Sequence[str | os.PathLike], kind: str, classifier: str | os.PathLike | None = None
) -> list[Prediction]:
    """One prediction per .npy file (name = the file stem), and per head of every input in an ``attn maps`` .npz
    archive (name ``<stem>[:<example id>]:L<l>H<h>``), in input order. Maps of an archive shorter than the
    classifier's minimum are left out; a single short .npy map is an error."""
    if not paths:
        raise UserError("no files given; pass one or more .npy maps or an 'attn maps' .npz archive.")
    clf = get_classifier(kind, classifier)
    named: list[tuple[str, np.ndarray]] = []
    for p in paths:
        if Path(p).suffix == ".npz":
            named += [(n, a) for n, a in read_maps_npz(p, kind) if a.shape[0] >= clf.min_tokens]
            continue
        a = read_npy(p)
        if a.shape[0] < clf.min_tokens:
            n = a.shape[0]
            raise UserError(f"{p}: the map is {n}x{n}, below the classifier's minimum of {clf.min_tokens} tokens.")
        named.append((Path(p).stem, a))
    if not named:
        raise UserError(f"no map of at least {clf.min_tokens} tokens in {', '.join(str(p) for p in paths)}.")
    labels, probs = classify_maps([a for _, a in named], kind, classifier)
    return [Prediction(n, lab, float(pr.max())) for (n, _), lab, pr in zip(named, labels, probs)]
