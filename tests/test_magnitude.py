"""m-pruning: the prunable set, 0.9^k survival, global smallest-magnitude choice, and the run-folder outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attnpatterns.prune.magnitude import (
    count_kept,
    full_masks,
    global_magnitude_masks,
    kept_target,
    magnitude_step,
    prunable_parameters,
)


def test_prunable_set_is_the_reference_one(tiny_classifier):
    names = set(prunable_parameters(tiny_classifier))
    want = set()
    for l in range(2):
        p = f"bert.encoder.layer.{l}."
        for lin in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "intermediate.dense",
            "output.dense",
        ):
            want.add(p + lin + ".weight")
            if lin != "output.dense":
                want.add(p + lin + ".bias")
    assert names == want  # no embeddings, LayerNorm, pooler, classifier, nor the output dense bias


def test_k_steps_leave_0_9_to_the_k_and_remove_the_smallest(tiny_classifier):
    params = prunable_parameters(tiny_classifier)
    weights = {n: p.detach().clone() for n, p in params.items()}
    others = {n: p.detach().clone() for n, p in tiny_classifier.named_parameters() if n not in params}
    masks = full_masks(weights)
    total = count_kept(masks)[1]
    for k in range(1, 11):
        new = magnitude_step(weights, masks, k)
        kept = count_kept(new)[0]
        assert kept == kept_target(total, k) and abs(kept / total - 0.9**k) < 1 / total
        assert all(torch.all(new[n] <= masks[n]) for n in masks)  # nothing comes back
        masks = new
    flat_w = torch.cat([weights[n].abs().reshape(-1) for n in weights])
    flat_m = torch.cat([masks[n].reshape(-1) for n in weights])
    assert flat_w[~flat_m].max() <= flat_w[flat_m].min()  # one global threshold over every prunable weight
    assert set(masks) == set(params)
    # the step computes masks only: the model's parameters are untouched, prunable or not
    for n, p in tiny_classifier.named_parameters():
        assert torch.equal(p.detach(), weights[n] if n in weights else others[n])


def test_kth_smallest_is_exact_on_large_inputs():
    from attnpatterns.prune.magnitude import kth_smallest

    g = torch.Generator().manual_seed(0)
    v = torch.randn(600_000, generator=g).abs()
    v[::7] = float("inf")  # already pruned entries
    v[1:60_000:3] = 0.25  # many ties
    for k in (1, 1000, 60_000, 300_000, 500_000):
        assert kth_smallest(v, k, sample=50_000) == torch.kthvalue(v, k).values


def test_exact_count_with_ties_and_largest():
    w = {"a": torch.ones(10), "b": torch.tensor([0.5, 2.0, 3.0, 1.0])}
    m = global_magnitude_masks(w, full_masks(w), 3)
    assert count_kept(m)[0] == 11 and not m["b"][0] and int(m["a"].sum()) == 8
    big = global_magnitude_masks(w, full_masks(w), 2, largest=True)
    assert big["b"].tolist() == [True, False, False, True] and bool(big["a"].all())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer):
    from pruning_helpers import make_glue, make_model_dir

    from attnpatterns.finetune import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp("mp")
    model_dir, glue = make_model_dir(root / "tiny", tokenizer), make_glue(root / "glue")
    seed_dir = root / "run" / "RTE" / "seed_9"
    finetune(
        FinetuneConfig(task="RTE", seed=9, model=str(model_dir), epochs=2, batch_size=8, lr=1e-3, data_dir=str(glue)),
        seed_dir / "finetuned",
        show_progress=False,
    )
    return seed_dir, glue


def test_m_prune_writes_the_run_folder(tiny_run):
    from attnpatterns.finetune import load_finetuned
    from attnpatterns.prune.magnitude import MPruneConfig, m_prune, read_weight_masks

    seed_dir, glue = tiny_run
    s = m_prune(
        seed_dir, MPruneConfig(max_dev_examples=16, max_steps=3, ratio=0.5), data_dir=str(glue), show_progress=False
    )
    out = seed_dir / "magnitude"
    iters = [json.loads(p.read_text()) for p in sorted(out.glob("iter_*.json"))]
    assert iters[0]["iteration"] == 0 and iters[0]["kept_fraction"] == 1.0
    assert all(abs(it["kept_fraction"] - 0.9 ** it["iteration"]) < 1e-4 for it in iters)
    assert s["final_step"] == max(it["iteration"] for it in iters if it["passed"])
    model, _, _ = load_finetuned(seed_dir / "finetuned")
    masks = read_weight_masks(out / "mask.safetensors", model)
    assert set(masks) == set(prunable_parameters(model))
    assert count_kept(masks) == (s["kept"], s["total"]) and s["kept"] == kept_target(s["total"], s["final_step"])
    # the stage records each head's kept share of its weights (the report reads it); the same as from the mask
    from attnpatterns.prune.head_weights import head_weight_survival, magnitude_head_survival

    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    rec = np.asarray(s["head_weight_kept"])
    assert rec.shape == (L, H) and 0 < rec.mean() < 1
    assert np.allclose(rec, head_weight_survival({n: m.numpy() for n, m in masks.items()}, L, H), atol=1e-6)
    assert np.array_equal(magnitude_head_survival(seed_dir, L, H), rec)
    assert m_prune(seed_dir, MPruneConfig(max_dev_examples=16, max_steps=3, ratio=0.5), data_dir=str(glue))["skipped"]

    from attnpatterns.errors import UserError
    from attnpatterns.models import TinySpec, tiny_bert

    other = tiny_bert(TinySpec(layers=1), num_labels=2)
    with pytest.raises(UserError, match="mask.safetensors.*not a parameter of this model|mask.safetensors.*has shape"):
        read_weight_masks(out / "mask.safetensors", other)
