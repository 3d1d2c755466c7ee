"""Super-survivors (AND over seeds), the in-between and never-kept sets, and `attn survivors`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from attnpatterns.errors import UserError
from attnpatterns.prune.masks import HeadSet, discover_masks, read_head_set, stack_seeds, write_head_set
from attnpatterns.prune.survivors import in_between, never_kept, split_survivors, super_survivors, survivors_from_dir
from cli.main import app

runner = CliRunner()

# (S=3, L=2, H=3): head (0, 0) kept everywhere, (1, 2) nowhere, the rest in some seeds.
STACK = np.array(
    [
        [[1, 1, 0], [1, 0, 0]],
        [[1, 0, 1], [1, 0, 0]],
        [[1, 1, 0], [0, 1, 0]],
    ]
)
MLPS = np.array([[1, 1], [1, 0], [1, 0]])


def test_split_by_hand():
    np.testing.assert_array_equal(super_survivors(STACK), [[1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(never_kept(STACK), [[0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(in_between(STACK), [[0, 1, 1], [1, 1, 0]])
    sp = split_survivors(STACK)
    assert sp.counts == {"super": 1, "in_between": 4, "never": 1}
    # the three sets are disjoint and cover every head
    total = sp.super.astype(int) + sp.in_between.astype(int) + sp.never.astype(int)
    assert (total == 1).all()
    assert split_survivors(MLPS).counts == {"super": 1, "in_between": 1, "never": 0}


def test_one_seed_and_identical_seeds():
    one = STACK[:1]
    assert split_survivors(one).counts["in_between"] == 0
    np.testing.assert_array_equal(super_survivors(np.stack([STACK[0]] * 4)), STACK[0].astype(bool))
    with pytest.raises(ValueError):
        split_survivors(np.zeros((0, 2, 3)))


def _tree(root, task="MRPC", seeds=(1, 2, 3)):
    for i, s in enumerate(seeds):
        d = root / task / f"seed_{s}"
        d.mkdir(parents=True)
        np.save(d / "head_mask.npy", STACK[i].astype(np.float32))
        np.save(d / "mlp_mask.npy", MLPS[i].astype(np.float32))


def test_survivors_from_dir_and_head_set(tmp_path):
    _tree(tmp_path)
    ts, model = survivors_from_dir(tmp_path, "mrpc")
    assert model is None and ts.task == "MRPC" and ts.seeds == [1, 2, 3]
    hs = ts.head_set("super", model="x")
    assert hs.heads == [(0, 0)] and hs.mlps == [0] and hs.seeds == [1, 2, 3] and hs.model == "x"
    assert ts.head_set("never").heads == [(1, 2)] and ts.head_set("never").mlps == []
    assert ts.head_set("in_between").heads == [(0, 1), (0, 2), (1, 0), (1, 1)]
    ts2, _ = survivors_from_dir(tmp_path, "MRPC", seeds=[1, 2])
    assert ts2.head_set().heads == [(0, 0), (1, 0)]
    with pytest.raises(UserError, match="super-survivors need at least 2 seeds"):
        survivors_from_dir(tmp_path, "MRPC", seeds=[3])


def test_survivors_of_run_folder_carry_the_model(tmp_path):
    for i, s in enumerate((5, 6)):
        d = tmp_path / "RTE" / f"seed_{s}" / "structured"
        d.mkdir(parents=True)
        write_head_set(d / "mask.json", HeadSet.from_arrays(STACK[i], MLPS[i], model="minilm", task="RTE", seed=s))
        (d / "summary.json").write_text("{}")
    ts, model = survivors_from_dir(tmp_path, "RTE")
    assert model == "minilm"
    assert ts.head_set(model=model).heads == [(0, 0), (1, 0)]


def test_cli_survivors(tmp_path):
    _tree(tmp_path / "m")
    out = tmp_path / "super" / "super-survivors.json"
    r = runner.invoke(app, ["survivors", "--masks", str(tmp_path / "m"), "--task", "MRPC", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "super/in-between/never = 1/4/1 of 6" in r.output
    data = json.loads(out.read_text())
    assert data == {
        "model": None,
        "task": "MRPC",
        "seeds": [1, 2, 3],
        "num_layers": 2,
        "num_heads": 3,
        "heads": [[0, 0]],
        "mlps": [0],
    }
    assert read_head_set(out, num_layers=2, num_heads=3).heads == [(0, 0)]


def test_cli_survivors_bad_input(tmp_path):
    _tree(tmp_path / "m")
    r = runner.invoke(
        app, ["survivors", "--masks", str(tmp_path / "m"), "--task", "CoLA", "--out", str(tmp_path / "o.json")]
    )
    assert r.exit_code == 2 and "no masks of task 'CoLA' (found: MRPC)" in r.output
    r = runner.invoke(
        app, ["survivors", "--masks", str(tmp_path / "m"), "--task", "MRPC", "--out", str(tmp_path / "o.txt")]
    )
    assert r.exit_code == 2 and "must end in .json" in r.output
    r = runner.invoke(
        app,
        [
            "survivors",
            "--masks",
            str(tmp_path / "m"),
            "--task",
            "MRPC",
            "--seeds",
            "1,9",
            "--out",
            str(tmp_path / "o.json"),
        ],
    )
    assert r.exit_code == 2 and "no seed_9 folder" in r.output
    assert not (tmp_path / "o.json").exists()


def test_authors_super_survivors_match_their_super_masks(authors_dir):
    """Our AND over the 5 seeds of heads_mlps equals the authors' own heads_mlps_super masks, task by task."""
    masks = authors_dir / "masks"
    good = discover_masks(masks / "heads_mlps")
    sup = discover_masks(masks / "heads_mlps_super")
    assert set(good) == set(sup)
    for task in good:
        _, hs, ms = stack_seeds(good[task])
        ours_h, ours_m = super_survivors(hs), super_survivors(ms)
        for hm, mm in sup[task].values():
            np.testing.assert_array_equal(hm.astype(bool), ours_h, err_msg=task)
            np.testing.assert_array_equal(mm.astype(bool), ours_m, err_msg=task)
    # Their "midling" counterparts lie in the in-between set, their "bizzaro" ones outside the super-survivors.
    for name, allowed in (("heads_mlps_super_midling", "in_between"), ("heads_mlps_super_bizzaro", "not_super")):
        other = discover_masks(masks / name, tasks=["MRPC"])
        sp = split_survivors(stack_seeds(good["MRPC"])[1])
        for hm, _ in other["MRPC"].values():
            kept = hm.astype(bool)
            assert kept.sum() == sp.super.sum()  # size-matched
            if allowed == "in_between":
                assert not (kept & ~sp.in_between).any()
            else:
                assert not (kept & sp.super).any()
