"""Head and MLP gates applied through hooks (transformers 5 has no ``head_mask``).

A head gate scales each head's slice of the context vector before the attention
output projection; an MLP gate scales the output of the MLP's second dense layer
before the residual and LayerNorm. Gates are ordinary tensors: give them
``requires_grad=True`` and ``dL/dgate`` is the importance of the component.

An MLP whose gate is a fixed 0 (no ``requires_grad``) is not computed at all: its two dense
layers return zeros of the right shape, so the residual, dropout (the same random draws) and
LayerNorm run as before and the outputs are bitwise those of the scaled-by-0 MLP. The zeros
are tied to the MLP's parameters (times 0) when gradients are on, so those get the exact zero
gradients the scaled MLP gave them and any training loop (clipping, the optimiser) sees what it
saw before: training stays bitwise the same, only faster.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor

from attnpatterns.families import family_of, get_layers, get_submodule, shape_of

SKIP_MASKED_MLPS = True  # False: compute masked MLPs and scale them by 0 (the reference the skip is tested against)


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
    skipped = set(skipped_mlps(mlp_gate))
    handles: list = []
    try:
        for li, layer in enumerate(get_layers(model)):
            if head_gate is not None:
                block = get_submodule(layer, fam.attn_out_block)
                handles.append(block.register_forward_pre_hook(_head_hook(head_gate, li, n_heads, d), with_kwargs=True))
            if li in skipped:
                handles.extend(_skip_mlp(get_submodule(layer, fam.mlp_in), get_submodule(layer, fam.mlp_out)))
            elif mlp_gate is not None:
                dense = get_submodule(layer, fam.mlp_out)
                handles.append(dense.register_forward_hook(_mlp_hook(mlp_gate, li)))
        yield
    finally:
        for h in handles:
            h.remove()


def skipped_mlps(mlp_gate: Tensor | None) -> list[int]:
    """The layers whose MLP ``gated`` does not compute: gate a fixed 0 (not a gate being differentiated)."""
    if mlp_gate is None or mlp_gate.requires_grad or not SKIP_MASKED_MLPS:
        return []
    return [i for i, g in enumerate(mlp_gate.detach().cpu().tolist()) if g == 0.0]


class _Override:
    """An instance-level replacement of a module's ``forward``, undone by ``remove()``."""

    def __init__(self, module, forward) -> None:
        self.module = module
        self.before = module.__dict__.get("forward")  # an instance-level forward set by someone else, kept
        module.forward = forward

    def remove(self) -> None:
        if self.before is None:
            self.module.__dict__.pop("forward", None)
        else:
            self.module.forward = self.before


def _skip_mlp(mlp_in, mlp_out) -> list[_Override]:
    """The first dense layer returns an empty (B, T, 0) activation, the second zeros (B, T, hidden); with gradients
    on, the zeros carry ``0 * sum`` of both layers' parameters, which gives each of them an exact zero gradient."""
    params = [*mlp_in.parameters(), *mlp_out.parameters()]

    def first(x: Tensor) -> Tensor:
        return x.new_zeros(*x.shape[:-1], 0)

    def second(h: Tensor) -> Tensor:
        dtype = mlp_out.weight.dtype
        if torch.is_autocast_enabled(h.device.type):  # the dtype the dense layer's output would have had
            dtype = torch.get_autocast_dtype(h.device.type)
        zeros = h.new_zeros(*h.shape[:-1], mlp_out.out_features, dtype=dtype)
        if not torch.is_grad_enabled():
            return zeros
        return zeros + 0 * sum(p.sum() for p in params)  # a 0-dim float: the dtype stays the zeros'

    return [_Override(mlp_in, first), _Override(mlp_out, second)]


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
