"""s-pruning: the three-phase schedule with a fake scorer (exact counts), and the run-folder outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attnpatterns.errors import UserError
from attnpatterns.prune.structured import Evaluation, mask_least_important, prune_schedule

L, H = 6, 5  # 30 heads: phase (a) masks int(0.1 * 30) = 3 heads + 1 MLP per step, phase (b) 1 head per step


def fake_scorer(head_cost=12, mlp_cost=3):
    """Score = (1000 - head_cost * masked heads - mlp_cost * masked MLPs) / 1000. Importance ignores the mask
    and is LOWEST for low indices, so a schedule that let masked components compete would re-pick them."""
    head_imp = np.arange(L * H, dtype=float).reshape(L, H)
    mlp_imp = np.arange(L, dtype=float)
    calls = []

    def evaluate(hm, mm):
        calls.append((hm.copy(), mm.copy()))
        masked_h, masked_m = int((hm == 0).sum()), int((mm == 0).sum())
        return Evaluation((1000 - head_cost * masked_h - mlp_cost * masked_m) / 1000, head_imp, mlp_imp)

    return evaluate, calls


def test_schedule_counts_per_phase_and_keeps_last_passing_mask():
    evaluate, calls = fake_scorer()
    seen = []
    res = prune_schedule(evaluate, L, H, on_iteration=seen.append)
    # full: 1000. (a) -39 per step: 961 pass, 922 pass, 883 fail -> 6 heads, 2 MLPs masked.
    # (b) -12 per step from 922: 910 pass, 898 fail -> 7 heads. (c) -3 per step from 910: 907, 904, 901 pass, 898 fail.
    phases = [(it.phase, it.passed, int((it.head_mask == 0).sum()), int((it.mlp_mask == 0).sum())) for it in seen]
    assert phases == [
        ("full", True, 0, 0),
        ("heads+mlps", True, 3, 1),
        ("heads+mlps", True, 6, 2),
        ("heads+mlps", False, 9, 3),
        ("heads", True, 7, 2),
        ("heads", False, 8, 2),
        ("mlps", True, 7, 3),
        ("mlps", True, 7, 4),
        ("mlps", True, 7, 5),
        ("mlps", False, 7, 6),
    ]
    assert res.heads_per_step == (3, 1)
    assert res.full_score == 1.0 and res.threshold == pytest.approx(0.9)
    assert res.final_iteration == 8 and res.score == pytest.approx(0.901)
    # the kept mask is the last passing one, not the failing one after it
    assert np.array_equal(res.head_mask, seen[8].head_mask) and np.array_equal(res.mlp_mask, seen[8].mlp_mask)
    # the least important (lowest index) components went first, each exactly once
    assert np.flatnonzero(res.head_mask.reshape(-1) == 0).tolist() == list(range(7))
    assert np.flatnonzero(res.mlp_mask == 0).tolist() == [0, 1, 2, 3, 4]
    assert len(calls) == len(seen) == 10


def test_schedule_stops_when_nothing_is_left():
    evaluate, _ = fake_scorer(head_cost=0, mlp_cost=0)  # never drops: everything can go
    res = prune_schedule(evaluate, L, H)
    assert res.head_mask.sum() == 0 and res.mlp_mask.sum() == 0
    counts = {p: sum(1 for it in res.iterations if it.phase == p) for p in ("heads+mlps", "heads", "mlps")}
    # (a) 6 steps take all 6 MLPs and 18 heads, then 4 more steps of 3 heads (no MLP left); (b), (c): nothing left
    assert counts == {"heads+mlps": 10, "heads": 0, "mlps": 0}
    assert all(it.passed for it in res.iterations)


def test_floor_stops_pruning_at_the_majority_score():
    """--floor majority: the same fake scores, but a mask must also beat 0.95 (say, the majority class's score)."""
    evaluate, _ = fake_scorer()
    res = prune_schedule(evaluate, L, H, floor=0.95)
    # (a) 961 > 950 passes, 922 fails; (b) from 961: 949 fails; (c) from 961: 958, 955, 952 pass, 949 fails
    assert res.threshold == pytest.approx(0.9)  # the study's threshold is still recorded as it is
    assert res.score == pytest.approx(0.952) and res.score > 0.95
    assert int((res.head_mask == 0).sum()) == 3 and int((res.mlp_mask == 0).sum()) == 4
    # a score equal to the floor does not pass: it is no better than the majority class
    evaluate0, _ = fake_scorer(head_cost=0, mlp_cost=0)
    res0 = prune_schedule(evaluate0, L, H, floor=1.0)
    assert res0.head_mask.sum() == L * H and res0.mlp_mask.sum() == L and res0.final_iteration == 0


def test_floor_option_is_checked():
    from attnpatterns.prune.magnitude import MPruneConfig
    from attnpatterns.prune.structured import SPruneConfig

    with pytest.raises(UserError, match="unknown --floor 'median'"):
        SPruneConfig(floor="median")
    with pytest.raises(UserError, match="unknown --floor"):
        MPruneConfig(floor="x")


def test_mask_least_important_ranks_masked_last():
    mask = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.float32)
    imp = np.array([[0.5, 0.0, 0.2], [0.9, 0.1, 0.0]])
    out = mask_least_important(mask, imp, 2)
    assert out.tolist() == [[1, 0, 0], [1, 0, 0]]
    assert mask_least_important(mask, imp, 10).sum() == 0  # at most the kept ones


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer):
    from pruning_helpers import make_glue, make_model_dir

    from attnpatterns.finetune import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp("sp")
    model_dir, glue = make_model_dir(root / "tiny", tokenizer, layers=2, heads=4), make_glue(root / "glue")
    seed_dir = root / "run" / "RTE" / "seed_5"
    finetune(
        FinetuneConfig(task="RTE", seed=5, model=str(model_dir), epochs=2, batch_size=8, lr=1e-3, data_dir=str(glue)),
        seed_dir / "finetuned",
        show_progress=False,
    )
    return seed_dir, glue


def test_s_prune_writes_the_run_folder(tiny_run):
    from attnpatterns.prune.masks import read_head_set
    from attnpatterns.prune.structured import SPruneConfig, s_prune

    seed_dir, glue = tiny_run
    cfg = SPruneConfig(max_dev_examples=16, batch_size=8)
    s = s_prune(seed_dir, cfg, data_dir=str(glue), show_progress=False)
    out = seed_dir / "structured"
    assert not s["skipped"] and s["importance_summation"] == "per_batch" and s["dev_examples"] == 16
    iters = sorted(out.glob("iter_*.json"))
    assert len(iters) == s["iterations"] >= 2
    first = json.loads(iters[0].read_text())
    assert first["phase"] == "full" and np.asarray(first["head_mask"]).shape == (2, 4)
    assert np.asarray(first["head_importance"]).shape == (2, 4) and len(first["mlp_importance"]) == 2
    kept = json.loads(iters[s["final_iteration"]].read_text())
    assert kept["passed"] and kept["score"] >= s["threshold"]
    hs = read_head_set(out / "mask.json")
    hm, mm = hs.to_arrays()
    assert np.array_equal(hm, np.asarray(kept["head_mask"])) and np.array_equal(mm, np.asarray(kept["mlp_mask"]))
    assert np.array_equal(np.load(out / "head_mask.npy"), hm) and hs.seed == 5 and hs.task == "RTE"
    assert s["heads_kept"] == len(hs.heads)
    # done: skipped; other settings: an error naming the summary
    assert s_prune(seed_dir, cfg, data_dir=str(glue), show_progress=False)["skipped"]
    with pytest.raises(UserError, match=r"summary\.json.*importance_summation"):
        s_prune(seed_dir, SPruneConfig(max_dev_examples=16, batch_size=8, running_total=True), data_dir=str(glue))
