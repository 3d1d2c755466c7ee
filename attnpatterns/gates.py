"""Head and MLP gates applied through hooks (transformers 5 has no ``head_mask``).

A head gate scales each head's slice of the context vector before the attention
output projection; an MLP gate scales the output of the MLP's second dense layer
before the residual and LayerNorm. Gates are ordinary tensors: give them
``requires_grad=True`` and ``dL/dgate`` is the importance of the component.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor

from attnpatterns.families import family_of, get_layers, get_submodule, shape_of


@contextlib.contextmanager
def gated(model, head_gate: Tensor | None = None, mlp_gate: Tensor | None = None) -> Iterator[None]:
    """Within the block, head ``(l, h)`` is scaled by ``head_gate[l, h]`` and MLP ``l`` by ``mlp_gate[l]``.

    ``head_gate``: (layers, heads); ``mlp_gate``: (layers,). ``None`` leaves that kind untouched.
    Hooks are removed on exit, even on error.
    """
    fam = family_of(model)
    n_layers, n_heads, d = shape_of(model)
    if head_gate is not None and tuple(head_gate.shape) != (n_layers, n_heads):
        raise ValueError(f"head gate has shape {tuple(head_gate.shape)}, the model needs ({n_layers}, {n_heads})")
    if mlp_gate is not None and tuple(mlp_gate.shape) != (n_layers,):
        raise ValueError(f"MLP gate has shape {tuple(mlp_gate.shape)}, the model needs ({n_layers},)")
    handles = []
    try:
        for li, layer in enumerate(get_layers(model)):
            if head_gate is not None:
                block = get_submodule(layer, fam.attn_out_block)
                handles.append(block.register_forward_pre_hook(_head_hook(head_gate, li, n_heads, d), with_kwargs=True))
            if mlp_gate is not None:
                dense = get_submodule(layer, fam.mlp_out)
                handles.append(dense.register_forward_hook(_mlp_hook(mlp_gate, li)))
        yield
    finally:
        for h in handles:
            h.remove()


def _head_hook(gate: Tensor, layer: int, n_heads: int, d: int):
    def hook(module, args, kwargs):
        if args:
            ctx, rest = args[0], args[1:]
        else:
            ctx, rest = kwargs.pop("hidden_states"), ()
        B, T, _ = ctx.shape
        g = gate[layer].to(dtype=ctx.dtype, device=ctx.device)
        ctx = (ctx.view(B, T, n_heads, d) * g.view(1, 1, n_heads, 1)).view(B, T, n_heads * d)  # (B, T, H*d)
        if args:
            return (ctx, *rest), kwargs
        kwargs["hidden_states"] = ctx
        return args, kwargs

    return hook


def _mlp_hook(gate: Tensor, layer: int):
    def hook(module, args, output):
        return output * gate[layer].to(dtype=output.dtype, device=output.device)

    return hook


def ones_gates(model, requires_grad: bool = False, device=None) -> tuple[Tensor, Tensor]:
    """(head_gate, mlp_gate) of ones for ``model``."""
    n_layers, n_heads, _ = shape_of(model)
    device = device or next(model.parameters()).device
    hg = torch.ones(n_layers, n_heads, device=device, requires_grad=requires_grad)
    mg = torch.ones(n_layers, device=device, requires_grad=requires_grad)
    return hg, mg
