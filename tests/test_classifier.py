"""The pattern CNN: architecture, preprocessing, training on a tiny set, the shipped models and their cards,
`attn classifier train|evaluate|predict` and their bad input (one line on stderr, exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from attnpatterns.classifier.labels import LABELS
from attnpatterns.classifier.model import PatternCNN, Preprocess, prepare
from attnpatterns.classifier.synthetic import synthetic_map, synthetic_set
from cli.main import app

runner = CliRunner()
KINDS = ("raw", "normed")


def _err_line(r) -> str:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]


# ---------------------------------------------------------------------------------------------------------------
# Model and preprocessing
# ---------------------------------------------------------------------------------------------------------------


def test_cnn_is_the_original_architecture_and_takes_any_size():
    m = PatternCNN().eval()
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (1, 16, 3),
        (16, 16, 3),
        (16, 32, 3),
        (32, 32, 3),
        (32, 64, 3),
        (64, 64, 3),
        (64, 16, 1),
        (16, 5, 1),
    ]
    for s in (4, 9, 16, 37, 128):
        with torch.no_grad():
            assert m(torch.rand(3, 1, s, s)).shape == (3, 5)


def test_xavier_init_and_zero_bias():
    m = PatternCNN()
    c = m.convs[2]  # 16 -> 32, 3x3
    fan_in, fan_out = 16 * 9, 32 * 9
    bound = (6 / (fan_in + fan_out)) ** 0.5
    assert float(c.weight.detach().abs().max()) <= bound + 1e-6
    assert (
        float(c.weight.detach().abs().max()) > 0.8 * bound
    )  # uniform over the whole Xavier range, not PyTorch's default
    assert float(c.bias.detach().abs().max()) == 0.0


@pytest.mark.parametrize("scale", ["none", "max", "mass"])
def test_compiled_resize_equals_torch_interpolate(scale):
    """prepare's compiled resize gives torch's area / nearest-exact interpolation, at lengths below, at, above and at
    non-multiples of the CNN's side, on peaked maps, a zero map included."""
    from attnpatterns.classifier.model import prepare_torch

    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 8, 9, 13, 16, 17, 31, 55, 64, 129):
        for S in (8, 16):
            maps = torch.from_numpy(rng.random((6, n, n), dtype=np.float32) ** 6)
            maps[0] = 0.0
            pre = Preprocess(size=S, mode="resize", scale=scale)
            got, want = prepare(maps, pre), prepare_torch(maps, pre)
            assert got.shape == want.shape == (6, 1, S, S) and got.dtype == torch.float32
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), (n, S)


def test_prepare_resize_pad_and_scale():
    x = torch.rand(2, 40, 40)
    assert prepare(x, Preprocess(size=16, mode="resize", scale="none")).shape == (2, 1, 16, 16)
    # area resizing keeps the mean; max scaling puts each map's peak at 1
    r = prepare(x, Preprocess(size=20, mode="resize", scale="none"))
    assert torch.allclose(r.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2)), atol=1e-5)
    s = prepare(x * 7.0, Preprocess(size=16, mode="resize", scale="max"))
    assert torch.allclose(s.amax(dim=(1, 2, 3)), torch.ones(2))
    # pad mode: a small map sits in the centre, zeros around it
    p = prepare(torch.ones(1, 6, 6), Preprocess(size=10, mode="pad", scale="none"))
    assert p.shape == (1, 1, 10, 10) and float(p.sum()) == 36.0 and float(p[0, 0, 2:8, 2:8].min()) == 1.0


def test_synthetic_maps_are_attention_like():
    rng = np.random.default_rng(0)
    for lab in LABELS:
        m = synthetic_map(lab, 30, rng, noise=0.1)
        assert m.shape == (30, 30) and m.dtype == np.float32
        assert np.allclose(m.sum(axis=1), 1.0, atol=1e-4)
        assert (m >= 0).all()


def test_stratified_split_keeps_class_shares_and_is_seeded():
    from attnpatterns.classifier.train import stratified_folds, stratified_split

    y = np.array([0] * 50 + [1] * 20 + [2] * 10 + [3] * 1)
    keep, held = stratified_split(y, 0.2, seed=3)
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(len(y)))
    assert [int((y[held] == c).sum()) for c in range(4)] == [10, 4, 2, 0]
    k2, h2 = stratified_split(y, 0.2, seed=3)
    assert (held == h2).all()
    folds = stratified_folds(y, 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(y)))
    assert all(int((y[f] == 0).sum()) == 10 for f in folds)


def test_scores_match_hand_computation():
    from attnpatterns.classifier.scoring import scores

    s = scores([0, 0, 1, 1], [0, 1, 1, 1])
    assert s["accuracy"] == 0.75
    assert s["confusion"][0][:2] == [1, 1] and s["confusion"][1][:2] == [0, 2]
    # class 0: P 1, R .5, F1 2/3; class 1: P 2/3, R 1, F1 .8; both support 2
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert s["weighted_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


# ---------------------------------------------------------------------------------------------------------------
# Training a tiny model through the CLI
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_annotations(tmp_path_factory):
    from attnpatterns.annotate import dataset

    root = tmp_path_factory.mktemp("ann")
    maps, labels = synthetic_set(12, kind="raw", sizes=(10, 40), noise=(0.0, 0.15), seed=1)
    rows = [
        dict(
            id=f"syn-{i}",
            label=lab,
            annotator="test",
            source_model="none",
            task="none",
            layer=0,
            head=0,
            example=str(i),
        )
        for i, lab in enumerate(labels)
    ]
    dataset.upsert(root, "raw", rows, {f"syn-{i}": m for i, m in enumerate(maps)})
    return root


@pytest.fixture(scope="module")
def tiny_trained(tiny_annotations, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "cnn.safetensors"
    r = runner.invoke(
        app,
        [
            "classifier",
            "train",
            "--kind",
            "raw",
            "--data",
            str(tiny_annotations),
            "--out",
            str(out),
            "--epochs",
            "25",
            "--threads",
            "1",
            "--synthetic",
            "0",
        ],
    )
    assert r.exit_code == 0, r.output
    return out


def test_train_on_one_annotators_labels(tiny_annotations, tmp_path, monkeypatch):
    """--annotator trains on that annotator's own labels (only the maps they labelled), never over the shipped model."""
    from attnpatterns.annotate import dataset
    from attnpatterns.classifier.train import load_data

    d = load_data(tiny_annotations, "raw")
    # annotator 'b' labelled every other map and calls every vertical map heterogeneous
    rows = [
        {
            "id": i,
            "label": "heterogeneous" if r["label"] == "vertical" else r["label"],
            "confident": "yes",
            "annotator": "b (test)",
            "round": "1",
        }
        for k, (i, r) in enumerate(zip(d.ids, d.rows))
        if k % 2 == 0
    ]
    dataset.write_annotator(tiny_annotations, "raw", "b", rows)
    own = load_data(tiny_annotations, "raw", annotator="b")
    assert own.ids == [r["id"] for r in rows] and own.counts()["vertical"] == 0
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(
        app,
        [
            "classifier",
            "train",
            "--kind",
            "raw",
            "--data",
            str(tiny_annotations),
            "--annotator",
            "b",
            "--epochs",
            "3",
            "--threads",
            "1",
            "--synthetic",
            "0",
            "--recipe",
            "features",
        ],
    )
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "classifiers" / "pattern-cnn-raw-b.json").read_text())
    assert card["training"]["labels_from"] == "annotator b" and card["training"]["n_maps"] == len(rows)
    assert "--annotator b" in card["command"] and "--out classifiers/pattern-cnn-raw-b.safetensors" in card["command"]
    r = runner.invoke(
        app, ["classifier", "train", "--kind", "raw", "--data", str(tiny_annotations), "--annotator", "x"]
    )
    assert r.exit_code != 0 and "no such annotator" in r.output
    (tiny_annotations / "raw" / "annotators" / "b.tsv").unlink()


def test_train_writes_weights_and_matching_card(tiny_trained, tiny_annotations):
    from attnpatterns.classifier.card import sha256_file
    from attnpatterns.classifier.train import data_hash, load_data

    card = json.loads(tiny_trained.with_suffix(".json").read_text())
    assert card["labels"] == list(LABELS) and card["kind"] == "raw"
    assert card["weights"]["sha256"] == sha256_file(tiny_trained)
    assert card["command"].startswith("attn classifier train --kind raw")
    d = load_data(tiny_annotations, "raw")
    assert card["training"]["data_hash"] == data_hash(d.ids, [r["label"] for r in d.rows], d.maps)
    assert card["training"]["n_train"] + card["training"]["n_val"] + card["training"]["n_test"] == len(d)
    assert card["input"]["min_tokens"] == min(m.shape[0] for m in d.maps)
    # 12 clean synthetic maps per type: even a short training run is far above chance on the held-out part
    assert card["metrics"]["held_out"]["weighted_f1"] > 0.5
    assert {"weighted_f1", "macro_f1", "per_class", "confusion"} <= set(card["metrics"]["heuristic_held_out"])
    # the weights file is safetensors with our metadata, no pickle
    from safetensors import safe_open

    with safe_open(str(tiny_trained), framework="pt") as fh:
        assert fh.metadata()["format"] == "attnpatterns.pattern-cnn"


@pytest.mark.parametrize("recipe", ["features", "improved", "cnn8", "cnn8wide", "cnn8soft"])
def test_training_is_deterministic(tiny_annotations, tmp_path, recipe):
    from attnpatterns.classifier import train as tr

    rec = tr.RECIPES[recipe]
    cfg = tr.TrainConfig(kind="raw", data=str(tiny_annotations), epochs=3, threads=1, recipe=rec)
    a, b = tr.train(cfg), tr.train(cfg)
    assert a.test_ids == b.test_ids
    for (k, v), (_, w) in zip(a.fit.model.state_dict().items(), b.fit.model.state_dict().items()):
        assert torch.equal(v, w), k
    assert a.recipe == rec
    assert tr.TrainConfig().recipe == tr.CNN8SOFT == tr.RECIPES[tr.SHIPPED]  # the shipped recipe is the default


def test_linear_recipe_chooses_l2_on_validation(tiny_annotations):
    from attnpatterns.classifier import train as tr
    from attnpatterns.classifier.model import PatternLinear

    res = tr.train(tr.TrainConfig(kind="raw", data=str(tiny_annotations), threads=1, recipe=tr.FEATURES))
    f = res.fit
    assert isinstance(f.model, PatternLinear) and not f.preprocess.cnn and f.preprocess.features
    assert [h["C"] for h in f.history] == list(tr.L2_GRID)
    # the kept model is the best on validation; ties go to the stronger regularisation (smaller C)
    best = max(f.history, key=lambda h: (h["val_weighted_f1"], -h["C"]))
    assert f.best_val == best and f.history[f.best_epoch] == best
    # weaker L2 fits the training part at least as well
    losses = [h["train_loss"] for h in f.history]
    assert all(a >= b - 1e-6 for a, b in zip(losses, losses[1:]))
    assert res.test["weighted_f1"] > 0.5


def test_model_of_the_first_feature_set_still_loads_and_predicts(tmp_path):
    """A feature-branch CNN trained on the first 23 features (the shipped models before the features were
    extended) reads the first 23 of the current features."""
    from attnpatterns.classifier import card as card_mod
    from attnpatterns.classifier import classify_maps
    from attnpatterns.classifier.features import NUM_FEATURES, NUM_FEATURES_V1
    from attnpatterns.classifier.model import PatternCNN, Preprocess

    assert NUM_FEATURES > NUM_FEATURES_V1 == 23
    m = PatternCNN(num_features=NUM_FEATURES_V1).eval()
    m.set_feature_scaling(torch.rand(10, NUM_FEATURES_V1))
    pre = Preprocess(size=16, mode="resize", scale="mass", features=True).to_dict()
    pre.pop("cnn")  # written before the field existed
    path = tmp_path / "v1.safetensors"
    card_mod.save(path, m, card_mod.Card(kind="raw", labels=list(LABELS), preprocess=pre, min_tokens=8))
    loaded = card_mod.load(path, kind="raw")
    assert loaded.model.num_features == NUM_FEATURES_V1
    maps = [synthetic_map("diagonal", n, np.random.default_rng(n)) for n in (12, 30)]
    labels, probs = classify_maps(maps, "raw", classifier=path)
    assert len(labels) == 2 and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_evaluate_writes_tables_and_png(tiny_trained, tiny_annotations, tmp_path):
    out = tmp_path / "eval"
    r = runner.invoke(
        app,
        [
            "classifier",
            "evaluate",
            "--kind",
            "raw",
            "--data",
            str(tiny_annotations),
            "--classifier",
            str(tiny_trained),
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "weighted F1" in r.output and "heuristic scorer" in r.output
    m = json.loads((out / "metrics.json").read_text())
    card = json.loads(tiny_trained.with_suffix(".json").read_text())
    assert m["cnn"]["weighted_f1"] == pytest.approx(card["metrics"]["held_out"]["weighted_f1"])
    assert m["n"] == card["training"]["n_test"]
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "confusion.csv").read_text().splitlines()[0].startswith("true\\predicted,vertical")


def test_cross_validation_covers_every_map(tiny_annotations):
    from attnpatterns.classifier.train import IMPROVED, TrainConfig, cross_validate

    cv = cross_validate(TrainConfig(kind="raw", data=str(tiny_annotations), epochs=2, threads=1), 3, [IMPROVED])
    assert len(cv["recipes"]["improved"]["per_fold"]) == 3 and len(cv["heuristic"]["per_fold"]) == 3


def test_train_bad_data_is_one_line(tmp_path):
    r = runner.invoke(app, ["classifier", "train", "--kind", "raw", "--data", str(tmp_path)])
    assert "no annotations" in _err_line(r)


# ---------------------------------------------------------------------------------------------------------------
# The shipped models
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_card_matches_weights(kind):
    from attnpatterns.classifier.card import card_path, default_path, sha256_file

    w = default_path(kind)
    card = json.loads(card_path(w).read_text())
    assert card["weights"]["sha256"] == sha256_file(w)
    assert card["labels"] == list(LABELS) and card["kind"] == kind
    assert card["training"]["data_hash"] and card["command"].startswith("attn classifier train")
    assert 0.0 <= card["metrics"]["held_out"]["weighted_f1"] <= 1.0


# every type, both kinds: clean synthetic maps of each of the five types come out as that type
SHIPPED_CASES = [(kind, lab) for kind in KINDS for lab in LABELS]


@pytest.mark.parametrize("kind,label", SHIPPED_CASES)
def test_shipped_model_classifies_synthetic_maps_of_each_type(kind, label):
    from attnpatterns.classifier import classify_maps

    rng = np.random.default_rng(123 + LABELS.index(label))
    maps, want = [], []
    for lab in [label]:
        for n in (20, 36, 50):
            maps.append(synthetic_map(lab, n, rng, noise=0.05, kind=kind))
            want.append(lab)
    labels, probs = classify_maps(maps, kind)
    assert probs.shape == (len(maps), 5) and np.allclose(probs.sum(1), 1, atol=1e-5)
    wrong = [(w, g) for w, g in zip(want, labels) if w != g]
    assert not wrong, wrong


# ---------------------------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------------------------


def test_predict_float16_and_float64(tmp_path):
    m = synthetic_map("diagonal", 24, np.random.default_rng(0), noise=0.05)
    np.save(tmp_path / "half.npy", m.astype(np.float16))
    np.save(tmp_path / "double.npy", m.astype(np.float64))
    tsv = tmp_path / "preds.tsv"
    r = runner.invoke(
        app,
        [
            "classifier",
            "predict",
            "--kind",
            "raw",
            str(tmp_path / "half.npy"),
            str(tmp_path / "double.npy"),
            "--out",
            str(tsv),
        ],
    )
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["half", "double"]
    for ln in lines:
        stem, label, prob = ln.split("\t")
        assert label in LABELS and 0.2 <= float(prob) <= 1.0
    assert lines[0].split("\t")[1] == lines[1].split("\t")[1]
    assert tsv.read_text().splitlines()[1:] == lines


def test_predict_bad_inputs_are_one_line(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((3, 4, 4), dtype=np.float32))
    assert "square 2-D map" in _err_line(
        runner.invoke(app, ["classifier", "predict", "--kind", "raw", str(tmp_path / "cube.npy")])
    )
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "pickle" in _err_line(
        runner.invoke(app, ["classifier", "predict", "--kind", "raw", str(tmp_path / "obj.npy")])
    )
    np.save(tmp_path / "rect.npy", np.zeros((5, 7), dtype=np.float32))
    assert "square" in _err_line(
        runner.invoke(app, ["classifier", "predict", "--kind", "raw", str(tmp_path / "rect.npy")])
    )
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    _err_line(runner.invoke(app, ["classifier", "predict", "--kind", "raw", str(tmp_path / "junk.npy")]))
    _err_line(runner.invoke(app, ["classifier", "predict", "--kind", "raw", str(tmp_path / "missing.npy")]))


def test_classifier_file_not_ours_is_refused(tmp_path, tiny_trained):
    from safetensors.torch import save_file

    m = synthetic_map("block", 20, np.random.default_rng(0))
    np.save(tmp_path / "m.npy", m)
    args = ["classifier", "predict", "--kind", "raw", str(tmp_path / "m.npy"), "--classifier"]
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    assert "not a safetensors file" in _err_line(runner.invoke(app, args + [str(tmp_path / "junk.safetensors")]))
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    assert "not an attnpatterns pattern classifier" in _err_line(
        runner.invoke(app, args + [str(tmp_path / "other.safetensors")])
    )
    # our weights, changed after the card was written: the card's hash no longer matches
    import shutil

    from safetensors import safe_open

    changed = tmp_path / "changed.safetensors"
    with safe_open(str(tiny_trained), framework="pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, str(changed), metadata=meta)
    shutil.copy(tiny_trained.with_suffix(".json"), changed.with_suffix(".json"))
    assert "does not match" in _err_line(runner.invoke(app, args + [str(changed)]))
    # a raw model asked to act on normed maps
    r = runner.invoke(
        app, ["classifier", "predict", "--kind", "normed", str(tmp_path / "m.npy"), "--classifier", str(tiny_trained)]
    )
    assert "for raw maps" in _err_line(r)


def _tiny_parts(tiny_annotations):
    from attnpatterns.classifier.data import load_data, stratified_split

    d = load_data(tiny_annotations, "raw")
    tr_idx, va_idx = stratified_split(d.y, 0.25, 0)
    return d.subset(tr_idx), d.subset(va_idx)


def test_wide_head_is_the_features_regression_plus_the_cnn(tiny_annotations):
    """cnn8wide: the logistic regression of the features recipe, fitted on the same part and held fixed, plus the
    CNN head, whose output layer starts at zero (so before training the model is that regression)."""
    from dataclasses import replace

    from attnpatterns.classifier import train as tr
    from attnpatterns.classifier.predict import logits_of, prepared_batches, prepared_features

    train, val = _tiny_parts(tiny_annotations)
    cfg = tr.TrainConfig(kind="raw", data=str(tiny_annotations), epochs=2, threads=1)
    lin = tr.fit_linear(train, val, replace(tr.CNN8WIDE, cnn=False), cfg).model
    wide = tr.fit(train, val, tr.CNN8WIDE, cfg).model
    assert wide.head_kind == "wide"
    assert torch.equal(wide.lin.weight, lin.out.weight) and torch.equal(wide.lin.bias, lin.out.bias)
    assert torch.equal(wide.feat_mean, lin.feat_mean) and torch.equal(wide.feat_std, lin.feat_std)
    with torch.no_grad():
        wide.out.weight.zero_()
        wide.out.bias.zero_()
    pre = tr.preprocess_for(tr.CNN8WIDE, train)
    x, f = prepared_batches(val.maps, pre), prepared_features(val.maps, pre)
    assert torch.allclose(logits_of(wide, x, feats=f), logits_of(lin, None, feats=f), atol=1e-5)


@pytest.mark.parametrize("head", ["wide", "linear"])
def test_each_head_saves_and_loads(tmp_path, head):
    from attnpatterns.classifier import card as card_mod
    from attnpatterns.classifier.features import NUM_FEATURES, map_features

    torch.manual_seed(0)
    m = PatternCNN(num_features=NUM_FEATURES, head=head).eval()
    m.set_feature_scaling(torch.rand(10, NUM_FEATURES))
    pre = Preprocess(size=8, mode="resize", scale="mass", features=True)
    path = tmp_path / f"{head}.safetensors"
    card_mod.save(path, m, card_mod.Card(kind="raw", labels=list(LABELS), preprocess=pre.to_dict(), min_tokens=8))
    loaded = card_mod.load(path, kind="raw")
    assert loaded.model.head_kind == head
    maps = torch.stack([torch.as_tensor(synthetic_map(t, 20, np.random.default_rng(1))) for t in LABELS])
    x, f = prepare(maps, pre), map_features(maps)
    assert torch.allclose(loaded.model(x.contiguous(), f), m(x, f), atol=1e-5)
    # the inference graph attn classify calls is the same function as the model, at any batch size
    assert loaded.infer is not None and loaded.forward is loaded.infer
    for b in (1, 3, 5):
        assert torch.allclose(loaded.forward(x[:b].contiguous(), f[:b]), m(x[:b], f[:b]), atol=1e-5)
    with pytest.raises(ValueError, match="head must be one of"):
        PatternCNN(num_features=3, head="deep")


def test_soft_labels_of_unanimous_votes_train_as_the_hard_labels(tiny_annotations):
    """Training on vote shares that are all one-hot gives the model that training on the labels gives; a contested
    map's shares change it."""
    from dataclasses import replace

    from attnpatterns.classifier import train as tr

    train, val = _tiny_parts(tiny_annotations)
    cfg = tr.TrainConfig(kind="raw", data=str(tiny_annotations), epochs=2, threads=1)
    rec = replace(tr.CNN8, synthetic_per_class=2)
    hard = tr.fit(train, val, rec, cfg).model.state_dict()
    train.soft = np.eye(len(LABELS), dtype=np.float32)[train.y]
    soft = tr.fit(train, val, replace(rec, soft=True), cfg).model.state_dict()
    for k in hard:
        assert torch.allclose(hard[k], soft[k], atol=1e-5), k
    train.soft[0] = 1 / len(LABELS)
    other = tr.fit(train, val, replace(rec, soft=True), cfg).model.state_dict()
    assert not all(torch.allclose(hard[k], other[k], atol=1e-5) for k in hard)


def test_consensus_maps_carry_their_vote_shares():
    from pathlib import Path

    from attnpatterns.classifier.data import load_data

    ann = Path(__file__).resolve().parents[1] / "annotations"
    for kind in ("raw", "normed"):
        d = load_data(ann, kind)
        assert d.soft is not None and d.soft.shape == (len(d), len(LABELS))
        assert np.allclose(d.soft.sum(1), 1)
        # the consensus label has the most votes (a tie is adjudicated to one of the tied types)
        assert np.all(d.soft[np.arange(len(d)), d.y] >= d.soft.max(1) - 1e-6)
        assert d.subset([0, 2]).soft.tolist() == d.soft[[0, 2]].tolist()
        one = "agent-annotator-12" if kind == "raw" else "agent-annotator-14"
        assert load_data(ann, kind, annotator=one).soft is None


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(head="wdie"), "head must be one of"),
        (dict(select="accuracy"), "select must be one of"),
        (dict(mode="crop"), "mode must be one of"),
        (dict(scale="log"), "scale must be one of"),
        (dict(size=0), "needs mode 'pad'"),
        (dict(size=-1), "at least 0"),
        (dict(cnn=False, features=False), "needs the features"),
        (dict(features=False), "feature branch"),  # CNN8WIDE's wide head without the features
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_a_recipe_that_cannot_train_fails_when_made(change, words):
    from dataclasses import replace

    from attnpatterns.classifier.recipes import CNN8WIDE, RECIPES, recipe_grid

    with pytest.raises(ValueError, match=words):
        replace(CNN8WIDE, **change)
    assert len(recipe_grid()) == 13 and set(RECIPES) >= {"cnn8soft", "original"}  # the shipped grid still builds
