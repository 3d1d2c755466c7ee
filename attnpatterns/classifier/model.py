"""The pattern CNN of the original study and the map preprocessing that feeds it.

Architecture (Kovaleva et al. 2019, as used by Prasanna et al. 2020): 8 conv layers,
Conv 1-16-16, max-pool, 32-32, max-pool, 64-64, 1x1 conv to 16, global average pool,
1x1 conv to the classes; ReLU after every conv but the last, Xavier init. Fully
convolutional, so it takes a map of any size.

Preprocessing turns a (K, n, n) stack of maps into the (K, 1, S, S) CNN input:

- ``mode="pad"`` (the original recipe): each map centre zero-padded to S x S (S = the
  largest map of the training set); maps larger than S are area-resized down to S.
- ``mode="resize"``: every map resized to S x S (area averaging when shrinking, nearest
  when enlarging). A fixed small S makes the CNN cost independent of the sentence length,
  which is what lets ``attn classify`` run tens of thousands of maps in large batches.

and then scales the values:

- ``scale="none"`` (the original recipe): values as they are.
- ``scale="max"``: each map divided by its maximum, so maps of any length and any norm
  (weight-normed maps have no fixed range) fill [0, 1].
- ``scale="mass"``: each prepared map multiplied so that its total is S (its rows sum to 1 on
  average, like a raw map of S tokens): the scale of weight-normed maps and the dilution by
  resizing go away, while a peaked map keeps higher values than a diffuse one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnpatterns.classifier.choices import HEADS, MODES, SCALES


@dataclass(frozen=True)
class Preprocess:
    """How a map becomes the CNN input. Stored in the model card and in the weights' metadata."""

    size: int = 32
    mode: str = "resize"
    scale: str = "max"
    features: bool = False  # also compute the pattern features (classifier.features) for the feature branch
    cnn: bool = True  # False: the model takes the features alone (PatternLinear) and the resized map is not made

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if self.size < 4:
            raise ValueError(f"size must be at least 4 (two 2x2 poolings), got {self.size}")

    def to_dict(self) -> dict:
        return asdict(self)


def prepare(maps: Tensor, pre: Preprocess) -> Tensor:
    """(K, n, n) maps of one length -> (K, 1, S, S) float32 CNN input."""
    if maps.dim() != 3 or maps.shape[-1] != maps.shape[-2]:
        raise ValueError(f"expected (K, n, n) maps, got shape {tuple(maps.shape)}")
    if pre.mode == "resize" and maps.device.type == "cpu":  # prepare_torch's numbers, in one compiled pass
        from attnpatterns.classifier.features_fused import resize_maps

        return torch.from_numpy(resize_maps(maps.float().numpy(), pre.size, pre.scale)).unsqueeze(1)
    return prepare_torch(maps, pre)


def prepare_torch(maps: Tensor, pre: Preprocess) -> Tensor:
    """:func:`prepare` as tensor operations (any device; the padding mode always)."""
    x = maps.float().unsqueeze(1)  # (K, 1, n, n)
    n, S = x.shape[-1], pre.size
    if n > S:
        x = F.interpolate(x, size=(S, S), mode="area")  # (K, 1, S, S): block means
    elif n < S:
        if pre.mode == "pad":
            lo = (S - n) // 2
            x = F.pad(x, (lo, S - n - lo, lo, S - n - lo))  # (K, 1, S, S): centre zero-pad
        else:
            x = F.interpolate(x, size=(S, S), mode="nearest-exact")  # (K, 1, S, S)
    if pre.scale == "max":
        peak = x.amax(dim=(1, 2, 3), keepdim=True)  # (K, 1, 1, 1)
        x = x / peak.clamp_min(1e-12)
    elif pre.scale == "mass":
        total = x.sum(dim=(1, 2, 3), keepdim=True)  # (K, 1, 1, 1)
        x = x * (S / total.clamp_min(1e-12))
    return x


def _standardise(model: Any, feats: Tensor) -> Tensor:
    """The first ``model.num_features`` features (older models take fewer), standardised with its stored scaling."""
    return (feats[:, : model.num_features] - model.feat_mean) / model.feat_std


def _set_scaling(model: Any, feats: Tensor) -> None:
    std = feats.std(0, unbiased=False)
    model.feat_mean.copy_(feats.mean(0))
    # a feature that is (nearly) constant in training, e.g. the scale of raw maps whose rows all sum to 1, is
    # centred but not scaled: dividing by its tiny std would blow up rounding noise (a map saved as float16)
    model.feat_std.copy_(torch.where(std < 1e-3, torch.ones_like(std), std))


class PatternCNN(nn.Module):
    """Conv 1-16-16, pool, 32-32, pool, 64-64, 1x1 to 16, global average pool, 1x1 to classes.

    With ``num_features > 0`` (the improved recipe) the 1x1 head is replaced by a feature branch: the 16
    pooled CNN channels and the standardised pattern features of the map (:mod:`classifier.features`,
    computed on the map at its own size) go through Linear(16 + F, 32), ReLU, Linear(32, classes) (``head="mlp"``),
    or one Linear(16 + F, classes) (``"linear"``); ``"wide"`` adds Linear(F, classes) of the standardised features
    alone to the ``"mlp"`` head's output (the shipped recipe fits it as a logistic regression first and holds it
    fixed). The standardisation (training-set mean and std of each feature) is stored with the weights; the head
    is read back from the weights' names.
    """

    def __init__(self, num_classes: int = 5, num_features: int = 0, dropout: float = 0.0, head: str = "mlp"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        c = [1, 16, 16, 32, 32, 64, 64]
        convs = []
        for i in range(6):
            convs.append(nn.Conv2d(c[i], c[i + 1], kernel_size=3, padding=1))
        self.convs = nn.ModuleList(convs)
        self.reduce = nn.Conv2d(64, 16, kernel_size=1)
        self.num_classes = num_classes
        self.num_features = num_features
        if num_features > 0:
            self.register_buffer("feat_mean", torch.zeros(num_features))
            self.register_buffer("feat_std", torch.ones(num_features))
            self.drop = nn.Dropout(dropout)  # training only; no weights
            self.head_kind = head
            if head in ("mlp", "wide"):
                self.mix = nn.Linear(16 + num_features, 32)
                self.out = nn.Linear(32, num_classes)
            if head == "wide":
                self.lin = nn.Linear(num_features, num_classes)
            elif head == "linear":  # the pooled channels and the features straight to the classes
                self.out = nn.Linear(16 + num_features, num_classes)
        else:
            self.head = nn.Conv2d(16, num_classes, kernel_size=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def set_feature_scaling(self, feats: Tensor) -> None:
        """Standardise features with the mean and std of ``feats`` (N, F), the training set's."""
        _set_scaling(self, feats)

    def forward(self, x: Tensor, feats: Tensor | None = None) -> Tensor:
        """(B, 1, S, S) [+ (B, F) features] -> (B, classes) logits."""
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x), inplace=True)  # (B, c, s, s)
            if i in (1, 3):
                x = F.max_pool2d(x, 2, ceil_mode=True)  # (B, c, s/2, s/2)
        x = F.relu(self.reduce(x))  # (B, 16, s, s)
        x = x.mean(dim=(2, 3), keepdim=True)  # (B, 16, 1, 1): global average pool
        if self.num_features == 0:
            return self.head(x).flatten(1)  # (B, classes)
        if feats is None:
            raise ValueError("this classifier has a feature branch: pass the map features")
        f = _standardise(self, feats)  # (B, F)
        z = self.drop(torch.cat([x.flatten(1), f], dim=1))  # (B, 16 + F)
        if self.head_kind == "linear":
            return self.out(z)  # (B, classes)
        y = self.out(F.relu(self.mix(z)))  # (B, classes)
        return y + self.lin(f) if self.head_kind == "wide" else y


def inference_graph(model: nn.Module, size: int):
    """``model``'s forward for CPU inference: a PatternCNN traced and frozen as a TorchScript graph with oneDNN
    convolutions (weights prepacked once, activations kept in oneDNN's layout from layer to layer), about 1.5x faster
    than the eager channels-last model on batches of 8 x 8 maps (bench/bench_classify.py) and equal to it up to float
    rounding (tests/test_classifier.py). ``size`` is the CNN input's side. Anything else, or a torch without
    TorchScript (deprecated in recent torch releases), gets the model itself back."""
    import warnings

    if not isinstance(model, PatternCNN) or not torch.backends.mkldnn.is_available():
        return model
    x = torch.zeros(2, 1, size, size)
    f = torch.zeros(2, model.num_features) if model.num_features else None
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit's DeprecationWarnings; the fallback below covers its removal
            traced = torch.jit.trace(model, (x, f) if f is not None else (x,), check_trace=False)
            graph = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            graph(x, f) if f is not None else graph(x)
    except Exception:  # noqa: BLE001 - any failure to build the graph: the eager model is the same function
        return model
    return graph


class PatternLinear(nn.Module):
    """Multinomial logistic regression on the standardised pattern features (:mod:`classifier.features`), no
    convolution: logits = W (f - mean) / std + b. The ``features`` recipe; the L2 strength is chosen on the
    validation slice (:func:`attnpatterns.classifier.fit.fit_linear`)."""

    def __init__(self, num_classes: int = 5, num_features: int = 0):
        super().__init__()
        if num_features < 1:
            raise ValueError("PatternLinear needs the pattern features (num_features >= 1)")
        self.num_classes = num_classes
        self.num_features = num_features
        self.register_buffer("feat_mean", torch.zeros(num_features))
        self.register_buffer("feat_std", torch.ones(num_features))
        self.out = nn.Linear(num_features, num_classes)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def set_feature_scaling(self, feats: Tensor) -> None:
        _set_scaling(self, feats)

    def standardised(self, feats: Tensor) -> Tensor:
        return _standardise(self, feats)

    def forward(self, x: Tensor | None, feats: Tensor | None = None) -> Tensor:
        """(B, F) features -> (B, classes) logits; ``x`` (the resized map) is not used."""
        if feats is None:
            raise ValueError("PatternLinear classifies the map features: pass them")
        return self.out(self.standardised(feats))


def build_model(num_classes: int, pre: dict, num_features: int, head: str = "mlp") -> nn.Module:
    """The classifier a preprocessing dict describes: PatternLinear without the CNN, else PatternCNN with the
    given feature-branch head."""
    if not pre.get("cnn", True):
        return PatternLinear(num_classes, num_features)
    return PatternCNN(num_classes, num_features if pre.get("features") else 0, head=head)
