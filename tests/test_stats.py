"""Stability statistics on hand-made mask sets with answers worked out by hand, and `attn stats` end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from attnpatterns.errors import UserError
from attnpatterns.stats import (
    cochrans_q_survival,
    compute_stats,
    fleiss_kappa_survival,
    kept_per_seed,
    shared_counts,
    shared_over_seeds,
    survival_std,
    to_markdown,
)
from cli.main import app

runner = CliRunner()

# Three seeds (raters) x four components (subjects), 1 = kept.
HAND = np.array(
    [
        [1, 1, 0, 0],
        [1, 0, 0, 1],
        [1, 1, 0, 0],
    ]
)


def fleiss_by_formula(stack):
    """Fleiss (1971) written out: P_i = (sum_j n_ij^2 - n) / (n (n - 1)), P_e = sum_j p_j^2."""
    stack = np.asarray(stack).reshape(len(stack), -1)
    n = stack.shape[0]  # raters
    kept = stack.sum(axis=0)  # n_i,kept per subject
    counts = np.stack([n - kept, kept], axis=1)  # (N, 2)
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_j = counts.sum(axis=0) / counts.sum()
    p_e = (p_j**2).sum()
    return (p_bar - p_e) / (1 - p_e)


def test_kappa_hand_example():
    # Kept counts per component 3, 2, 0, 1 of n = 3: P_i = 1, 1/3, 1, 1/3 -> P_bar = 2/3; p_kept = p_pruned = 1/2
    # -> P_e = 1/2; kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
    assert fleiss_by_formula(HAND) == pytest.approx(1 / 3)
    assert fleiss_kappa_survival(HAND) == pytest.approx(1 / 3)


def test_kappa_matches_formula_on_3d_stacks():
    rng = np.random.default_rng(1)
    for _ in range(5):
        stack = rng.integers(0, 2, (5, 3, 4))
        assert fleiss_kappa_survival(stack) == pytest.approx(fleiss_by_formula(stack))


def test_kappa_perfect_and_systematic_disagreement():
    same = np.array([[1, 0, 1, 0]] * 4)
    assert fleiss_kappa_survival(same) == pytest.approx(1.0)
    # Two raters who always disagree, balanced categories: P_bar = 0, P_e = 1/2 -> kappa = -1.
    assert fleiss_kappa_survival(np.array([[1, 0, 1, 0], [0, 1, 0, 1]])) == pytest.approx(-1.0)


def test_kappa_undefined_is_nan_with_a_note():
    all_kept = np.ones((5, 2, 3))
    assert math.isnan(fleiss_kappa_survival(all_kept))
    assert math.isnan(fleiss_kappa_survival(np.zeros((3, 4))))
    table = {"RTE": {s: (np.ones((2, 3), np.float32), np.ones(2, np.float32)) for s in (1, 2, 3)}}
    rep = compute_stats(table)
    assert math.isnan(rep.tasks["RTE"].heads.fleiss_kappa)
    assert any("kappa and Cochran's Q are undefined" in n for n in rep.tasks["RTE"].heads.notes)
    assert any("kept in every seed; pruning never removed one" in n for n in rep.tasks["RTE"].heads.notes)
    none_kept = compute_stats({"CoLA": {s: (np.zeros((2, 3), np.float32), None) for s in (1, 2)}})
    assert any("pruned in every seed; the masks carry no information" in n for n in none_kept.tasks["CoLA"].heads.notes)
    js = rep.to_json()
    assert js["tasks"]["RTE"]["fleiss_kappa_heads"] is None
    json.dumps(js, allow_nan=False)  # valid strict JSON: no NaN
    assert "n/a" in to_markdown(rep)


def test_fewer_than_two_seeds_names_the_task():
    with pytest.raises(UserError, match="CoLA heads: 1 seed"):
        fleiss_kappa_survival(np.ones((1, 2, 2)), label="CoLA heads")
    table = {"CoLA": {7: (np.ones((2, 2), np.float32), np.ones(2, np.float32))}}
    with pytest.raises(UserError, match=r"task CoLA: 1 seed\(s\) \(\[7\]\).*at least two seeds"):
        compute_stats(table)


def test_cochrans_q_by_hand():
    # Cases = components, treatments = seeds. With seed 2 keeping only component 0:
    # column (seed) successes C = 2, 1, 2 (T = 5), row successes R = 3, 2, 0, 0 (sum R^2 = 13), k = 3:
    # Q = (k - 1)(k sum C^2 - T^2) / (k T - sum R^2) = 2 (27 - 25) / (15 - 13) = 2; df = 2, p = exp(-Q/2).
    stack = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0]])
    q = cochrans_q_survival(stack, "seeds")
    assert (q.statistic, q.df) == (pytest.approx(2.0), 2)
    assert q.pvalue == pytest.approx(math.exp(-1.0))
    # HAND: every seed keeps two components -> no evidence that seeds differ.
    assert cochrans_q_survival(HAND, "seeds").statistic == pytest.approx(0.0)
    # Cases = seeds, treatments = components (k = 4): C = 3, 2, 0, 1 (T = 6), R = 2, 2, 2 (sum R^2 = 12):
    # Q = 3 (4 * 14 - 36) / (24 - 12) = 5; df = 3.
    qc = cochrans_q_survival(HAND, "components")
    assert (qc.statistic, qc.df) == (pytest.approx(5.0), 3)
    assert math.isnan(cochrans_q_survival(np.ones((3, 4)), "seeds").statistic)


def test_survival_std_and_counts():
    np.testing.assert_allclose(survival_std(HAND), [0, np.sqrt(2 / 9), 0, np.sqrt(2 / 9)])
    assert kept_per_seed(HAND).tolist() == [2, 2, 2]


def test_shared_heads_by_hand():
    a = np.zeros((2, 2, 2), int)  # seeds 1, 2 of task A
    a[0][0, 0] = a[0][0, 1] = 1
    a[1][0, 0] = a[1][1, 1] = 1
    b = np.zeros((2, 2, 2), int)  # seeds 1, 2 of task B
    b[0][0, 0] = 1
    b[1][0, 0] = b[1][1, 1] = b[1][1, 0] = 1
    assert shared_counts(a, b).tolist() == [1, 2]
    s = shared_over_seeds([1, 2], a, [1, 2], b)
    assert (s.mean, s.std, s.per_seed) == (1.5, 0.5, [1, 2])
    # Seeds are matched by value, not position: B listed as seeds 2, 1.
    s2 = shared_over_seeds([1, 2], a, [2, 1], b[::-1])
    assert s2.per_seed == [1, 2]
    # Only the common seeds count.
    s3 = shared_over_seeds([1, 2], a, [2, 3], b)
    assert s3.seeds == [2] and s3.per_seed == [int((a[1] & b[0]).sum())]
    assert math.isnan(shared_over_seeds([1], a[:1], [2], b[:1]).mean)


def test_compute_stats_hand_table():
    hand = HAND.reshape(3, 2, 2)
    mlps = np.array([[1, 0], [1, 1], [1, 0]])
    other = 1 - hand
    table = {
        "A": {s: (hand[i].astype(np.float32), mlps[i].astype(np.float32)) for i, s in enumerate((10, 20, 30))},
        "B": {s: (other[i].astype(np.float32), mlps[i].astype(np.float32)) for i, s in enumerate((10, 20, 30))},
    }
    rep = compute_stats(table)
    a = rep.tasks["A"]
    assert a.seeds == [10, 20, 30]
    assert a.heads.fleiss_kappa == pytest.approx(1 / 3)
    assert a.heads.mean_kept == 2.0 and a.heads.super_survivors == 1 and a.heads.never_kept == 1
    assert a.heads.in_between == 2 and a.mlps.super_survivors == 1
    assert rep.shared_heads["A/B"].mean == 0.0  # complementary masks share nothing
    assert rep.shared_heads["A/A"].mean == 2.0  # diagonal = surviving heads
    js = rep.to_json()
    t = js["tasks"]["A"]
    for key in (
        "fleiss_kappa_heads",
        "fleiss_kappa_mlps",
        "super_survivor_heads",
        "mean_surviving_heads",
        "mean_surviving_mlps",
        "super_survivor_mlps",
        "cochrans_q_heads",
    ):
        assert key in t
    assert js["shared_heads"]["A/B"] == {"mean": 0.0, "std": 0.0, "seeds": [10, 20, 30], "per_seed": [0, 0, 0]}
    md = to_markdown(rep)
    assert "| A | 3 | 2.0 ± 0.0 / 4 | 0.333 |" in md


def _tree(root, table):
    for task, per_seed in table.items():
        for s, (hm, mm) in per_seed.items():
            d = root / task / f"seed_{s}"
            d.mkdir(parents=True)
            np.save(d / "head_mask.npy", hm)
            np.save(d / "mlp_mask.npy", mm)


def test_cli_stats(tmp_path):
    hand = HAND.reshape(3, 2, 2).astype(np.float32)
    mlps = np.array([[1, 0], [1, 1], [1, 0]], np.float32)
    _tree(
        tmp_path / "m",
        {
            "MRPC": {s: (hand[i], mlps[i]) for i, s in enumerate((1, 2, 3))},
            "RTE": {s: (1 - hand[i], mlps[i]) for i, s in enumerate((1, 2, 3))},
        },
    )
    out = tmp_path / "stats.json"
    md = tmp_path / "stats.md"
    r = runner.invoke(app, ["stats", "--masks", str(tmp_path / "m"), "--json", str(out), "--markdown", str(md)])
    assert r.exit_code == 0, r.output
    assert "| MRPC | 3 |" in r.stdout and "Shared heads" in r.stdout
    js = json.loads(out.read_text())
    assert js["tasks"]["MRPC"]["fleiss_kappa_heads"] == pytest.approx(1 / 3)
    assert js["shared_heads"]["MRPC/RTE"]["mean"] == 0.0
    assert md.read_text() in r.stdout


def test_cli_stats_bad_input(tmp_path):
    r = runner.invoke(app, ["stats", "--masks", str(tmp_path / "none")])
    assert r.exit_code == 2 and "error:" in r.output and "folder not found" in r.output
    _tree(tmp_path / "m", {"CoLA": {1: (np.ones((2, 2), np.float32), np.ones(2, np.float32))}})
    r = runner.invoke(app, ["stats", "--masks", str(tmp_path / "m")])
    assert r.exit_code == 2 and "task CoLA: 1 seed(s)" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["stats", "--masks", str(tmp_path / "m"), "--seeds", "1,5"])
    assert r.exit_code == 2 and "no seed_5 folder" in r.output


def test_authors_stats(authors_dir):
    from attnpatterns.prune.masks import discover_masks

    table = discover_masks(authors_dir / "masks" / "heads_mlps", tasks=["MRPC", "WNLI"])
    rep = compute_stats(table)
    mrpc = rep.tasks["MRPC"]
    # Cross-check against the masks themselves, independent of the stats code.
    sizes = [int(hm.sum()) for _, (hm, _) in sorted(table["MRPC"].items())]
    assert mrpc.heads.mean_kept == pytest.approx(np.mean(sizes))
    assert mrpc.heads.fleiss_kappa == pytest.approx(
        fleiss_by_formula(np.stack([hm for _, (hm, _) in sorted(table["MRPC"].items())]))
    )
    # WNLI's MLP masks are all pruned in every seed: kappa is undefined, reported as such, no crash.
    assert math.isnan(rep.tasks["WNLI"].mlps.fleiss_kappa)


def test_cli_stats_on_a_run_folder_records_the_model(tmp_path):
    from attnpatterns.io import write_json
    from attnpatterns.prune.masks import HeadSet, write_head_set

    hand = HAND.reshape(3, 2, 2)
    for i, s in enumerate((1337, 42, 86)):
        d = tmp_path / "run" / "MRPC" / f"seed_{s}" / "structured"
        write_head_set(d / "mask.json", HeadSet.from_arrays(hand[i], np.ones(2), model="minilm", task="MRPC", seed=s))
        write_json(d / "summary.json", {"heads_kept": int(hand[i].sum())})
    out = tmp_path / "s.json"
    r = runner.invoke(app, ["stats", "--masks", str(tmp_path / "run"), "--json", str(out)])
    assert r.exit_code == 0, r.output
    js = json.loads(out.read_text())
    assert js["model"] == "minilm" and js["tasks"]["MRPC"]["seeds"] == [42, 86, 1337]
    assert "(model `minilm`)" in r.stdout
    # every MLP kept in every seed: kappa of MLPs undefined, no crash
    assert js["tasks"]["MRPC"]["fleiss_kappa_mlps"] is None
    r = runner.invoke(app, ["stats", "--masks", str(tmp_path / "run"), "--model", "bert-base-uncased"])
    assert r.exit_code == 2 and "not 'bert-base-uncased'" in r.output


def test_cli_stats_skip_unfinished(tmp_path):
    hand = HAND.reshape(3, 2, 2).astype(np.float32)
    _tree(
        tmp_path / "m",
        {
            "MRPC": {s: (hand[i], np.ones(2, np.float32)) for i, s in enumerate((1, 2, 3))},
            "CoLA": {1: (hand[0], np.ones(2, np.float32))},
        },
    )
    (tmp_path / "m" / "CoLA" / "seed_2" / "finetuned").mkdir(parents=True)  # still running
    r = runner.invoke(app, ["stats", "--masks", str(tmp_path / "m")])
    assert r.exit_code == 2 and "CoLA/seed_2: no masks" in r.output
    r = runner.invoke(app, ["stats", "--masks", str(tmp_path / "m"), "--skip-unfinished"])
    assert r.exit_code == 0, r.output
    assert "CoLA has 1 finished seed(s); left out" in r.output and "| MRPC | 3 |" in r.stdout
    assert "| CoLA |" not in r.stdout
