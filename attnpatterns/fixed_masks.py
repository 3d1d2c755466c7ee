"""Masks held fixed while fine-tuning and evaluating: the shapes of head and MLP masks against the model, the gates
(:func:`attnpatterns.gates.gated`) made of them, weight masks (m-pruning) checked and multiplied into the weights,
and the short digests of masks that a run record keeps."""

from __future__ import annotations

import hashlib

from attnpatterns.errors import UserError


def check_gate_shapes(model, head_mask=None, mlp_mask=None, where: str = "mask") -> None:
    """UserError unless the head mask is (L, H) and the MLP mask (L,) of ``model``."""
    from attnpatterns.families import shape_of

    L, H, _ = shape_of(model)
    if head_mask is not None and tuple(head_mask.shape) != (L, H):
        raise UserError(
            f"{where}: head mask has shape {tuple(head_mask.shape)} but the model has {L} layers x {H} heads; "
            "use masks made for this model."
        )
    if mlp_mask is not None and tuple(mlp_mask.shape) != (L,):
        raise UserError(
            f"{where}: MLP mask has shape {tuple(mlp_mask.shape)} but the model has {L} layers; "
            "use masks made for this model."
        )


def as_gate(x, device):
    """A head or MLP mask as a float32 gate tensor on ``device`` (None stays None)."""
    import torch

    if x is None:
        return None
    return torch.as_tensor(x, dtype=torch.float32, device=device).detach().clone()


def check_weight_masks(model, weight_masks: dict, where: str = "weight masks") -> dict:
    """Validate ``name -> mask`` against the model's parameters; return bool masks on the model's device."""
    import torch

    params = dict(model.named_parameters())
    out = {}
    for name, m in weight_masks.items():
        if name not in params:
            raise UserError(f"{where}: '{name}' is not a parameter of this model; use masks made for this model.")
        p = params[name]
        if tuple(m.shape) != tuple(p.shape):
            raise UserError(
                f"{where}: '{name}' has shape {tuple(m.shape)} but the model's is {tuple(p.shape)}; "
                "use masks made for this model."
            )
        out[name] = torch.as_tensor(m).to(device=p.device).bool()
    return out


def apply_weight_masks(model, weight_masks: dict) -> None:
    """Multiply each masked parameter by its mask, in place (masked weights become exactly 0)."""
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in weight_masks.items():
            params[name].mul_(m.to(params[name].dtype))


def mask_digest(obj) -> str | None:
    """A short digest of a mask (array, tensor, or name -> tensor), for the run record (None stays None)."""
    import numpy as np

    if obj is None:
        return None
    h = hashlib.sha256()
    if isinstance(obj, dict):
        for k in sorted(obj):
            h.update(k.encode())
            h.update(np.ascontiguousarray(obj[k].detach().cpu().numpy().astype(np.uint8)).tobytes())
    else:
        h.update(
            np.ascontiguousarray(
                np.asarray(obj.detach().cpu() if hasattr(obj, "detach") else obj, dtype=np.float32)
            ).tobytes()
        )
    return h.hexdigest()[:16]
