"""Head-set files, the authors' .npy layout, run folders and the mask algebra."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attnpatterns.errors import UserError
from attnpatterns.prune.masks import (
    HeadSet,
    and_over_seeds,
    discover_masks,
    load_mask_npy,
    mask_size,
    mask_sizes,
    or_over_seeds,
    read_head_set,
    stack_seeds,
    survival_counts,
    write_head_set,
)


def _write(path, obj):
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


# ---------------------------------------------------------------------------------------------- head sets


def test_head_set_arrays_round_trip():
    hm = np.zeros((3, 4), np.float32)
    hm[0, 1] = hm[2, 3] = hm[1, 0] = 1
    mm = np.array([1, 0, 1], np.float32)
    hs = HeadSet.from_arrays(hm, mm, model="m", task="MRPC", seed=7)
    assert hs.heads == [(0, 1), (1, 0), (2, 3)]  # sorted
    assert hs.mlps == [0, 2]
    hm2, mm2 = hs.to_arrays()
    assert hm2.dtype == np.float32 and mm2.dtype == np.float32
    np.testing.assert_array_equal(hm2, hm)
    np.testing.assert_array_equal(mm2, mm)


def test_head_set_json_round_trip(tmp_path):
    hs = HeadSet(num_layers=2, num_heads=3, heads=[[1, 2], [0, 0]], mlps=[1], model="minilm", task="RTE", seeds=[1, 2])
    p = write_head_set(tmp_path / "sub" / "set.json", hs)
    data = json.loads(p.read_text())
    assert data == {
        "model": "minilm",
        "task": "RTE",
        "seeds": [1, 2],
        "num_layers": 2,
        "num_heads": 3,
        "heads": [[0, 0], [1, 2]],
        "mlps": [1],
    }
    back = read_head_set(p)
    assert back == hs
    assert not list(tmp_path.glob("sub/.*tmp*"))  # atomic write left no temp file


def test_head_set_without_mlps_keeps_every_mlp(tmp_path):
    p = _write(tmp_path / "h.json", {"num_layers": 2, "num_heads": 2, "heads": [[1, 1]]})
    hs = read_head_set(p)
    assert hs.mlps is None
    hm, mm = hs.to_arrays()
    assert mm.tolist() == [1.0, 1.0] and hm.sum() == 1
    assert "mlps" not in hs.to_json()


def test_plain_pair_list(tmp_path):
    p = _write(tmp_path / "pairs.json", [[0, 1], [1, 0]])
    hs = read_head_set(p, num_layers=2, num_heads=2)
    assert hs.heads == [(0, 1), (1, 0)] and hs.mlps is None and hs.num_layers == 2
    with pytest.raises(UserError, match="pairs.json.*num_layers and num_heads"):
        read_head_set(p)


def test_plain_pair_list_out_of_range(tmp_path):
    p = _write(tmp_path / "pairs.json", [[0, 1], [6, 0]])
    with pytest.raises(UserError) as e:
        read_head_set(p, num_layers=6, num_heads=12)
    msg = str(e.value)
    assert str(p) in msg and "[6, 0]" in msg and "0..5" in msg and "0..11" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("{not json", "malformed JSON"),
        ("", "malformed JSON"),
        ('"heads"', "expected a JSON object"),
        ("42", "expected a JSON object"),
        ('{"num_layers": 2, "num_heads": 2}', "no 'heads' key"),
        ('{"num_layers": 2, "num_heads": 2, "heads": {"0": 1}}', "'heads' must be a list"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [[0]]}', r"\[layer, head\] pair"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [["0", 1]]}', r"\[layer, head\] pair"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [[0, 1.0]]}', r"\[layer, head\] pair"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [[true, 1]]}', r"\[layer, head\] pair"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [0, 1]}', r"\[layer, head\] pair"),
        ('{"num_layers": "2", "num_heads": 2, "heads": []}', "'num_layers' must be a positive integer"),
        ('{"num_layers": 0, "num_heads": 2, "heads": []}', "'num_layers' must be a positive integer"),
        ('{"heads": [[0, 0]]}', "no 'num_layers'/'num_heads'"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [[2, 0]]}', r"head \[2, 0\] is out of range: layers are 0..1"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [[0, -1]]}', r"head \[0, -1\] is out of range"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [[0, 1], [0, 1]]}', r"head \[0, 1\] is listed twice"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "mlps": [2]}', "MLP 2 is out of range"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "mlps": [1, 1]}', "MLP 1 is listed twice"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "mlps": 1}', "'mlps' must be a list"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "mlps": ["a"]}', "every MLP must be a layer index"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "seed": "1"}', "'seed' must be an integer"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "seeds": [1, 1]}', "repeats a seed"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "seeds": 5}', "'seeds' must be a list"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "seed": 1, "seeds": [1]}', "either 'seed' or 'seeds'"),
        ('{"num_layers": 2, "num_heads": 2, "heads": [], "model": 3}', "'model' must be a string"),
    ],
)
def test_head_set_parse_errors(tmp_path, content, pattern):
    p = _write(tmp_path / "bad.json", content)
    with pytest.raises(UserError, match=pattern) as e:
        read_head_set(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_head_set_file(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_head_set(tmp_path / "nope.json")


def test_head_set_for_another_model(tmp_path):
    p = _write(tmp_path / "s.json", {"model": "bert-base", "num_layers": 12, "num_heads": 12, "heads": [[11, 11]]})
    with pytest.raises(UserError, match=r"12 x 12 .* model, this model has 6 x 12"):
        read_head_set(p, num_layers=6, num_heads=12)
    with pytest.raises(UserError, match="for model 'bert-base', not 'minilm'"):
        read_head_set(p, num_layers=12, num_heads=12, model="minilm")
    assert read_head_set(p, num_layers=12, num_heads=12, model="bert-base").heads == [(11, 11)]


def test_from_arrays_rejects_non_binary_and_bad_shapes():
    with pytest.raises(UserError, match="holds 0.5"):
        HeadSet.from_arrays(np.full((2, 2), 0.5))
    with pytest.raises(UserError, match=r"expected \(layers, heads\)"):
        HeadSet.from_arrays(np.ones(4))
    with pytest.raises(UserError, match="MLP mask has shape"):
        HeadSet.from_arrays(np.ones((2, 2)), np.ones(3))


# ---------------------------------------------------------------------------------------------- layouts


def _authors_tree(root, tasks=("MRPC", "RTE"), seeds=(1, 2, 3), L=2, H=3, rng=None):
    rng = rng or np.random.default_rng(0)
    truth = {}
    for t in tasks:
        for s in seeds:
            d = root / t / f"seed_{s}"
            d.mkdir(parents=True)
            hm = rng.integers(0, 2, (L, H)).astype(np.float32)
            mm = rng.integers(0, 2, L).astype(np.float32)
            np.save(d / "head_mask.npy", hm)
            np.save(d / "mlp_mask.npy", mm)
            truth[(t, s)] = (hm, mm)
    return truth


def test_discover_authors_layout(tmp_path):
    truth = _authors_tree(tmp_path)
    (tmp_path / "classify").mkdir()  # folders without seed_* are not tasks
    (tmp_path / "MRPC" / "super").mkdir()  # neither are non-seed folders inside a task
    table = discover_masks(tmp_path)
    assert sorted(table) == ["MRPC", "RTE"]
    for t in table:
        assert sorted(table[t]) == [1, 2, 3]
        for s, (hm, mm) in table[t].items():
            np.testing.assert_array_equal(hm, truth[(t, s)][0])
            np.testing.assert_array_equal(mm, truth[(t, s)][1])
    sub = discover_masks(tmp_path, seeds=[3, 1], tasks=["rte"])
    assert list(sub) == ["RTE"] and sorted(sub["RTE"]) == [1, 3]
    seeds, hs, ms = stack_seeds(sub["RTE"])
    assert seeds == [1, 3] and hs.shape == (2, 2, 3) and ms.shape == (2, 2) and hs.dtype == bool


def test_discover_errors(tmp_path):
    _authors_tree(tmp_path)
    with pytest.raises(UserError, match=r"MRPC: no seed_4 folder \(found seeds \[1, 2, 3\]\)"):
        discover_masks(tmp_path, seeds=[1, 4])
    with pytest.raises(UserError, match=r"no masks of task 'SST-2' \(found: MRPC, RTE\)"):
        discover_masks(tmp_path, tasks=["SST-2"])
    with pytest.raises(UserError, match="folder not found"):
        discover_masks(tmp_path / "missing")
    with pytest.raises(UserError, match="no TASK/seed_S folders"):
        discover_masks(tmp_path / "MRPC" / "seed_1")


def test_discover_inconsistent_shape_names_the_file(tmp_path):
    _authors_tree(tmp_path)
    bad = tmp_path / "RTE" / "seed_2" / "head_mask.npy"
    np.save(bad, np.ones((2, 4), np.float32))
    with pytest.raises(UserError) as e:
        discover_masks(tmp_path)
    assert str(bad) in str(e.value) and "2 x 4" in str(e.value) and "2 x 3" in str(e.value)


def test_discover_mismatched_mlp_mask(tmp_path):
    _authors_tree(tmp_path)
    bad = tmp_path / "MRPC" / "seed_3" / "mlp_mask.npy"
    np.save(bad, np.ones(5, np.float32))
    with pytest.raises(UserError, match=f"{bad}: 5 layers"):
        discover_masks(tmp_path)


def test_discover_empty_seed_folder_and_bad_name(tmp_path):
    _authors_tree(tmp_path)
    (tmp_path / "RTE" / "seed_9").mkdir()
    with pytest.raises(UserError, match=r"seed_9: no masks in this seed folder"):
        discover_masks(tmp_path)
    (tmp_path / "RTE" / "seed_9").rmdir()
    (tmp_path / "RTE" / "seed_x").mkdir()
    with pytest.raises(UserError, match=r"seed_x: seed folders must be named seed_<integer>"):
        discover_masks(tmp_path)


def test_discover_mixed_kinds(tmp_path):
    _authors_tree(tmp_path)
    (tmp_path / "MRPC" / "seed_2" / "mlp_mask.npy").unlink()
    with pytest.raises(UserError, match="holds head masks only but .* holds head and MLP masks"):
        discover_masks(tmp_path)


def test_heads_only_setting(tmp_path):
    for s in (1, 2):
        d = tmp_path / "CoLA" / f"seed_{s}"
        d.mkdir(parents=True)
        np.save(d / "head_mask.npy", np.ones((2, 2), np.float32))
    table = discover_masks(tmp_path)
    assert table["CoLA"][1][1] is None
    seeds, hs, ms = stack_seeds(table["CoLA"])
    assert hs.shape == (2, 2, 2) and ms is None


def test_load_mask_npy_bad_files(tmp_path):
    p = tmp_path / "head_mask.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="not a plain numeric .npy"):
        load_mask_npy(p, 2)
    p.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UserError, match=str(p)):
        load_mask_npy(p, 2)
    np.save(p, np.array([[0.0, 2.0]], np.float32))
    with pytest.raises(UserError, match="holds 2.0; a mask holds only 0"):
        load_mask_npy(p, 2)
    np.save(p, np.array([[0.0, np.nan]], np.float32))
    with pytest.raises(UserError, match="holds nan"):
        load_mask_npy(p, 2)
    np.save(p, np.ones(3, np.float32))
    with pytest.raises(UserError, match=r"shape \(3,\), expected \(layers, heads\)"):
        load_mask_npy(p, 2)


def _run_tree(root, model="minilm", seeds=(1, 2), with_summary=True):
    sets = {}
    for s in seeds:
        d = root / "MRPC" / f"seed_{s}" / "structured"
        d.mkdir(parents=True)
        hs = HeadSet(num_layers=2, num_heads=2, heads=[[0, s % 2], [1, 1]], mlps=[1], model=model, task="MRPC", seed=s)
        write_head_set(d / "mask.json", hs)
        if with_summary:
            (d / "summary.json").write_text("{}")
        sets[s] = hs
    (root / "MRPC" / "seed_1" / "finetuned").mkdir()
    return sets


def test_discover_run_folder_layout(tmp_path):
    sets = _run_tree(tmp_path)
    table = discover_masks(tmp_path)
    for s, hs in sets.items():
        hm, mm = hs.to_arrays()
        np.testing.assert_array_equal(table["MRPC"][s][0], hm)
        np.testing.assert_array_equal(table["MRPC"][s][1], mm)
    with pytest.raises(UserError, match=r"mask.json: masks of model 'minilm', not 'bert-base'"):
        discover_masks(tmp_path, model="bert-base")


def test_run_folder_npy_copies_and_unfinished(tmp_path):
    d = tmp_path / "RTE" / "seed_5" / "structured"
    d.mkdir(parents=True)
    np.save(d / "head_mask.npy", np.eye(2, dtype=np.float32))
    np.save(d / "mlp_mask.npy", np.ones(2, np.float32))
    with pytest.raises(UserError, match="s-pruning did not finish"):
        discover_masks(tmp_path)
    (d / "summary.json").write_text("{}")
    hm, mm = discover_masks(tmp_path)["RTE"][5]
    np.testing.assert_array_equal(hm, np.eye(2))


def test_run_folders_of_two_models(tmp_path):
    _run_tree(tmp_path)
    d = tmp_path / "MRPC" / "seed_3" / "structured"
    d.mkdir(parents=True)
    write_head_set(d / "mask.json", HeadSet(num_layers=2, num_heads=2, heads=[], mlps=[], model="other", seed=3))
    (d / "summary.json").write_text("{}")
    with pytest.raises(UserError, match=r"seed_3/structured/mask.json: masks of model 'other', but .* 'minilm'"):
        discover_masks(tmp_path)


def test_authors_masks_load(authors_dir):
    root = authors_dir / "masks"
    table = discover_masks(root / "heads_mlps")
    assert set(table) == {"CoLA", "MNLI", "MRPC", "QNLI", "QQP", "RTE", "SST-2", "STS-B", "WNLI"}
    for per_seed in table.values():
        assert sorted(per_seed) == [42, 71, 86, 166, 1337]
        for hm, mm in per_seed.values():
            assert hm.shape == (12, 12) and mm.shape == (12,)
            assert hm.dtype == np.float32 and set(np.unique(hm)) <= {0.0, 1.0}
    heads_only = discover_masks(root / "heads", tasks=["RTE"])
    assert all(mm is None for _, mm in heads_only["RTE"].values())
    # the authors' head masks as our head sets and back
    hm, mm = table["MRPC"][1337]
    hs = HeadSet.from_arrays(hm, mm, task="MRPC", seed=1337)
    assert hs.size == int(hm.sum())
    np.testing.assert_array_equal(hs.to_arrays()[0], hm)


# ---------------------------------------------------------------------------------------------- algebra


def test_mask_algebra():
    stack = np.array([[[1, 1], [0, 1]], [[1, 0], [0, 1]], [[1, 1], [1, 1]]])  # (S=3, L=2, H=2)
    np.testing.assert_array_equal(and_over_seeds(stack), [[True, False], [False, True]])
    np.testing.assert_array_equal(or_over_seeds(stack), [[True, True], [True, True]])
    np.testing.assert_array_equal(survival_counts(stack), [[3, 2], [1, 3]])
    assert mask_size(and_over_seeds(stack)) == 2
    assert mask_sizes(stack).tolist() == [3, 2, 4]
    with pytest.raises(ValueError):
        and_over_seeds(np.zeros((0, 2, 2)))


def test_skip_unfinished_seed_folders(tmp_path, caplog):
    _run_tree(tmp_path)  # MRPC seeds 1, 2 finished
    (tmp_path / "MRPC" / "seed_3" / "finetuned").mkdir(parents=True)  # fine-tuned, not pruned yet
    d = tmp_path / "MRPC" / "seed_4" / "structured"
    d.mkdir(parents=True)
    np.save(d / "head_mask.npy", np.eye(2, dtype=np.float32))  # pruning under way: no summary.json
    (tmp_path / "RTE" / "seed_1" / "finetuned").mkdir(parents=True)  # a task with nothing finished
    with pytest.raises(UserError, match="seed_3: no masks in this seed folder"):
        discover_masks(tmp_path)
    with caplog.at_level("WARNING", logger="attnpatterns"):
        table = discover_masks(tmp_path, skip_unfinished=True)
    assert list(table) == ["MRPC"] and sorted(table["MRPC"]) == [1, 2]
    assert "seed_4: s-pruning not finished" in caplog.text
    with pytest.raises(UserError, match="no finished s-pruning masks yet"):
        discover_masks(tmp_path, tasks=["RTE"], skip_unfinished=True)
