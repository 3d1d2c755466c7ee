"""Saving and loading a trained pattern CNN: safetensors weights (no pickle) plus a JSON card.

``<stem>.safetensors`` holds the state dict and, in its metadata, ``format``, ``kind``, ``labels`` and
``preprocess``. ``<stem>.json`` (the card) holds the label set, the input rules, the training data
hash, the metrics, the command that made the model and the sha256 of the weights file. Loading
checks that the weights file is one of ours and that the card's hash matches it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from attnpatterns.errors import UserError

FORMAT = "attnpatterns.pattern-cnn"
FORMAT_VERSION = 1
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "models"


def default_path(kind: str) -> Path:
    """``models/pattern-cnn-<kind>.safetensors`` of the project (``$ATTN_CLASSIFIER_DIR`` overrides the folder)."""
    root = Path(os.environ.get("ATTN_CLASSIFIER_DIR", DEFAULT_DIR))
    return root / f"pattern-cnn-{kind}.safetensors"


def card_path(weights: str | os.PathLike) -> Path:
    return Path(weights).with_suffix(".json")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_rules(kind: str, pre: dict, min_tokens: int) -> dict:
    """The input rules written into the card: what a map must be and what is done to it."""
    how = (
        f"resized to {pre['size']}x{pre['size']} (area averaging when larger, nearest when smaller)"
        if pre["mode"] == "resize"
        else f"centre zero-padded to {pre['size']}x{pre['size']} (area-resized down when larger)"
    )
    scale = {
        "max": "divided by its maximum",
        "mass": f"multiplied so that its total is {pre['size']} (mass scaling)",
    }.get(pre["scale"], "values used as they are")
    if pre.get("features"):
        from attnpatterns.classifier.features import NUM_FEATURES

        nf = NUM_FEATURES
        if not pre.get("cnn", True):
            steps_feats = (
                f"the first {nf} pattern features of attnpatterns.classifier.features computed on the map at "
                "its own size (row-normalised inside), standardised with the stored training mean and std"
            )
            return _rules(kind, pre, min_tokens, steps_feats)
        scale += (
            f"; beside it, the first {nf} pattern features of attnpatterns.classifier.features computed on "
            "the map at its own size"
        )
    return _rules(kind, pre, min_tokens, f"each map {how}, then {scale}")


def _rules(kind: str, pre: dict, min_tokens: int, steps: str) -> dict:
    what = (
        "raw attention map attentions[layer][b, head, :n, :n] (rows sum to 1)"
        if kind == "raw"
        else "weight-normed map alpha_ij * ||f_h(x_j)|| (Kobayashi et al. 2020), any scale"
    )
    return {
        "map": f"one {what}: a finite, non-negative, square 2-D array over the n real tokens, rows = queries",
        "min_tokens": int(min_tokens),
        "dtype": "any float dtype; cast to float32",
        "preprocess": dict(pre),
        "steps": steps,
    }


@dataclass
class Card:
    kind: str
    labels: list[str]
    preprocess: dict
    min_tokens: int
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    command: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self, weights_file: str, weights_sha256: str) -> dict:
        import attnpatterns

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "labels": list(self.labels),
            "architecture": architecture(self.preprocess, len(self.labels)),
            "input": input_rules(self.kind, self.preprocess, self.min_tokens),
            "training": self.training,
            "metrics": self.metrics,
            "command": self.command,
            "weights": {"file": weights_file, "sha256": weights_sha256, "format": "safetensors"},
            "package_version": attnpatterns.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **self.extra,
        }


def architecture(pre: dict, n_labels: int) -> str:
    if not pre.get("cnn", True):
        from attnpatterns.classifier.features import NUM_FEATURES

        return (
            f"PatternLinear: multinomial logistic regression, linear ({NUM_FEATURES} standardised pattern "
            f"features) to {n_labels} classes, L2 strength chosen on the validation slice; no convolution"
        )
    return (
        "PatternCNN: conv 1-16-16, maxpool, 32-32, maxpool, 64-64, 1x1 to 16, global average pool, "
        + (
            f"then with the standardised pattern features: linear (16 + features) to 32, ReLU, linear to "
            f"{n_labels} classes"
            if pre.get("features")
            else f"1x1 to {n_labels} classes (Kovaleva et al. 2019)"
        )
        + "; Xavier init"
    )


def save(path: str | os.PathLike, model, card: Card) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and then its card ``<stem>.json`` (both atomically)."""
    from attnpatterns.io import save_safetensors, write_json

    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"{path}: the classifier file must end in .safetensors.")
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "kind": card.kind,
        "labels": json.dumps(list(card.labels)),
        "preprocess": json.dumps(card.preprocess),
        "min_tokens": str(int(card.min_tokens)),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_safetensors(path, state, metadata=meta)
    cp = card_path(path)
    write_json(cp, card.to_json(path.name, sha256_file(path)))
    return path, cp


@dataclass
class Loaded:
    model: object  # PatternCNN, eval mode
    kind: str
    labels: list[str]
    preprocess: dict
    min_tokens: int
    card: dict
    path: Path
    infer: object = None  # the model's forward for CPU inference (model.inference_graph); None: the model itself

    @property
    def forward(self):
        """What to call on prepared maps (and features) for logits: the inference graph, else the model."""
        return self.infer if self.infer is not None else self.model


def load(path: str | os.PathLike, kind: str | None = None, check_card: bool = True) -> Loaded:
    """Load a classifier written by :func:`save`; one-line UserError for anything else."""
    import torch
    from safetensors import safe_open

    from attnpatterns.classifier.labels import LABELS
    from attnpatterns.classifier.model import build_model

    path = Path(path)
    hint = "train one with 'attn classifier train --kind KIND' or pass the .safetensors of one"
    if not path.is_file():
        raise UserError(f"{path}: classifier file not found; {hint}.")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as e:  # safetensors raises its own error types for non-safetensors bytes
        raise UserError(f"{path}: not a safetensors file ({type(e).__name__}); {hint}.") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not an attnpatterns pattern classifier (no '{FORMAT}' metadata); {hint}.")
    try:
        labels = json.loads(meta["labels"])
        pre = json.loads(meta["preprocess"])
        file_kind = meta["kind"]
        min_tokens = int(meta.get("min_tokens", "2"))
    except (KeyError, ValueError):
        raise UserError(
            f"{path}: the classifier metadata is incomplete; retrain it with 'attn classifier train'."
        ) from None
    if tuple(labels) != tuple(LABELS):
        raise UserError(f"{path}: label set {labels} is not the five pattern types {list(LABELS)}; retrain it.")
    if kind is not None and file_kind != kind:
        raise UserError(f"{path}: this classifier is for {file_kind} maps, not {kind}; pass the {kind} model.")
    card: dict = {}
    if check_card:
        cp = card_path(path)
        if not cp.is_file():
            raise UserError(f"{path}: its card {cp.name} is missing; keep the .json beside the weights or retrain.")
        from attnpatterns.io import read_json

        card = read_json(cp)
        want = (card.get("weights") or {}).get("sha256") if isinstance(card, dict) else None
        if want != sha256_file(path):
            raise UserError(
                f"{cp}: the card does not match {path.name} (sha256 differs); the weights were changed, retrain or "
                f"restore them."
            )
    from attnpatterns.classifier.features import NUM_FEATURES

    nf = int(tensors["feat_mean"].shape[0]) if "feat_mean" in tensors else 0  # older models take fewer features
    if nf > NUM_FEATURES or (pre.get("features") and nf == 0):
        raise UserError(
            f"{path}: the classifier takes {nf} pattern features, this version computes {NUM_FEATURES}; "
            "retrain it with 'attn classifier train'."
        )
    try:
        head = "wide" if "lin.weight" in tensors else "mlp" if "mix.weight" in tensors else "linear"
        model = build_model(len(labels), pre, nf, head=head)
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
    except (RuntimeError, ValueError):
        raise UserError(
            f"{path}: the weights do not fit the pattern classifier; retrain it with 'attn classifier train'."
        ) from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    # channels-last convolution weights: about 1.6x faster inference on CPU for these small maps (bench_classify);
    # the values are the same, and save() writes contiguous copies
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's stubs
    from attnpatterns.classifier.model import inference_graph

    return Loaded(
        model=model,
        kind=file_kind,
        labels=list(labels),
        preprocess=pre,
        min_tokens=min_tokens,
        card=card,
        path=path,
        infer=inference_graph(model, int(pre.get("size", 8))) if pre.get("cnn", True) else None,
    )
