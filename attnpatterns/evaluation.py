"""A model's predictions and dev metrics on encoded examples, with optional fixed head and MLP masks."""

from __future__ import annotations

from attnpatterns.batching import Encoded, collate, encode, length_batches
from attnpatterns.fixed_masks import as_gate, check_gate_shapes


def predict(
    model,
    enc: Encoded,
    regression: bool,
    head_mask=None,
    mlp_mask=None,
    batch_size: int = 64,
    show_progress: bool = False,
    description: str = "evaluate",
):
    """Predictions (class ids or scores) and labels, in the order of ``enc``."""
    import numpy as np
    import torch

    from attnpatterns.gates import gated
    from attnpatterns.progress import progress_iter

    device = next(model.parameters()).device
    hg, mg = as_gate(head_mask, device), as_gate(mlp_mask, device)
    was_training = model.training
    model.eval()
    preds = np.zeros(len(enc), dtype=np.float64 if regression else np.int64)
    batches = length_batches(enc, batch_size)
    try:
        with torch.no_grad(), gated(model, hg, mg):
            for idx in progress_iter(batches, len(batches), description, show_progress):
                b = collate(enc, idx, device, regression)
                logits = model(
                    input_ids=b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"]
                ).logits
                p = logits.squeeze(-1) if regression else logits.argmax(-1)
                preds[idx] = p.cpu().numpy()
    finally:
        model.train(was_training)
    return preds, np.asarray(enc.labels)


def evaluate(
    model,
    tok,
    task,
    examples,
    head_mask=None,
    mlp_mask=None,
    batch_size: int = 64,
    max_length: int = 128,
    show_progress: bool = False,
) -> dict[str, float]:
    """Dev metrics of ``model`` on ``examples`` (``data.compute_metrics``), with optional head/MLP masks."""
    from attnpatterns.data import compute_metrics, get_task

    spec = get_task(task) if isinstance(task, str) else task
    check_gate_shapes(model, head_mask, mlp_mask)
    enc = encode(tok, examples, max_length)
    preds, labels = predict(model, enc, spec.is_regression, head_mask, mlp_mask, batch_size, show_progress)
    return compute_metrics(spec, preds, labels)
