"""Raw and weight-normed maps: rows sum to 1, normed equals the materialised formula, batching changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnpatterns.families import get_layers, shape_of
from attnpatterns.maps import attention_maps, attention_parts, cut_maps, extract_maps

TEXTS = [
    "The cat sat on the mat.",
    "A much longer sentence, with commas, that needs more tokens than the others do.",
    "Hi",
]
PAIRS = ["It was tired.", "Short.", "Hello there, friend."]


def _materialised_normed(model, batch):
    """||alpha_ij f_h(x_j)|| built the slow way, as the original code did: a (B, H, T, T, D) tensor, then a norm."""
    L, H, d = shape_of(model)
    store = []
    hooks = [
        layer.attention.self.value.register_forward_hook(lambda m, a, o: store.append(o)) for layer in get_layers(model)
    ]
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    for h in hooks:
        h.remove()
    res = []
    for li, layer in enumerate(get_layers(model)):
        v = store[li]  # (B, T, H*d) = x W_V + b_V
        B, T, _ = v.shape
        vh = v.view(B, T, H, d)  # (B, T, H, d)
        W = layer.attention.output.dense.weight  # (D, H*d)
        Wh = W.view(W.shape[0], H, d)  # (D, H, d)
        f = torch.einsum("bthd,Dhd->bhtD", vh, Wh)  # (B, H, T, D): f_h(x_t), no b_O
        alpha = out.attentions[li]  # (B, H, T, T)
        weighted = alpha.unsqueeze(-1) * f.unsqueeze(2)  # (B, H, T, T, D)
        res.append(weighted.norm(dim=-1))
    return torch.stack(res, dim=1)  # (B, L, H, T, T)


def _batch(tokenizer, texts, pairs=None):
    enc = tokenizer(texts, pairs, padding=True, return_tensors="pt")
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def test_raw_rows_sum_to_one(tiny_model, tokenizer):
    maps = extract_maps(tiny_model, tokenizer, TEXTS, PAIRS)
    for ex in maps:
        np.testing.assert_allclose(ex.raw.sum(-1), 1.0, atol=1e-5)
        assert ex.raw.shape == (2, 4, len(ex.tokens), len(ex.tokens))
        assert ex.tokens[0] == "[CLS]" and ex.tokens[-1] == "[SEP]"


def test_normed_equals_materialised_formula(tiny_model, tokenizer):
    batch = _batch(tokenizer, TEXTS, PAIRS)
    _, normed = attention_maps(tiny_model, batch, normed=True)
    expected = _materialised_normed(tiny_model, batch)
    mask = batch["attention_mask"]
    for got, exp in zip(cut_maps(normed, mask), cut_maps(expected, mask)):
        np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-6)


def test_normed_uses_the_head_block_of_w_o_not_the_other_axis(tiny_model, tokenizer):
    """The authors' code split W_O along the output axis; the right block reads head h's input slice."""
    batch = _batch(tokenizer, TEXTS[:1])
    _, normed = attention_maps(tiny_model, batch)
    L, H, d = shape_of(tiny_model)
    layer = get_layers(tiny_model)[0]
    W = layer.attention.output.dense.weight
    with torch.no_grad():
        v = layer.attention.self.value
        store = []
        h = v.register_forward_hook(lambda m, a, o: store.append(o))
        out = tiny_model(**batch, output_attentions=True)
        h.remove()
        vh = store[0].view(1, -1, H, d)
        wrong = W.view(H, d, W.shape[1])  # splitting the output axis: (H, d, H*d)
        # only meaningful when the wrong split gives another answer
        f_wrong = torch.einsum("bthd,hde->bhte", vh, wrong[:, :, :d]).norm(dim=-1)
        wrong_map = out.attentions[0] * f_wrong.unsqueeze(-2)
    assert not torch.allclose(normed[:, 0], wrong_map, atol=1e-5)


def test_batched_equals_one_by_one(tiny_model, tokenizer):
    batched = extract_maps(tiny_model, tokenizer, TEXTS, PAIRS, batch_size=3)
    single = [extract_maps(tiny_model, tokenizer, [t], [p], batch_size=1)[0] for t, p in zip(TEXTS, PAIRS)]
    for b, s in zip(batched, single):
        assert b.tokens == s.tokens
        np.testing.assert_allclose(b.raw, s.raw, atol=1e-5)
        np.testing.assert_allclose(b.normed, s.normed, rtol=1e-4, atol=1e-5)


def test_roberta_layout_maps(tokenizer):
    from attnpatterns.models import tiny_bert

    model = tiny_bert(model_type="roberta", seed=1)
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    batch = {"input_ids": enc["input_ids"] + 2, "attention_mask": enc["attention_mask"]}  # avoid RoBERTa's pad id 1
    raw, normed = attention_maps(model, batch)
    got = cut_maps(raw, batch["attention_mask"])
    for g in got:
        np.testing.assert_allclose(g.sum(-1), 1.0, atol=1e-5)
    assert normed.shape == raw.shape


@pytest.mark.minilm
def test_minilm_maps_real_pretrained(minilm):
    model, tok = minilm
    [ex] = extract_maps(model, tok, ["The cat sat on the mat."], ["It was tired."])
    assert ex.raw.shape[:2] == (6, 12)
    np.testing.assert_allclose(ex.raw.sum(-1), 1.0, atol=1e-5)
    assert np.all(ex.normed >= 0)
    # pretrained BERTs send much raw attention to [SEP]/[CLS]/punctuation: the column mass there is large
    special = [i for i, t in enumerate(ex.tokens) if t in ("[CLS]", "[SEP]", ".")]
    assert ex.raw[:, :, :, special].sum(-1).mean() > 0.3


def test_attention_parts_upto_stops_after_the_last_needed_attention(tiny_model, tokenizer):
    """upto=k returns the first k layers' maps and norms, equal to the whole forward pass's, and runs nothing after
    layer k-1's attention weights (no later layer, no MLP of layer k-1); its hooks are removed afterwards."""
    batch = _batch(tokenizer, TEXTS, PAIRS)
    full_raw, full_norms = attention_parts(tiny_model, batch, normed=True)
    layers = get_layers(tiny_model)
    hooks_before = sum(len(m._forward_hooks) for m in tiny_model.modules())
    for upto in range(1, len(layers) + 1):
        calls: list[str] = []
        spies = [layers[upto - 1].output.register_forward_hook(lambda m, a, o: calls.append("mlp"))]
        spies += [layer.register_forward_hook(lambda m, a, o: calls.append("layer")) for layer in layers[upto:]]
        raw, norms = attention_parts(tiny_model, batch, normed=True, upto=upto)
        for s in spies:
            s.remove()
        assert calls == []
        assert len(raw) == upto and norms is not None and norms.shape[1] == upto
        for a, b in zip(raw, full_raw):
            assert torch.equal(a, b)
        assert full_norms is not None and torch.equal(norms, full_norms[:, :upto])
        raw_only, none = attention_parts(tiny_model, batch, normed=False, upto=upto)
        assert none is None and all(torch.equal(a, b) for a, b in zip(raw_only, full_raw))
    assert sum(len(m._forward_hooks) for m in tiny_model.modules()) == hooks_before
    with pytest.raises(ValueError, match="upto"):
        attention_parts(tiny_model, batch, upto=len(layers) + 1)
