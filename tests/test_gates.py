"""Head and MLP gates: all ones change nothing, a gated-off head equals a removed head, gradients flow."""

from __future__ import annotations

import copy

import torch

from attnpatterns.families import get_layers, shape_of
from attnpatterns.gates import gated, ones_gates


def _inputs(tokenizer):
    enc = tokenizer(
        ["The cat sat.", "A longer sentence with more words in it."],
        ["It was tired.", "Yes."],
        padding=True,
        return_tensors="pt",
    )
    return dict(enc)


def test_all_gates_at_one_change_nothing(tiny_classifier, tokenizer):
    x = _inputs(tokenizer)
    with torch.no_grad():
        ref = tiny_classifier(**x).logits
        hg, mg = ones_gates(tiny_classifier)
        with gated(tiny_classifier, hg, mg):
            got = tiny_classifier(**x).logits
    torch.testing.assert_close(got, ref, rtol=0, atol=0)


def _remove_head(model, layer: int, head: int):
    """Physically remove a head: its value rows and its W_O input columns are cut out of the weights."""
    L, H, d = shape_of(model)
    m = copy.deepcopy(model)
    att = get_layers(m)[layer].attention
    keep = [i for i in range(H * d) if not (head * d <= i < (head + 1) * d)]
    v, o = att.self.value, att.output.dense
    new_v = torch.nn.Linear(v.in_features, len(keep))
    new_o = torch.nn.Linear(len(keep), o.out_features)
    with torch.no_grad():
        new_v.weight.copy_(v.weight[keep])
        new_v.bias.copy_(v.bias[keep])
        new_o.weight.copy_(o.weight[:, keep])
        new_o.bias.copy_(o.bias)
    # the context of the removed head never reaches W_O: run the value projection at full width,
    # then drop the head's slice before W_O with a pre-hook (queries/keys of the other heads untouched)
    orig_o = o

    def drop(module, args):
        return (args[0][..., keep],) + tuple(args[1:])

    att.output.dense = new_o
    att.output.dense.register_forward_pre_hook(drop)
    del orig_o
    return m


def test_head_gated_to_zero_equals_head_removed(tiny_classifier, tokenizer):
    x = _inputs(tokenizer)
    L, H, _ = shape_of(tiny_classifier)
    hg = torch.ones(L, H)
    hg[1, 2] = 0.0
    with torch.no_grad():
        with gated(tiny_classifier, head_gate=hg):
            gated_out = tiny_classifier(**x).logits
        removed_out = _remove_head(tiny_classifier, 1, 2)(**x).logits
        full = tiny_classifier(**x).logits
    torch.testing.assert_close(gated_out, removed_out, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(gated_out, full)


def test_mlp_gated_to_zero_skips_the_mlp(tiny_model, tokenizer):
    x = _inputs(tokenizer)
    L, _, _ = shape_of(tiny_model)
    mg = torch.ones(L)
    mg[0] = 0.0
    layer = get_layers(tiny_model)[0]
    with torch.no_grad():
        with gated(tiny_model, mlp_gate=mg):
            got = tiny_model(**x).last_hidden_state
        # removing the MLP: LayerNorm(0 + attention output)
        m = copy.deepcopy(tiny_model)
        lay = get_layers(m)[0]
        lay.output.dense.register_forward_hook(lambda mod, a, out: torch.zeros_like(out))
        ref = m(**x).last_hidden_state
    torch.testing.assert_close(got, ref)
    assert layer.output.dense._forward_hooks == {}  # hooks removed on exit


def test_gates_are_differentiable(tiny_classifier, tokenizer):
    x = _inputs(tokenizer)
    hg, mg = ones_gates(tiny_classifier, requires_grad=True)
    with gated(tiny_classifier, hg, mg):
        loss = tiny_classifier(**x, labels=torch.tensor([0, 1])).loss
    loss.backward()
    assert hg.grad is not None and hg.grad.abs().sum() > 0
    assert mg.grad is not None and mg.grad.abs().sum() > 0


def test_gate_shape_is_checked(tiny_model):
    import pytest

    with pytest.raises(ValueError, match="head gate"):
        with gated(tiny_model, head_gate=torch.ones(3, 3)):
            pass


def test_a_masked_mlp_is_skipped_with_the_same_outputs_and_gradients(tiny_classifier, tokenizer, monkeypatch):
    """Training mode (dropout on): skipping an MLP gated to a fixed 0 gives bitwise the outputs and gradients of
    computing it and scaling it by 0, and the skipped MLP's parameters get exact zeros back."""
    import attnpatterns.gates as gates

    x = _inputs(tokenizer)
    labels = torch.tensor([0, 1])
    L, H, _ = shape_of(tiny_classifier)
    mg = torch.ones(L)
    mg[0] = 0.0
    hg = torch.ones(L, H)
    hg[1, 0] = 0.0
    lay0 = get_layers(tiny_classifier)[0]
    skipped = [*lay0.intermediate.dense.parameters(), *lay0.output.dense.parameters()]  # weight and bias of each

    def step(skip: bool):
        monkeypatch.setattr(gates, "SKIP_MASKED_MLPS", skip)
        m = copy.deepcopy(tiny_classifier).train()
        widths = []
        dense_in = get_layers(m)[0].intermediate.dense
        h = dense_in.register_forward_hook(lambda mod, a, out: widths.append(out.shape[-1]))
        torch.manual_seed(3)  # the dropout draws
        with gated(m, hg, mg):
            out = m(**x, labels=labels)
        out.loss.backward()
        h.remove()
        assert "forward" not in vars(dense_in)  # the override is undone on exit
        return out.logits.detach(), {n: p.grad for n, p in m.named_parameters()}, widths

    ref_logits, ref_grads, ref_widths = step(False)
    logits, grads, widths = step(True)
    assert ref_widths == [64] and widths == [0]  # the skipped MLP computed nothing
    assert torch.equal(logits, ref_logits)
    assert ref_grads.keys() == grads.keys()
    for n in grads:
        assert ref_grads[n] is not None and grads[n] is not None, n
        assert torch.equal(grads[n], ref_grads[n]), n
    names = {n for n, p in tiny_classifier.named_parameters() if any(p is q for q in skipped)}
    assert len(names) == 4 and all(torch.count_nonzero(grads[n]) == 0 for n in names)


def test_a_gate_being_differentiated_is_never_skipped(tiny_classifier):
    import attnpatterns.gates as gates

    L, _, _ = shape_of(tiny_classifier)
    mg = torch.zeros(L, requires_grad=True)
    assert gates.skipped_mlps(mg) == [] and gates.skipped_mlps(mg.detach()) == list(range(L))


def test_skipping_restores_a_forward_set_on_the_module_before(tiny_model):
    L, _, _ = shape_of(tiny_model)
    dense = get_layers(tiny_model)[0].intermediate.dense
    own = dense.forward
    dense.forward = own  # someone else's instance-level forward (as accelerate's hooks set)
    try:
        with gated(tiny_model, mlp_gate=torch.zeros(L)):
            assert dense.forward is not own
        assert vars(dense)["forward"] is own
    finally:
        del dense.forward
