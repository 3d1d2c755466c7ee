"""Gate importance: equals the gradient computed by hand (central finite differences in float64),
the normalisation of REFERENCE, the per-batch vs running-total summation, and the free predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def model64():
    from attnpatterns.models import TinySpec, tiny_bert

    m = tiny_bert(TinySpec(layers=2, heads=4, hidden=32, intermediate=64), num_labels=2, seed=3).double()
    m.eval()
    return m


@pytest.fixture(scope="module")
def batches(tokenizer):
    from attnpatterns.data.loaders import Example
    from attnpatterns.finetune import collate, encode

    texts = [
        ("the cat sat on the mat", "a cat sat"),
        ("dogs bark loudly at night", "cats sleep"),
        ("a quick brown fox", "the fox is quick"),
        ("rain falls", "the sun shines brightly today"),
    ]
    ex = [Example(str(i), a, b, i % 2) for i, (a, b) in enumerate(texts)]
    enc = encode(tokenizer, ex)
    return [collate(enc, [0, 1]), collate(enc, [2, 3])]


def _loss(model, batch, hg, mg):
    from attnpatterns.gates import gated

    with torch.no_grad(), gated(model, hg, mg):
        return float(model(**batch).loss)


def _fd_grad(model, batch, hm, mm, eps=1e-6):
    """Signed dL/dgate of every head and MLP by central differences."""
    L, H = hm.shape
    gh = np.zeros((L, H))
    gm = np.zeros(L)
    for l in range(L):
        for h in range(H):
            up, dn = hm.clone(), hm.clone()
            up[l, h] += eps
            dn[l, h] -= eps
            gh[l, h] = (_loss(model, batch, up, mm) - _loss(model, batch, dn, mm)) / (2 * eps)
        up, dn = mm.clone(), mm.clone()
        up[l] += eps
        dn[l] -= eps
        gm[l] = (_loss(model, batch, hm, up) - _loss(model, batch, hm, dn)) / (2 * eps)
    return gh, gm


def test_importance_is_the_summed_absolute_gradient(model64, batches):
    from attnpatterns.prune.importance import compute_importance

    hm = torch.ones(2, 4, dtype=torch.float64)
    hm[1, 2] = 0.0  # a masked head still gets its gradient
    mm = torch.ones(2, dtype=torch.float64)
    g = [_fd_grad(model64, b, hm, mm) for b in batches]
    per_batch = compute_importance(model64, batches, hm, mm)
    np.testing.assert_allclose(per_batch.head_raw.numpy(), np.abs(g[0][0]) + np.abs(g[1][0]), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(per_batch.mlp_raw.numpy(), np.abs(g[0][1]) + np.abs(g[1][1]), rtol=1e-5, atol=1e-9)
    assert per_batch.summation == "per_batch"
    running = compute_importance(model64, batches, hm, mm, running_total=True)
    np.testing.assert_allclose(
        running.head_raw.numpy(), np.abs(g[0][0]) + np.abs(g[0][0] + g[1][0]), rtol=1e-5, atol=1e-9
    )
    np.testing.assert_allclose(
        running.mlp_raw.numpy(), np.abs(g[0][1]) + np.abs(g[0][1] + g[1][1]), rtol=1e-5, atol=1e-9
    )
    assert running.summation == "running_total"
    # the two orders really differ on this model (otherwise the test above would not tell them apart)
    assert not np.allclose(per_batch.head_raw.numpy(), running.head_raw.numpy())
    # real tokens counted over both batches
    assert per_batch.n_tokens == sum(int(b["attention_mask"].sum()) for b in batches)


def test_normalisation_as_in_reference():
    from attnpatterns.prune.importance import normalize_head_importance, normalize_mlp_importance

    raw = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=torch.float64)
    # per-layer L2: [[0.6, 0.8], [1, 0]]; min-max over all: same (min 0, max 1)
    np.testing.assert_allclose(normalize_head_importance(raw).numpy(), [[0.6, 0.8], [1.0, 0.0]], atol=1e-12)
    raw = torch.tensor([[2.0, 2.0], [6.0, 8.0]], dtype=torch.float64)
    # L2 rows: [0.7071, 0.7071], [0.6, 0.8]; min-max: (x - 0.6) / 0.2
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(
        normalize_head_importance(raw).numpy(), [[(s - 0.6) / 0.2, (s - 0.6) / 0.2], [0, 1]], atol=1e-9
    )
    mlp = normalize_mlp_importance(torch.tensor([10.0, 30.0, 20.0], dtype=torch.float64), n_tokens=10)
    np.testing.assert_allclose(mlp.numpy(), [0.0, 1.0, 0.5], atol=1e-12)
    assert torch.all(normalize_head_importance(torch.zeros(2, 3)) == 0)


def test_predictions_of_the_pass_equal_evaluation(model64, batches):
    from attnpatterns.gates import gated
    from attnpatterns.prune.importance import compute_importance

    hm = torch.ones(2, 4, dtype=torch.float64)
    hm[0, :3] = 0
    mm = torch.tensor([1.0, 0.0], dtype=torch.float64)
    imp = compute_importance(model64, batches, hm, mm)
    with torch.no_grad(), gated(model64, hm, mm):
        want = torch.cat([model64(**{k: v for k, v in b.items() if k != "labels"}).logits.argmax(-1) for b in batches])
    assert torch.equal(imp.preds, want)
    assert torch.equal(imp.labels, torch.cat([b["labels"] for b in batches]))
    assert imp.head.shape == (2, 4) and float(imp.head.min()) == 0.0 and float(imp.head.max()) == 1.0
    assert not any(p.grad is not None for p in model64.parameters())  # weights' gradients never computed
