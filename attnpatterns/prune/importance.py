"""Head and MLP importance from gate gradients (Michel et al. 2019; Prasanna et al. 2020).

With a gate of ones (L x H for heads, L for MLPs) multiplied into the model, the importance of a
component is the sum over dev batches of ``|dL/d gate|`` (model in eval mode). Normalisation, as in
The method (docs/method.md, s-pruning): heads are L2-normalised per layer (+1e-20) and then min-max scaled over all
heads; MLPs are divided by the number of real tokens and then min-max scaled over all MLPs.

Two orders of summation exist:

- ``running_total=False`` (default, the formula as published): ``sum_b |g_b|``;
- ``running_total=True`` (the authors' code and HF ``run_bertology.py``, which never zero the gate's
  gradient between batches): ``sum_b |g_1 + ... + g_b|``.

Every result records which one was used. One pass also yields the predictions, so the dev score
of the same mask comes at no extra cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # torch loads on first use, so importing the package stays light
    from torch import Tensor


def normalize_head_importance(raw: Tensor) -> Tensor:
    """(L, H) raw importance -> per-layer L2 normalisation (+1e-20), then min-max over all heads."""
    x = raw.double()
    x = x / (x.pow(2).sum(-1, keepdim=True).sqrt() + 1e-20)  # (L, H)
    return _minmax(x).to(raw.dtype)


def normalize_mlp_importance(raw: Tensor, n_tokens: float) -> Tensor:
    """(L,) raw importance -> divided by the number of real tokens, then min-max over all MLPs."""
    x = raw.double() / float(n_tokens)
    return _minmax(x).to(raw.dtype)


def _minmax(x: Tensor) -> Tensor:
    import torch

    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)


@dataclass
class Importance:
    """Result of one importance pass. ``head``/``mlp`` are normalised, ``*_raw`` are the sums."""

    head: Tensor  # (L, H)
    mlp: Tensor  # (L,)
    head_raw: Tensor  # (L, H)
    mlp_raw: Tensor  # (L,)
    n_tokens: int
    loss: float  # mean loss over batches
    preds: Tensor  # (N,) class ids or regression scores, in batch order
    labels: Tensor  # (N,)
    running_total: bool

    @property
    def summation(self) -> str:
        return "running_total" if self.running_total else "per_batch"


def compute_importance(
    model,
    batches: Iterable[dict],
    head_mask: Tensor | None = None,
    mlp_mask: Tensor | None = None,
    running_total: bool = False,
    regression: bool = False,
) -> Importance:
    """Importance of every head and MLP of ``model`` over ``batches`` (dicts of input_ids,
    token_type_ids, attention_mask, labels on the model's device), under the given masks.

    Gates take the mask's values (1 = kept, 0 = masked); masked components still get a gradient.
    Only the gate gradients are computed (``torch.autograd.grad``), never the weights'.
    """
    import torch

    from attnpatterns.families import shape_of
    from attnpatterns.gates import gated

    L, H, _ = shape_of(model)
    device = next(model.parameters()).device
    hg = (torch.ones(L, H) if head_mask is None else torch.as_tensor(head_mask, dtype=torch.float32)).to(device)
    mg = (torch.ones(L) if mlp_mask is None else torch.as_tensor(mlp_mask, dtype=torch.float32)).to(device)
    hg = hg.detach().clone().requires_grad_(True)
    mg = mg.detach().clone().requires_grad_(True)
    was_training = model.training
    model.eval()
    head_imp = torch.zeros(L, H, dtype=torch.float64, device=device)
    mlp_imp = torch.zeros(L, dtype=torch.float64, device=device)
    head_run = torch.zeros_like(head_imp)
    mlp_run = torch.zeros_like(mlp_imp)
    n_tokens = 0
    losses, preds, labels = [], [], []
    try:
        with gated(model, hg, mg):
            for b in batches:
                out = model(
                    input_ids=b["input_ids"],
                    token_type_ids=b.get("token_type_ids"),
                    attention_mask=b["attention_mask"],
                    labels=b["labels"],
                )
                gh, gm = torch.autograd.grad(out.loss, [hg, mg], allow_unused=True)
                gh = torch.zeros_like(hg) if gh is None else gh
                gm = torch.zeros_like(mg) if gm is None else gm
                if running_total:
                    head_run += gh.double()
                    mlp_run += gm.double()
                    head_imp += head_run.abs()
                    mlp_imp += mlp_run.abs()
                else:
                    head_imp += gh.double().abs()
                    mlp_imp += gm.double().abs()
                n_tokens += int(b["attention_mask"].sum().item())
                losses.append(float(out.loss.detach()))
                logits = out.logits.detach()
                preds.append(logits.squeeze(-1) if regression else logits.argmax(-1))
                labels.append(b["labels"].detach())
    finally:
        model.train(was_training)
    if not losses:
        raise ValueError("compute_importance got no batches")
    return Importance(
        head=normalize_head_importance(head_imp).float().cpu(),
        mlp=normalize_mlp_importance(mlp_imp, max(n_tokens, 1)).float().cpu(),
        head_raw=head_imp.cpu(),
        mlp_raw=mlp_imp.cpu(),
        n_tokens=n_tokens,
        loss=float(sum(losses) / len(losses)),
        preds=torch.cat(preds).cpu(),
        labels=torch.cat(labels).cpu(),
        running_total=running_total,
    )
