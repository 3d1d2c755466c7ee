"""The GPU paths (``--device cuda``), run where a CUDA GPU is present and skipped elsewhere (CI is CPU-only).

Maps on the GPU equal the CPU's; every subnetwork method x setting runs on the GPU with masked weights held at zero
through re-fine-tuning (bf16 autocast); classify_heads on the GPU gives the CPU's counts.
"""

from __future__ import annotations

import copy

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TEXTS = ["the cat sat on the mat because it was warm", "a dog ran"]


def _batch(tokenizer, device):
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def test_maps_on_cuda_equal_cpu(tiny_model, tokenizer):
    from attnpatterns.maps import attention_maps

    cpu = copy.deepcopy(tiny_model).eval()
    gpu = copy.deepcopy(tiny_model).eval().to("cuda")
    raw_c, normed_c = attention_maps(cpu, _batch(tokenizer, "cpu"))
    raw_g, normed_g = attention_maps(gpu, _batch(tokenizer, "cuda"))
    assert raw_g.device.type == "cuda" and normed_g.device.type == "cuda"
    torch.testing.assert_close(raw_g.cpu(), raw_c, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(normed_g.cpu(), normed_c, atol=1e-4, rtol=1e-3)


def test_subnetworks_every_setting_on_cuda(tmp_path, tokenizer):
    from safetensors.torch import load_file
    from test_subnetworks import SEEDS, TASK, _make_run

    from attnpatterns.io import read_json
    from attnpatterns.prune import subnetworks as sn
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, _, glue = _make_run(tmp_path, tokenizer)
    for method in ("structured", "magnitude", "super"):
        cfg = SubnetworkConfig(
            run=run, task=TASK, seeds=SEEDS, method=method, data_dir=str(glue), keep_checkpoints=True, device="cuda"
        )
        res = run_subnetworks(cfg, show_progress=False)
        assert len(res) == len(SEEDS) * 3 * 2 and all(0.0 <= r.score <= 1.0 for r in res)
    for s in SEEDS:
        for subnet in sn.SUBNETS:
            d = run / TASK / f"seed_{s}" / "subnetworks" / "magnitude" / subnet
            mask = load_file(str(d / "mask.safetensors"))
            w = load_file(str(d / "retrained" / "model.safetensors"))
            for name, m in mask.items():
                assert torch.all(w[name][m == 0] == 0), name
            assert read_json(d / "retrained" / "run.json")["config"]["bf16"] is True


def test_classify_heads_on_cuda_equals_cpu(tmp_path, tokenizer):
    from test_subnetworks import TASK, _write_task

    from attnpatterns.classifier.heads import classify_heads
    from attnpatterns.models import TinySpec, tiny_bert

    glue = _write_task(tmp_path)
    m = tiny_bert(TinySpec(layers=2, heads=4, hidden=32, intermediate=64), seed=0)
    out = {}
    for dev in ("cpu", "cuda"):
        mt = (copy.deepcopy(m).to(dev), tokenizer)
        r = classify_heads(TASK, [[0, 1], [1, 2]], n=8, data_dir=glue, device=dev, model_and_tokenizer=mt)
        out[dev] = r.per_head.sort_values(list(r.per_head.columns[:3])).reset_index(drop=True)
    assert out["cuda"].equals(out["cpu"])
