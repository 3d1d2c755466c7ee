"""Good, random and bad subnetworks: sizes, seeding, re-fine-tuning from pre-trained weights, resuming.

The end-to-end tests fine-tune a tiny random BERT ("pre-trained" = its saved initial weights) on a tiny
synthetic RTE-shaped task and write the pruning outputs by hand in the run-folder layout of
docs/CONTRACTS.md, then run every method x subnetwork x pruned/retrained.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from attnpatterns.errors import UserError
from attnpatterns.prune import subnetworks as sn

SEEDS = [1, 2]
TASK = "RTE"
WORDS = "alpha beta gamma delta river stone cloud light paper music window garden".split()


# ----------------------------------------------------------------------------- pure: sizes and draws


def test_m_random_and_bad_match_size_exactly():
    g = torch.Generator().manual_seed(0)
    weights = {
        "a": torch.randn(20, 30, generator=g),
        "b": torch.randn(30, generator=g),
        "c": torch.randn(7, 5, generator=g),
    }
    # a good mask that keeps the largest 37 % (as magnitude pruning would)
    flat = torch.cat([w.abs().reshape(-1) for w in weights.values()])
    thr = flat.sort().values[int(0.63 * flat.numel())]
    good = {k: w.abs() >= thr for k, w in weights.items()}
    kept, total = sn.count_kept(good)
    rnd = sn.random_unstructured(good, sn.torch_generator_for(3, "T", "magnitude", "random"))
    bad = sn.bad_unstructured(good, weights)
    assert sn.count_kept(rnd) == (kept, total)
    assert sn.count_kept(bad) == (kept, total)
    assert all(rnd[k].shape == good[k].shape and rnd[k].dtype == torch.bool for k in good)
    # bad keeps the smallest magnitudes: every kept |w| <= every removed |w|
    kept_mag = torch.cat([weights[k].abs()[bad[k]] for k in weights])
    removed_mag = torch.cat([weights[k].abs()[~bad[k]] for k in weights])
    assert kept_mag.max() <= removed_mag.min()
    # random is not the good mask and spreads over every tensor
    assert not all(torch.equal(rnd[k], good[k]) for k in good)
    assert all(rnd[k].any() for k in good)


def test_m_random_is_seeded():
    good = {"w": torch.rand(50, 50) > 0.5}
    a = sn.random_unstructured(good, sn.torch_generator_for(42, "MRPC", "magnitude", "random"))
    b = sn.random_unstructured(good, sn.torch_generator_for(42, "MRPC", "magnitude", "random"))
    c = sn.random_unstructured(good, sn.torch_generator_for(43, "MRPC", "magnitude", "random"))
    assert torch.equal(a["w"], b["w"]) and not torch.equal(a["w"], c["w"])


def test_s_random_matches_size_within_sampling():
    rng = np.random.default_rng(0)
    hm = (rng.random((12, 12)) < 0.6).astype(np.float32)  # 144 heads, p ~ 0.6
    mm = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1], dtype=np.float32)
    p, n = hm.mean(), hm.size
    sizes = []
    for s in range(300):
        rh, rm = sn.random_structured(hm, mm, sn.rng_for(s, "T", "structured", "random"))
        assert rh.shape == hm.shape and rm.shape == mm.shape and set(np.unique(rh)) <= {0, 1}
        sizes.append(rh.sum())
        sd = np.sqrt(n * p * (1 - p))
        assert abs(rh.sum() - n * p) <= 5 * sd  # one draw: within the binomial's spread
    # the mean over draws is the good mask's size (standard error sd / sqrt(300))
    assert abs(np.mean(sizes) - hm.sum()) <= 4 * np.sqrt(n * p * (1 - p)) / np.sqrt(300)
    a = sn.random_structured(hm, mm, sn.rng_for(7, "T", "structured", "random"))
    b = sn.random_structured(hm, mm, sn.rng_for(7, "T", "structured", "random"))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_s_bad_is_pruned_topped_up_with_good():
    rng = np.random.default_rng(1)
    hm = np.zeros((4, 6), dtype=np.float32)
    hm.ravel()[rng.choice(24, 16, replace=False)] = 1  # keeps 16, prunes 8
    bh = sn.topped_up_complement(hm, sn.rng_for(0, "x"))
    assert bh.sum() == 16
    assert np.all(bh[hm == 0] == 1)  # every pruned head is in the bad set
    assert (bh * hm).sum() == 8  # topped up with 8 good ones
    # fewer kept than pruned: a random choice of pruned ones, disjoint from good
    small = np.zeros((4, 6), dtype=np.float32)
    small[0, :5] = 1
    bs = sn.topped_up_complement(small, sn.rng_for(0, "x"))
    assert bs.sum() == 5 and (bs * small).sum() == 0


def test_super_counterparts_exact_size_and_pools():
    # 5 seeds over 4 x 5 heads: counts 5 = super, 0 = never, else in-between
    counts = np.array([[5, 5, 5, 0, 0], [0, 0, 1, 2, 3], [4, 5, 0, 2, 1], [0, 3, 3, 3, 3]])
    pools = sn.Pools(counts, 5)
    k = int(pools.super.sum())
    r = sn.super_random(pools, sn.rng_for(0, "T", "super", "random"))
    b = sn.super_bad(pools, sn.rng_for(0, "T", "super", "bad"))
    assert r.mask.sum() == k and b.mask.sum() == k
    assert np.all(pools.in_between[r.mask == 1]) and r.from_pools == {"in_between": k}
    assert np.all(pools.never[b.mask == 1]) and b.from_pools == {"never": k}
    # a pool too small (MLPs: nothing never kept): exact size, rarest in-between first, recorded
    mlp = sn.Pools(np.array([5, 5, 5, 1, 4, 2]), 5)
    bm = sn.super_bad(mlp, sn.rng_for(0, "T"))
    assert bm.mask.sum() == 3 and bm.from_pools == {"in_between": 3}
    assert set(np.flatnonzero(bm.mask)) == {3, 4, 5}
    rm = sn.super_random(sn.Pools(np.array([5, 5, 5, 5, 2, 0]), 5), sn.rng_for(0, "T"))
    assert rm.mask.sum() == 4 and rm.from_pools == {"in_between": 1, "never": 1, "super": 2}


def test_pools_from_masks_agree_with_survivors_module():
    from attnpatterns.prune.survivors import split_survivors

    rng = np.random.default_rng(3)
    stack = (rng.random((5, 6, 12)) < 0.6).astype(np.float32)
    pools = sn.pools_from_masks(stack)
    split = split_survivors(stack)
    assert np.array_equal(pools.super, split.super)
    assert np.array_equal(pools.never, split.never)
    assert np.array_equal(pools.in_between, split.in_between)


def test_structured_size_uses_m_pruning_denominator(tiny_classifier):
    from attnpatterns.families import family_of, get_layers, get_submodule, shape_of

    L, H, d = shape_of(tiny_classifier)
    cfg = tiny_classifier.config
    fam = family_of(tiny_classifier)
    total = 0
    for layer in get_layers(tiny_classifier):
        for path in fam.prunable_linears():
            lin = get_submodule(layer, path)
            total += lin.weight.numel() + (lin.bias.numel() if path != fam.mlp_out else 0)
    c = sn.prunable_counts(L, H, cfg.hidden_size, cfg.intermediate_size)
    assert c["total"] == total
    full = sn.structured_size(np.ones((L, H)), np.ones(L), cfg.hidden_size, cfg.intermediate_size)
    assert full["kept_fraction"] == pytest.approx(1.0)
    none = sn.structured_size(np.zeros((L, H)), np.zeros(L), cfg.hidden_size, cfg.intermediate_size)
    assert none["kept_fraction"] == pytest.approx(c["other"] / total)


# ----------------------------------------------------------------------------- a tiny run folder


def _write_task(root: Path) -> Path:
    """A tiny RTE-shaped task: the label says whether the two sentences share their first word."""
    rng = random.Random(0)
    d = root / "glue" / TASK
    d.mkdir(parents=True)
    for split, n in (("train", 48), ("dev", 24)):
        lines = ["index\tsentence1\tsentence2\tlabel"]
        for i in range(n):
            a = [rng.choice(WORDS) for _ in range(rng.randint(3, 7))]
            same = i % 2 == 0
            b = [a[0] if same else rng.choice([w for w in WORDS if w != a[0]])] + [rng.choice(WORDS) for _ in range(3)]
            lines.append(f"{i}\t{' '.join(a)}\t{' '.join(b)}\t{'entailment' if same else 'not_entailment'}")
        (d / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root / "glue"


def _prunable_names(model) -> list[str]:
    fam_parts = (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    )
    out = []
    for name, _ in model.named_parameters():
        if ".encoder.layer." not in name:
            continue
        rest = name.split(".encoder.layer.")[1].split(".", 1)[1]
        part, kind = rest.rsplit(".", 1)
        if part in fam_parts and not (part == "output.dense" and kind == "bias"):
            out.append(name)
    return out


def _make_run(root: Path, tokenizer) -> tuple[Path, Path, Path]:
    """(run folder, pre-trained folder, glue folder) with fine-tuning and both prunings done for SEEDS."""
    from safetensors.torch import load_file

    from attnpatterns.finetune import FinetuneConfig, finetune
    from attnpatterns.io import save_safetensors, write_json
    from attnpatterns.models import TinySpec, tiny_bert
    from attnpatterns.prune.masks import HeadSet

    glue = _write_task(root)
    pre = root / "pretrained"
    tiny_bert(TinySpec(layers=2, heads=4, hidden=32, intermediate=64), seed=0).save_pretrained(pre)
    tokenizer.save_pretrained(pre)
    run = root / "run"
    head_masks = {1: [[0, 0], [0, 1], [0, 3], [1, 1], [1, 2]], 2: [[0, 0], [0, 1], [1, 1], [1, 3]]}
    for s in SEEDS:
        sd = run / TASK / f"seed_{s}"
        cfg = FinetuneConfig(
            task=TASK, seed=s, model=str(pre), epochs=1, batch_size=16, max_length=32, data_dir=str(glue), lr=1e-3
        )
        finetune(cfg, sd / "finetuned", show_progress=False)
        hs = HeadSet(
            num_layers=2,
            num_heads=4,
            heads=head_masks[s],
            mlps=[0, 1] if s == 1 else [1],
            model=str(pre),
            task=TASK,
            seed=s,
        )
        write_json(sd / "structured" / "mask.json", hs.to_json())
        write_json(sd / "structured" / "summary.json", {"done": True})
        w = load_file(str(sd / "finetuned" / "model.safetensors"))
        names = [n for n in _prunable_names_from_keys(w)]
        flat = torch.cat([w[n].abs().reshape(-1) for n in names])
        thr = flat.sort().values[int(0.5 * flat.numel())]
        save_safetensors(
            sd / "magnitude" / "mask.safetensors",
            {n: (w[n].abs() >= thr).to(torch.uint8) for n in names},
            metadata={"model": str(pre)},
        )
        write_json(sd / "magnitude" / "summary.json", {"done": True})
    return run, pre, glue


def _prunable_names_from_keys(w: dict) -> list[str]:
    class _M:
        def named_parameters(self):
            return [(k, None) for k in w]

    return _prunable_names(_M())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("subnet")
    run, pre, glue = _make_run(root, tokenizer)
    return run, pre, glue


@pytest.fixture(scope="module")
def done_run(tiny_run):
    """Every method x subnetwork x setting evaluated on the tiny run (checkpoints kept for inspection)."""
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    results = {}
    for method in ("structured", "magnitude", "super"):
        cfg = SubnetworkConfig(
            run=run, task=TASK, seeds=SEEDS, method=method, data_dir=str(glue), keep_checkpoints=True
        )
        results[method] = run_subnetworks(cfg, show_progress=False)
    return run, pre, glue, results


def test_end_to_end_every_setting(done_run):
    from attnpatterns.io import read_json

    run, pre, glue, results = done_run
    for method, res in results.items():
        assert len(res) == len(SEEDS) * 3 * 2
        assert {(r.subnet, r.setting) for r in res} == {(s, st) for s in sn.SUBNETS for st in ("pruned", "retrained")}
        for r in res:
            assert not r.skipped and 0.0 <= r.score <= 1.0
        for s in SEEDS:
            for subnet in sn.SUBNETS:
                d = run / TASK / f"seed_{s}" / "subnetworks" / method / subnet
                assert (d / ("mask.safetensors" if method == "magnitude" else "mask.json")).is_file()
                for setting in ("pruned", "retrained"):
                    rec = read_json(d / f"{setting}.json")
                    assert rec["method"] == method and rec["subnet"] == subnet and rec["seed"] == s
    assert (run / TASK / "super" / "super-survivors.json").is_file()
    maj = read_json(run / TASK / "majority.json")
    assert maj["score"] == pytest.approx(0.5)  # the tiny dev set is balanced


def test_sizes_in_the_run(done_run):
    from attnpatterns.io import read_json

    run, _, _, _ = done_run
    for s in SEEDS:
        base = run / TASK / f"seed_{s}" / "subnetworks"
        m = {sub: read_json(base / "magnitude" / sub / "pruned.json")["size"] for sub in sn.SUBNETS}
        assert m["good"]["weights_kept"] == m["random"]["weights_kept"] == m["bad"]["weights_kept"]
        st = {sub: read_json(base / "structured" / sub / "pruned.json")["size"] for sub in sn.SUBNETS}
        assert st["bad"]["heads_kept"] == st["good"]["heads_kept"]
        sup = {sub: read_json(base / "super" / sub / "pruned.json")["size"] for sub in sn.SUBNETS}
        assert sup["good"]["heads_kept"] == sup["random"]["heads_kept"] == sup["bad"]["heads_kept"] == 3
        assert sup["good"]["mlps_kept"] == sup["random"]["mlps_kept"] == sup["bad"]["mlps_kept"] == 1
        assert 0 < m["good"]["kept_fraction"] < 1 and 0 < st["good"]["kept_fraction"] < 1


def test_super_set_is_the_and_of_seeds(done_run):
    from attnpatterns.io import read_json

    run, _, _, _ = done_run
    sset = read_json(run / TASK / "super" / "super-survivors.json")
    assert [tuple(h) for h in sset["heads"]] == [(0, 0), (0, 1), (1, 1)]
    assert sset["mlps"] == [1] and sset["seeds"] == SEEDS
    bad = read_json(run / TASK / "super" / "bad.json")
    never = {(0, 2), (1, 0)}
    assert {tuple(h) for h in bad["heads"]} >= never  # both never-kept heads, then the rarest in-between one
    assert len(bad["heads"]) == 3


def test_masked_weights_stay_zero_after_refinetuning(done_run):
    from safetensors.torch import load_file

    run, _, _, _ = done_run
    for s in SEEDS:
        for subnet in sn.SUBNETS:
            d = run / TASK / f"seed_{s}" / "subnetworks" / "magnitude" / subnet
            mask = load_file(str(d / "mask.safetensors"))
            w = load_file(str(d / "retrained" / "model.safetensors"))
            nonzero_kept = 0
            for name, m in mask.items():
                assert torch.all(w[name][m == 0] == 0), name
                nonzero_kept += int(torch.count_nonzero(w[name][m == 1]))
            assert nonzero_kept > 0.9 * sum(int(m.sum()) for m in mask.values())  # the kept ones were trained


def test_retrained_starts_from_pretrained_weights(tiny_run, monkeypatch, tmp_path):
    """The model handed to re-fine-tuning holds the pre-trained encoder, not the fine-tuned one."""
    from safetensors.torch import load_file

    import attnpatterns.models as models
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    run2 = tmp_path / "run"
    shutil.copytree(run / TASK / "seed_1" / "finetuned", run2 / TASK / "seed_1" / "finetuned")
    shutil.copytree(run / TASK / "seed_1" / "structured", run2 / TASK / "seed_1" / "structured")
    seen = []
    real = models.load_model

    def spy(name=None, *a, **kw):
        model, tok = real(name, *a, **kw)
        seen.append((name, {k: v.detach().clone() for k, v in model.state_dict().items()}))
        return model, tok

    monkeypatch.setattr(models, "load_model", spy)
    cfg = SubnetworkConfig(
        run=run2,
        task=TASK,
        seeds=[1],
        method="structured",
        subnets=("good",),
        settings=("retrained",),
        data_dir=str(glue),
    )
    run_subnetworks(cfg, show_progress=False)
    assert len(seen) == 1 and seen[0][0] == str(pre)
    start = seen[0][1]
    pre_w = load_file(str(pre / "model.safetensors"))
    ft_w = load_file(str(run / TASK / "seed_1" / "finetuned" / "model.safetensors"))
    key = "bert.encoder.layer.0.attention.self.query.weight"
    pre_key = key if key in pre_w else key.split("bert.", 1)[1]
    assert torch.equal(start[key], pre_w[pre_key])
    assert not torch.equal(start[key], ft_w[key])
    # the fresh classifier is drawn under the same seed as the fine-tuning run's
    torch.manual_seed(0)
    from attnpatterns.seed import set_seed

    set_seed(1)
    fresh, _ = real(str(pre), num_labels=2)
    assert torch.equal(start["classifier.weight"], fresh.state_dict()["classifier.weight"])


def test_rerun_skips_everything(done_run):
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, _, glue, _ = done_run
    cfg = SubnetworkConfig(run=run, task=TASK, seeds=SEEDS, method="magnitude", data_dir=str(glue))
    res = run_subnetworks(cfg, show_progress=False)
    assert len(res) == 12 and all(r.skipped for r in res)


def test_m_pruning_refinetuned_from_records_and_masks_alone(done_run, tmp_path):
    """A seed folder that holds the fine-tuning's records but not its weights (what a clone restores from committed
    results) re-fine-tunes m-pruning's subnetworks from the committed good and bad masks to the scores of the run
    that had the weights; the random mask is drawn again, the same. Without the bad mask: a clear error."""
    from safetensors.torch import load_file

    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue, _ = done_run
    sd, sd2 = run / TASK / "seed_1", tmp_path / "run" / TASK / "seed_1"
    (sd2 / "finetuned").mkdir(parents=True)
    for f in ("run.json", "metrics.json", "config.json"):
        shutil.copy(sd / "finetuned" / f, sd2 / "finetuned" / f)
    shutil.copytree(sd / "magnitude", sd2 / "magnitude")
    assert not (sd2 / "finetuned" / "model.safetensors").exists()
    cfg = SubnetworkConfig(
        run=tmp_path / "run", task=TASK, seeds=[1], method="magnitude", settings=("retrained",), data_dir=str(glue)
    )
    with pytest.raises(UserError, match=r"model.safetensors: not found.*bad subnetwork.*attn finetune --task RTE"):
        run_subnetworks(cfg, show_progress=False)
    (sd2 / "subnetworks" / "magnitude" / "bad").mkdir(parents=True, exist_ok=True)
    shutil.copy(
        sd / "subnetworks" / "magnitude" / "bad" / "mask.safetensors",
        sd2 / "subnetworks" / "magnitude" / "bad" / "mask.safetensors",
    )
    res = run_subnetworks(cfg, show_progress=False)
    assert sorted(r.subnet for r in res) == ["bad", "good", "random"] and not any(r.skipped for r in res)
    for r in res:
        before = json.loads((sd / "subnetworks" / "magnitude" / r.subnet / "retrained.json").read_text())
        assert r.score == before["score"] and r.metrics == before["metrics"]
    a = load_file(str(sd / "subnetworks" / "magnitude" / "random" / "mask.safetensors"))
    b = load_file(str(sd2 / "subnetworks" / "magnitude" / "random" / "mask.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- bad input


def _copy_seed(run: Path, dst: Path, seeds=SEEDS, parts=("finetuned", "structured", "magnitude")) -> Path:
    for s in seeds:
        for p in parts:
            shutil.copytree(run / TASK / f"seed_{s}" / p, dst / TASK / f"seed_{s}" / p)
    return dst


def test_retrained_without_pretrained_weights_is_a_clear_error(tiny_run, tmp_path):
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    cfg = SubnetworkConfig(
        run=run2, task=TASK, seeds=[1], method="structured", data_dir=str(glue), pretrained=str(tmp_path / "gone")
    )
    with pytest.raises(UserError, match="pre-trained weights.*cannot be found.*--pretrained"):
        run_subnetworks(cfg, show_progress=False)
    assert not (run2 / TASK / "seed_1" / "subnetworks").exists()  # failed before any work
    # pruned alone needs no pre-trained weights
    cfg = SubnetworkConfig(
        run=run2,
        task=TASK,
        seeds=[1],
        method="structured",
        data_dir=str(glue),
        settings=("pruned",),
        pretrained=str(tmp_path / "gone"),
    )
    assert len(run_subnetworks(cfg, show_progress=False)) == 3


def test_mask_from_another_model_is_a_clear_error(tiny_run, tmp_path):
    from attnpatterns.io import save_safetensors, write_json
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    sd = run2 / TASK / "seed_1"
    write_json(
        sd / "structured" / "mask.json",
        {
            "model": str(pre),
            "task": TASK,
            "seed": 1,
            "num_layers": 12,
            "num_heads": 12,
            "heads": [[0, 0], [11, 11]],
            "mlps": [0],
        },
    )
    cfg = SubnetworkConfig(
        run=run2, task=TASK, seeds=[1], method="structured", data_dir=str(glue), settings=("pruned",)
    )
    with pytest.raises(UserError, match="another model"):
        run_subnetworks(cfg, show_progress=False)
    write_json(
        sd / "structured" / "mask.json",
        {
            "model": "bert-base-uncased",
            "task": TASK,
            "seed": 1,
            "num_layers": 2,
            "num_heads": 4,
            "heads": [[0, 0]],
            "mlps": [0],
        },
    )
    with pytest.raises(UserError, match="bert-base-uncased.*another model"):
        run_subnetworks(cfg, show_progress=False)
    save_safetensors(
        sd / "magnitude" / "mask.safetensors",
        {"bert.encoder.layer.0.attention.self.query.weight": torch.ones(768, 768, dtype=torch.uint8)},
    )
    cfg = SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="magnitude", data_dir=str(glue), settings=("pruned",))
    with pytest.raises(UserError, match=r"mask.safetensors.*\(768, 768\).*another model"):
        run_subnetworks(cfg, show_progress=False)


def test_interrupted_run_continues(tiny_run, tmp_path, monkeypatch):
    import attnpatterns.finetune as ft
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    real = ft.finetune
    calls = []

    def dies_on_second(cfg, out_dir, **kw):
        calls.append(out_dir)
        out = real(cfg, out_dir, **kw)
        if len(calls) == 2:  # die at the end of the second re-fine-tuning, before its metrics.json
            (Path(out_dir) / "metrics.json").unlink()
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(ft, "finetune", dies_on_second)
    cfg = SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="structured", data_dir=str(glue))
    with pytest.raises(KeyboardInterrupt):
        run_subnetworks(cfg, show_progress=False)
    base = run2 / TASK / "seed_1" / "subnetworks" / "structured"
    assert (base / "good" / "retrained.json").is_file() and not (base / "random" / "retrained.json").exists()
    masks_before = {s: (base / s / "mask.json").read_text() for s in sn.SUBNETS}
    assert (base / "random" / "retrained" / "run.json").is_file()  # the unfinished run folder is there
    monkeypatch.setattr(ft, "finetune", real)
    res = run_subnetworks(cfg, show_progress=False)
    done = {(r.subnet, r.setting): r.skipped for r in res}
    assert done[("good", "retrained")] and done[("good", "pruned")]
    assert not done[("random", "retrained")] and not done[("bad", "retrained")]
    assert {s: (base / s / "mask.json").read_text() for s in sn.SUBNETS} == masks_before  # never redrawn


def test_unfinished_refinetuning_folder_restarts(tiny_run, tmp_path):
    """A re-fine-tuning killed midway leaves run.json without metrics.json: the rerun trains it again."""
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    cfg = SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="structured", subnets=("good",), data_dir=str(glue))
    run_subnetworks(cfg, show_progress=False)
    d = run2 / TASK / "seed_1" / "subnetworks" / "structured" / "good"
    first = (d / "retrained.json").read_text()
    (d / "retrained.json").unlink()
    (d / "retrained" / "metrics.json").unlink()
    res = run_subnetworks(cfg, show_progress=False)
    assert [r.skipped for r in res if r.setting == "retrained"] == [False]
    import json

    assert json.loads((d / "retrained.json").read_text())["score"] == json.loads(first)["score"]  # deterministic


def test_missing_pruning_and_seed_errors(tiny_run, tmp_path):
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1], parts=("finetuned",))
    with pytest.raises(UserError, match="s-pruning of RTE seed 1 has not finished"):
        run_subnetworks(
            SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="structured", data_dir=str(glue)),
            show_progress=False,
        )
    with pytest.raises(UserError, match="no fine-tuning run for RTE seed 9"):
        run_subnetworks(
            SubnetworkConfig(run=run2, task=TASK, seeds=[9], method="magnitude", data_dir=str(glue)),
            show_progress=False,
        )
    with pytest.raises(UserError, match="at least two seeds"):
        SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="super")
    with pytest.raises(UserError, match="unknown method"):
        SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="global")


def test_cli_subnetworks(tiny_run, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    r = CliRunner().invoke(
        app,
        [
            "subnetworks",
            "--task",
            TASK,
            "--seeds",
            "1",
            "--method",
            "structured",
            "--run",
            str(run2),
            "--settings",
            "pruned",
            "--data-dir",
            str(glue),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "3 evaluated" in r.output
    r = CliRunner().invoke(
        app,
        [
            "subnetworks",
            "--task",
            TASK,
            "--seeds",
            "1",
            "--method",
            "magnitude",
            "--run",
            str(run2),
            "--pretrained",
            str(tmp_path / "nope"),
            "--data-dir",
            str(glue),
        ],
    )
    assert r.exit_code == 2 and "error:" in r.output and "--pretrained" in r.output
    r = CliRunner().invoke(
        app,
        [
            "subnetworks",
            "--task",
            TASK,
            "--seeds",
            "1",
            "--method",
            "super",
            "--run",
            str(run2),
            "--super-from",
            "1,x",
            "--data-dir",
            str(glue),
        ],
    )
    assert r.exit_code == 2 and "--super-from '1,x' is not a comma-separated list" in r.output


def test_dev_subsample_for_every_row(tiny_run, tmp_path):
    """--max-dev-examples: pruned, retrained, full model and majority all on the same seeded dev subsample."""
    from attnpatterns.io import read_json
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    cfg = SubnetworkConfig(
        run=run2, task=TASK, seeds=[1], method="structured", subnets=("good",), data_dir=str(glue), max_dev_examples=10
    )
    run_subnetworks(cfg, show_progress=False)
    base = run2 / TASK / "seed_1" / "subnetworks"
    for f in ("full.json", "majority.json", "structured/good/pruned.json", "structured/good/retrained.json"):
        assert read_json(base / f)["dev_examples"] == 10, f
    assert read_json(base / "structured/good/retrained/metrics.json")["dev_examples"] == 10
    cfg = SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="structured", subnets=("good",), data_dir=str(glue))
    with pytest.raises(UserError, match="10 dev examples, but all were asked for"):
        run_subnetworks(cfg, show_progress=False)


def _good_with_16_examples(run, glue):
    """The structured good subnetwork of seed 1, re-fine-tuned on 16 training examples (fewer than its fine-tuning)."""
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig

    return SubnetworkConfig(
        run=run,
        task=TASK,
        seeds=[1],
        method="structured",
        subnets=("good",),
        data_dir=str(glue),
        max_train_examples=16,
    )


def test_smaller_training_budget_adds_the_full_model_control(tiny_run, tmp_path):
    """With fewer training examples than the fine-tuning run, the unmasked model is re-fine-tuned under that budget."""
    from attnpatterns.io import read_json
    from attnpatterns.prune.evaluate_subnetworks import run_subnetworks
    from attnpatterns.report.table_format import score_frame
    from attnpatterns.report.tables import run_table

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    run_subnetworks(_good_with_16_examples(run2, glue), show_progress=False)
    base = run2 / TASK / "seed_1" / "subnetworks"
    r = read_json(base / "full_retrained.json")
    assert r["max_train_examples"] == 16 and read_json(base / "full_retrained" / "metrics.json")["train_examples"] == 16
    assert read_json(base / "structured" / "good" / "retrained" / "metrics.json")["train_examples"] == 16
    assert not (base / ".full_retrained.lock").exists()
    frame = score_frame(run_table(run2))
    assert frame.loc["full model re-fine-tuned (subnetworks' budget)", TASK] == f"{r['score']:.3f}"


def test_lock_left_by_a_killed_run_does_not_skip_the_full_model_control(tiny_run, tmp_path, dead_pid):
    """A run killed while re-fine-tuning the full-model control leaves its lock with a live lease; the rerun takes it
    over (the holder's process is gone) and writes full_retrained.json instead of stamping the stage without it."""
    import json
    import socket
    import time

    from attnpatterns.io import read_json
    from attnpatterns.prune.evaluate_subnetworks import run_subnetworks

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    base = run2 / TASK / "seed_1" / "subnetworks"
    base.mkdir(parents=True, exist_ok=True)
    lock = {"host": socket.gethostname(), "pid": dead_pid, "token": "killed", "expires": time.time() + 600}
    (base / ".full_retrained.lock").write_text(json.dumps(lock))
    run_subnetworks(_good_with_16_examples(run2, glue), show_progress=False)
    assert read_json(base / "full_retrained.json")["max_train_examples"] == 16
    assert not (base / ".full_retrained.lock").exists()


def test_waiting_process_gets_the_holders_full_model_control(tiny_run, tmp_path, monkeypatch):
    """While another live process holds the lock, full_retrained waits and returns what that process wrote."""
    import json
    import threading
    import time

    from attnpatterns.io import write_json
    from attnpatterns.prune import evaluate_subnetworks as es
    from attnpatterns.sweep.lease import LeaseLock

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=[1])
    base = run2 / TASK / "seed_1" / "subnetworks"
    holder = LeaseLock(base / ".full_retrained.lock", lease=60)
    assert holder.acquire()
    made = {"task": TASK, "seed": 1, "score": 0.5, "max_train_examples": 16, "max_dev_examples": None}

    def other_process_finishes():
        time.sleep(0.3)
        write_json(base / "full_retrained.json", made)
        holder.release()

    monkeypatch.setattr(es, "WAIT_FOR_OTHER_S", 0.05)
    cfg = es.SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="structured", data_dir=str(glue))
    rec = es.finetuned_record(run2, TASK, 1)
    t = threading.Thread(target=other_process_finishes)
    t.start()
    got = es.full_retrained(cfg, 1, rec, "unused: the holder does the work", 16)
    t.join()
    assert got == json.loads((base / "full_retrained.json").read_text())
    assert not (base / "full_retrained").exists()  # nothing re-fine-tuned by the waiter


def test_super_from_more_seeds_than_evaluated(tiny_run, tmp_path):
    """--super-from: the super set comes from every listed seed's s-pruning masks; only --seeds are evaluated."""
    from attnpatterns.io import read_json
    from attnpatterns.prune.evaluate_subnetworks import SubnetworkConfig, run_subnetworks

    run, pre, glue = tiny_run
    run2 = _copy_seed(run, tmp_path / "run", seeds=SEEDS, parts=("finetuned", "structured"))
    cfg = SubnetworkConfig(
        run=run2, task=TASK, seeds=[1], method="super", settings=("pruned",), data_dir=str(glue), super_from=SEEDS
    )
    res = run_subnetworks(cfg, show_progress=False)
    assert {r.seed for r in res} == {1} and len(res) == 3
    sset = read_json(run2 / TASK / "super" / "super-survivors.json")
    assert [tuple(h) for h in sset["heads"]] == [(0, 0), (0, 1), (1, 1)]  # the AND over both seeds, as above
    assert sset["seeds"] == SEEDS
    assert not (run2 / TASK / f"seed_{SEEDS[1]}" / "subnetworks").exists()
    with pytest.raises(UserError, match="--super-from only applies"):
        SubnetworkConfig(run=run2, task=TASK, seeds=[1], method="structured", super_from=SEEDS)
