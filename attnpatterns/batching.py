"""Tokenised examples and their batches: encoding without padding, padding a batch to its longest example, and
batches ordered by length (for evaluation: less padding). Shared by fine-tuning, evaluation and pruning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class Encoded:
    """Tokenised examples, unpadded."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: list[Any]
    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(tok, examples: Sequence, max_length: int = 128) -> Encoded:
    """Tokenise (text_a[, text_b]) with truncation to ``max_length``; no padding."""
    a = [e.text_a for e in examples]
    b = [e.text_b for e in examples]
    if any(x is None for x in b):
        enc = tok(a, truncation=True, max_length=max_length)
    else:
        enc = tok(a, b, truncation=True, max_length=max_length)
    tt = enc.get("token_type_ids") or [[0] * len(ids) for ids in enc["input_ids"]]
    return Encoded(list(enc["input_ids"]), list(tt), [e.label for e in examples], tok.pad_token_id or 0)


def collate(enc: Encoded, idx: Sequence[int], device=None, regression: bool = False) -> dict:
    """Pad the examples ``idx`` to the longest of them: input_ids, token_type_ids, attention_mask, labels."""
    import torch

    T = max(len(enc.input_ids[i]) for i in idx)
    B = len(idx)
    ids = torch.full((B, T), enc.pad_id, dtype=torch.long)  # (B, T)
    tt = torch.zeros((B, T), dtype=torch.long)
    am = torch.zeros((B, T), dtype=torch.long)
    for r, i in enumerate(idx):
        n = len(enc.input_ids[i])
        ids[r, :n] = torch.tensor(enc.input_ids[i])
        tt[r, :n] = torch.tensor(enc.token_type_ids[i])
        am[r, :n] = 1
    labels = torch.tensor([enc.labels[i] for i in idx], dtype=torch.float if regression else torch.long)
    out = {"input_ids": ids, "token_type_ids": tt, "attention_mask": am, "labels": labels}
    if device is not None:
        # to a GPU from pinned memory without blocking: a pageable copy would wait for the work queued before it
        pin = torch.device(device).type == "cuda"
        out = {k: (v.pin_memory() if pin else v).to(device, non_blocking=pin) for k, v in out.items()}
    return out


def length_batches(enc: Encoded, batch_size: int) -> list[list[int]]:
    """Batches of example indices ordered by length (for evaluation: less padding)."""
    order = sorted(range(len(enc)), key=lambda i: (len(enc.input_ids[i]), i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
