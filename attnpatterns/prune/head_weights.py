"""Per head, the fraction of its weights an m-pruning mask keeps: how unstructured pruning is read as heads.

m-pruning removes single weights, not heads; a head's weights are its rows of the Q, K, V weights and biases and its
columns of the attention output weight. The m-pruning stage records the (layers, heads) fractions in its
``summary.json`` (``head_weight_kept``); :func:`magnitude_head_survival` reads them, or computes them from the mask
file of a run made before the stage recorded them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.run.layout import SeedLayout


def head_weight_survival(
    masks: dict[str, np.ndarray], num_layers: int, num_heads: int, model_type: str = "bert"
) -> np.ndarray:
    """Per head, the fraction of its prunable weights an m-pruning mask keeps: (L, H) in [0, 1].

    A head's weights: its rows of the Q, K, V weights and biases (the nn.Linear output slice h*d:(h+1)*d) and
    its columns of the attention output weight (the input slice). Names are the model's parameter names.
    """
    from attnpatterns.families import family_for

    fam = family_for(model_type)
    kept = np.zeros((num_layers, num_heads))
    total = np.zeros((num_layers, num_heads))
    pat = re.compile(r"(?:^|\.)" + re.escape(fam.layers) + r"\.(\d+)\.(.+)\.(weight|bias)$")
    rows_of = {fam.query, fam.key, fam.value}
    for name, m in masks.items():
        mt = pat.search(name)
        if not mt:
            continue
        layer, sub, what = int(mt.group(1)), mt.group(2), mt.group(3)
        if layer >= num_layers:
            raise UserError(f"m-pruning mask '{name}' names layer {layer}, but the model has {num_layers} layers.")
        a = np.asarray(m).astype(bool)
        if sub in rows_of:
            d = a.shape[0] // num_heads
            per = a.reshape(num_heads, d, -1) if what == "weight" else a.reshape(num_heads, d, 1)  # (H, d, in)
            kept[layer] += per.reshape(num_heads, -1).sum(axis=1)
            total[layer] += per.reshape(num_heads, -1).shape[1]
        elif sub == fam.attn_out and what == "weight":
            d = a.shape[1] // num_heads
            per = a.reshape(a.shape[0], num_heads, d).transpose(1, 0, 2)  # (H, out, d)
            kept[layer] += per.reshape(num_heads, -1).sum(axis=1)
            total[layer] += per.reshape(num_heads, -1).shape[1]
    if not total.any():
        raise UserError(
            "the m-pruning mask names no attention weights this report knows; "
            f"expected names like '...{fam.layers}.0.{fam.query}.weight'."
        )
    return np.divide(kept, total, out=np.full_like(kept, np.nan), where=total > 0)


def _load_weight_masks(path: Path) -> dict[str, np.ndarray]:
    from attnpatterns.prune.masks import read_weight_masks

    return {k: v.numpy() for k, v in read_weight_masks(path)[0].items()}


def magnitude_head_survival(
    seed_dir: str | os.PathLike,
    num_layers: int | None = None,
    num_heads: int | None = None,
    model_type: str = "bert",
) -> np.ndarray:
    """(L, H) kept fraction of each head's weights under a seed's m-pruning mask: the stage's record, else the mask.

    Without a shape the record alone is read (enough in a folder of committed results, which keeps no masks).
    Raises :class:`FileNotFoundError` naming what is missing when neither answers."""
    from attnpatterns.io import read_json

    sl = SeedLayout(Path(seed_dir))
    rec = read_json(sl.summary("magnitude")).get("head_weight_kept")
    if rec is not None:
        a = np.asarray(rec, dtype=float)
        if num_layers is None or a.shape == (num_layers, num_heads):
            return a
    if num_layers is None or num_heads is None:
        raise FileNotFoundError(
            f"{sl.summary('magnitude')}: no per-head record (head_weight_kept), and no model shape to map the mask with"
        )
    if not sl.mask("magnitude").is_file():
        raise FileNotFoundError(f"{sl.mask('magnitude')}: no m-pruning mask and no per-head record in its summary")
    return head_weight_survival(_load_weight_masks(sl.mask("magnitude")), num_layers, num_heads, model_type)
