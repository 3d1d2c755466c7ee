"""Raw and weight-normed attention maps, cut to each example's real tokens.

Weight-normed (Kobayashi et al. 2020): ``||alpha_ij f_h(x_j)||`` with
``f_h(x) = (x W_V^h + b_V^h) W_O^h`` (b_O excluded). As alpha_ij is a scalar this is
``alpha_ij * ||f_h(x_j)||``: one (B, H, T) norm per layer, never a (B, H, T, T, d) tensor.
``||v W_O^h||^2 = v^T G_h v`` with the (d, d) Gram matrix ``G_h = W_O^h^T W_O^h``, so the norm
costs one small batched matmul per layer.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from attnpatterns.families import base_model, family_of, get_layers, get_submodule, shape_of


@dataclass
class ExampleMaps:
    """Maps of one example over its n real tokens: arrays (layers, heads, n, n) float32."""

    raw: np.ndarray
    normed: np.ndarray | None
    tokens: list[str]
    example_id: str = ""
    meta: dict = field(default_factory=dict)


def head_output_gram(model) -> list[Tensor]:
    """Per layer, the (H, d, d) Gram matrices ``W_O^h^T W_O^h`` of the attention output projection."""
    fam = family_of(model)
    n_layers, n_heads, d = shape_of(model)
    grams = []
    for layer in get_layers(model):
        W = get_submodule(layer, fam.attn_out).weight  # (hidden, H*d), nn.Linear (out, in)
        Wh = W.view(W.shape[0], n_heads, d).permute(1, 0, 2)  # (H, hidden, d): W_O^h reads head h's input slice
        grams.append(Wh.transpose(1, 2) @ Wh)  # (H, d, d)
    return grams


@contextlib.contextmanager
def _capture_values(model) -> Iterator[list]:
    fam = family_of(model)
    store: list[Tensor] = []
    handles = [
        get_submodule(layer, fam.value).register_forward_hook(lambda m, a, out: store.append(out))
        for layer in get_layers(model)
    ]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


class _Enough(Exception):
    """Raised by the hook on the last layer a caller needs: the rest of the forward pass is not computed."""


def _self_attention_path(fam) -> str:
    return fam.query.rsplit(".", 1)[0]  # the module whose output is (context, attention weights)


def _attentions_upto(model, base, batch: dict, upto: int) -> tuple[Tensor, ...] | None:
    """The raw maps of layers 0..upto-1, from hooks on their self-attention modules; the forward pass stops inside
    layer ``upto - 1`` right after its attention weights (its attention output, MLP and every later layer are not
    computed). None when the attention module returns no weights (a non-eager attention implementation)."""
    fam = family_of(model)
    got: list[Tensor | None] = []

    def hook(module, args, out, last: bool) -> None:
        got.append(out[1] if isinstance(out, tuple) and len(out) > 1 else None)
        if last:
            raise _Enough

    layers = get_layers(model)[:upto]
    handles = [
        get_submodule(layer, _self_attention_path(fam)).register_forward_hook(
            lambda m, a, o, last=(i == len(layers) - 1): hook(m, a, o, last)
        )
        for i, layer in enumerate(layers)
    ]
    try:
        base(**batch, return_dict=True)
    except _Enough:
        pass
    finally:
        for h in handles:
            h.remove()
    if len(got) != upto or any(a is None for a in got):
        return None
    return tuple(a for a in got if a is not None)


@torch.no_grad()
def attention_parts(
    model, batch: dict, normed: bool = True, upto: int | None = None
) -> tuple[tuple[Tensor, ...], Tensor | None]:
    """The parts of the maps of a padded batch, uncopied: the model's per-layer raw maps (L tensors (B, H, T, T))
    and, with ``normed``, the value-vector norms ``||f_h(x_j)||`` (B, L, H, T), so that the normed map of layer l
    is ``raw[l] * norms[:, l, :, None, :]``. For callers that only need some maps (e.g. cut to the real tokens),
    this skips stacking and multiplying the whole padded (B, L, H, T, T) tensors (:func:`attention_maps`).

    With ``upto``, only layers 0..upto-1 are returned and the forward pass stops right after the attention weights
    of layer ``upto - 1``: what follows them (that layer's attention output and MLP, the later layers, the pooler)
    does not change any map, so it is not computed. The maps are the same as those of the whole forward pass."""
    n_layers, n_heads, d = shape_of(model)
    base = base_model(model)
    ctx: Any = _capture_values(model) if normed else contextlib.nullcontext([])
    attentions: tuple[Tensor, ...] | None = None
    if upto is not None and not 1 <= upto <= n_layers:
        raise ValueError(f"upto must be in 1..{n_layers} (got {upto})")
    with ctx as values:
        if upto is not None:
            attentions = _attentions_upto(model, base, batch, upto)
            if attentions is None:  # weights not returned by the attention modules: the whole forward pass
                values.clear()
        if attentions is None:
            attentions = tuple(base(**batch, output_attentions=True, return_dict=True).attentions)[:upto]
    if not normed:
        return attentions, None
    grams = head_output_gram(model)
    norms = []
    for li, v in enumerate(values[: len(attentions)]):
        B, T, _ = v.shape
        vh = v.view(B, T, n_heads, d).transpose(1, 2)  # (B, H, T, d)
        sq = torch.einsum("bhtd,hde,bhte->bht", vh, grams[li], vh)  # (B, H, T) = ||f_h(x_t)||^2
        norms.append(sq.clamp_min(0).sqrt())
    return attentions, torch.stack(norms, dim=1)  # (B, L or upto, H, T)


@torch.no_grad()
def attention_maps(model, batch: dict, normed: bool = True) -> tuple[Tensor, Tensor | None]:
    """Raw (and normed) maps of a padded batch: (B, L, H, T, T) each, on the model's device.

    ``batch`` holds ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``. Rows and
    columns of padding positions are zero in the normed map and meaningless in the raw map; use
    :func:`cut_maps` to keep the real tokens only.
    """
    layers, fnorm = attention_parts(model, batch, normed)
    raw = torch.stack(layers, dim=1)  # (B, L, H, T, T)
    if fnorm is None:
        return raw, None
    return raw, raw * fnorm.unsqueeze(-2)  # (B, L, H, T, T): alpha_ij * ||f_h(x_j)||


def cut_maps(maps: Tensor, attention_mask: Tensor) -> list[np.ndarray]:
    """Cut (B, L, H, T, T) maps to each example's real tokens: a list of (L, H, n, n) float32 arrays.

    Real tokens are those with attention_mask 1; with right padding they are the first n.
    """
    out = []
    for b in range(maps.shape[0]):
        idx = attention_mask[b].nonzero().flatten()
        m = maps[b][:, :, idx][:, :, :, idx]  # (L, H, n, n)
        out.append(m.detach().float().cpu().numpy())
    return out


def extract_maps(
    model,
    tokenizer,
    texts: Sequence[str],
    text_pairs: Sequence[str | None] | None = None,
    *,
    ids: Sequence[str] | None = None,
    normed: bool = True,
    batch_size: int = 32,
    max_length: int = 128,
    show_progress: bool = False,
) -> list[ExampleMaps]:
    """Maps for every text (or text pair), one :class:`ExampleMaps` each, in input order."""
    from attnpatterns.progress import progress_iter

    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError("texts and text_pairs differ in length")
    device = next(model.parameters()).device
    results: list[ExampleMaps] = []
    starts = range(0, len(texts), batch_size)
    for s in progress_iter(starts, total=len(starts), description="maps", show=show_progress):
        a = list(texts[s : s + batch_size])
        b = list(text_pairs[s : s + batch_size]) if text_pairs is not None else None
        if b is not None and all(x is None for x in b):
            b = None
        enc = tokenizer(a, b, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        batch = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        raw, nm = attention_maps(model, batch, normed=normed)
        raws = cut_maps(raw, batch["attention_mask"])
        nms = cut_maps(nm, batch["attention_mask"]) if nm is not None else [None] * len(raws)
        for j in range(len(a)):
            n = int(enc["attention_mask"][j].sum())
            real = enc["input_ids"][j][enc["attention_mask"][j].bool()].tolist()
            toks = tokenizer.convert_ids_to_tokens(real)
            eid = ids[s + j] if ids is not None else str(s + j)
            results.append(ExampleMaps(raw=raws[j], normed=nms[j], tokens=toks, example_id=str(eid)))
            assert raws[j].shape[-1] == n
    return results


def extract_example_maps(model, tokenizer, examples: Sequence, pair: bool, **kwargs):
    """:func:`extract_maps` of task examples (``text_a``, ``text_b`` when ``pair``, ``id``), the same keywords."""
    return extract_maps(
        model,
        tokenizer,
        [e.text_a for e in examples],
        [e.text_b for e in examples] if pair else None,
        ids=[e.id for e in examples],
        **kwargs,
    )


def check_text(tokenizer, text: str, pair: str | None, max_length: int) -> int:
    """Number of tokens of one input; a UserError when it is empty or past ``max_length``."""
    from attnpatterns.errors import UserError

    if not text or not text.strip():
        raise UserError("the text is empty; pass a non-empty --text.")
    if pair is not None and not pair.strip():
        raise UserError("--text-pair is empty; pass a non-empty pair or leave it out.")
    n = len(tokenizer(text, pair, truncation=False)["input_ids"])
    if n > max_length:
        raise UserError(
            f"the input is {n} tokens, past the limit of {max_length}; shorten it or raise --max-length "
            f"(at most the model's {getattr(tokenizer, 'model_max_length', max_length)})."
        )
    return n
