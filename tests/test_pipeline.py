"""``attn run`` end to end on a tiny random BERT and a tiny synthetic MRPC-format task: every stage runs and the
report has every section; a rerun does no work; a changed input reruns only what depends on it; bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = (
    "the cat dog sat ran on a mat big small red blue house tree car went home fast slowly river stone "
    "light dark bird sang loud quiet green field"
).split()


def write_glue_mrpc(root: Path, n_train: int = 32, n_dev: int = 16, seed: int = 0) -> Path:
    """A glue_data folder with an MRPC in its TSV layout: label 1 when the second sentence repeats the first."""
    rng = random.Random(seed)
    d = root / "MRPC"
    d.mkdir(parents=True)
    for split, n in (("train", n_train), ("dev", n_dev)):
        lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        for i in range(n):
            a = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 11))) + " ."
            lab = i % 2
            b = a if lab else " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 11))) + " ."
            lines.append(f"{lab}\t{i}\t{i + 1000}\t{a}\t{b}")
        (d / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_tiny_model(path: Path) -> Path:
    """A tiny random BERT saved with save_pretrained, with the MiniLM tokenizer beside it."""
    from attnpatterns.models import TinySpec, load_tokenizer, tiny_bert

    model = tiny_bert(TinySpec(layers=2, heads=4, hidden=32, intermediate=64), num_labels=2, seed=0)
    model.save_pretrained(path)
    load_tokenizer(None).save_pretrained(path)
    return path


def ensure_classifiers(tmp: Path, monkeypatch) -> None:
    """The shipped pattern CNNs when the checkout has them; else untrained ones of the same format in ``tmp``
    (the stage is tested here, not the classifier's accuracy)."""
    from attnpatterns.classifier.card import Card, default_path, save
    from attnpatterns.classifier.labels import LABELS
    from attnpatterns.classifier.model import PatternCNN, Preprocess

    if all(default_path(k).is_file() for k in ("raw", "normed")):
        return
    import torch

    monkeypatch.setenv("ATTN_CLASSIFIER_DIR", str(tmp))
    for kind in ("raw", "normed"):
        torch.manual_seed(0)
        save(
            default_path(kind),
            PatternCNN(len(LABELS)).eval(),
            Card(kind=kind, labels=list(LABELS), preprocess=Preprocess().to_dict(), min_tokens=4),
        )


TINY = dict(epochs=1, batch_size=8, max_length=32, classify_examples=6, examples_per_type=2, magnitude_max_steps=3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from attnpatterns.run.pipeline import RunConfig, run_pipeline

    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("pipeline")
    ensure_classifiers(tmp / "clf", mp)
    glue = write_glue_mrpc(tmp / "glue")
    model = write_tiny_model(tmp / "tiny-bert")
    cfg = RunConfig(
        out=tmp / "run",
        profile="quick",
        model=str(model),
        tasks=["MRPC"],
        seeds=[1, 2],
        data_dir=str(glue),
        show_progress=False,
        overrides=TINY,
    )
    res = run_pipeline(cfg)
    yield cfg, res, tmp
    mp.undo()


@pytest.mark.slow
def test_every_stage_runs_and_the_report_has_every_section(tiny_run):
    from attnpatterns.run.pipeline import STAGES

    cfg, res, _ = tiny_run
    run = cfg.out
    assert list(res.stages) == list(STAGES)
    for name, st in res.stages.items():
        assert st.ran and not st.skipped, name
    for seed in (1, 2):
        sd = run / "MRPC" / f"seed_{seed}"
        for f in (
            "finetuned/metrics.json",
            "structured/summary.json",
            "structured/mask.json",
            "magnitude/summary.json",
            "magnitude/mask.safetensors",
        ):
            assert (sd / f).is_file(), f
        for method in ("structured", "magnitude", "super"):
            for sub in ("good", "random", "bad"):
                for setting in ("pruned", "retrained"):
                    assert (sd / "subnetworks" / method / sub / f"{setting}.json").is_file()
        heads = json.loads((run / "classify" / "MRPC" / f"seed_{seed}" / "heads.json").read_text())
        assert heads["n_examples"] == TINY["classify_examples"]
        # every map of every head classified once per kind
        import numpy as np

        for kind in ("raw", "normed"):
            c = np.asarray(heads["counts"][kind])
            assert c.shape == (2, 4, 5) and (c.sum(axis=2) == TINY["classify_examples"]).all()
    assert (run / "MRPC" / "super" / "super-survivors.json").is_file()
    dist = json.loads((run / "classify" / "MRPC" / "distribution.json").read_text())
    for kind in ("raw", "normed"):
        k = dist[kind]
        assert [a + b for a, b in zip(k["super"]["counts"], k["other"]["counts"])] == k["all"]["counts"]
        assert sum(k["all"]["counts"]) == 2 * 8 * TINY["classify_examples"]  # seeds x heads x examples
        # 95% intervals (bootstrap over seeds, then examples) around every share
        for g in ("all", "super", "other"):
            if sum(k[g]["counts"]) == 0:
                continue
            for f, lo, hi in zip(k[g]["fractions"], k[g]["ci_low"], k[g]["ci_high"]):
                assert 0.0 <= lo <= f + 1e-9 and f <= hi + 1e-9 and hi <= 1.0
    for seed in (1, 2):  # every map's type is kept, and it sums to the per-head counts
        heads = json.loads((run / "classify" / "MRPC" / f"seed_{seed}" / "heads.json").read_text())
        for kind in ("raw", "normed"):
            lab = np.asarray(heads["labels"][kind])
            assert lab.shape == (TINY["classify_examples"], 2, 4)
            per_head = np.stack([(lab == t).sum(axis=0) for t in range(5)], axis=-1)
            assert (per_head == np.asarray(heads["counts"][kind])).all()
    html = (run / "report" / "index.html").read_text()
    for sec in (
        "findings",
        "about",
        "finetune",
        "patterns",
        "survival",
        "importance",
        "shared",
        "subnetworks",
        "examples",
    ):
        assert f'id="{sec}"' in html
    assert "Missing:" not in html, [l for l in html.splitlines() if "Missing:" in l]
    md = (run / "report" / "report.md").read_text()
    assert "Missing:" not in md and md.count("![") >= 9
    # the report says what it is: a smoke run, its deviations from the study, the seeds behind each table
    assert "**profile**: quick: a smoke run of every stage, not a result" in md
    assert "This is a smoke run" in md and "epochs 1 (the study: 3)" in md
    assert "| subnetworks (pruned) | 2 |" in md and "| subnetworks (re-fine-tuned) | 2 |" in md
    assert "seeds per task: MRPC 2" in md
    # and its findings, one verdict per (finding, task) computed from its own numbers
    assert md.count("| s-pruning masks vary over seeds") == 1
    assert md.count("good subnetworks re-fine-tune better than random and bad | MRPC |") == 3
    for stem in (
        "patterns-raw",
        "patterns-normed",
        "survival-MRPC-structured",
        "survival-MRPC-magnitude",
        "importance-MRPC-structured",
        "importance-MRPC-magnitude",
        "shared-heads",
        "examples-raw",
        "examples-normed",
    ):
        assert (run / "report" / f"{stem}.png").is_file() and (run / "report" / f"{stem}.svg").is_file(), stem
    stamps = list((run / ".stages").rglob("*.json"))
    assert len(stamps) == sum(len(s.ran) for s in res.stages.values())


def test_report_shows_the_contrast_under_each_annotators_classifier(tiny_run, tmp_path):
    """classify/TASK/annotators/<variant>.json (results/minilm/patterns_by_annotator.py) -> a table in the report."""
    import shutil

    from attnpatterns.report.build import build_report

    cfg, _, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    dist = json.loads((run / "classify" / "MRPC" / "distribution.json").read_text())
    (run / "classify" / "MRPC" / "annotators").mkdir()
    for variant, who in (("consensus", "consensus"), ("annotator-A", "ann-a")):
        d = dict(dist, labels_from={"raw": who, "normed": who})
        (run / "classify" / "MRPC" / "annotators" / f"{variant}.json").write_text(json.dumps(d))
    build_report(run, out_dir=tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "all heads / super-survivors under each annotator's classifier" in md
    assert "| raw | consensus |" in md and "| normed | ann-a |" in md


def test_rerunning_a_finished_run_does_no_work(tiny_run):
    from attnpatterns.run.pipeline import run_pipeline

    cfg, first, _ = tiny_run
    before = {p: p.stat().st_mtime_ns for p in cfg.out.rglob("*") if p.is_file() and p.name != "config.json"}
    res = run_pipeline(cfg)
    assert res.ran == 0
    for name, st in res.stages.items():
        assert not st.ran and not st.adopted and len(st.skipped) == len(first.stages[name].ran), name
    after = {p: p.stat().st_mtime_ns for p in cfg.out.rglob("*") if p.is_file() and p.name != "config.json"}
    assert after == before  # nothing rewritten


def test_a_killed_saves_temporary_folder_is_not_an_input(tiny_run):
    """A save killed mid-write leaves a hidden .save.* folder with half-written files beside the model (the next save
    removes it); no stamp or report input reads it, so a rerun does no work."""
    import shutil

    from attnpatterns.run.pipeline import run_pipeline

    cfg, _, _ = tiny_run
    seed = cfg.out / "MRPC" / "seed_1"
    retrained = sorted((seed / "subnetworks").rglob("retrained.json"))
    assert retrained, "the tiny run re-fine-tunes subnetworks"
    leftovers = [seed / "finetuned" / ".save.killed", retrained[0].with_suffix("") / ".save.killed"]
    try:
        for d in leftovers:
            d.mkdir(parents=True)
            (d / "config.json").write_text('{"hidden_size": ')  # cut off mid-write
            (d / "model.safetensors").write_bytes(b"\x00" * 7)
        res = run_pipeline(cfg)
        assert res.ran == 0 and not any(s.adopted for s in res.stages.values())
    finally:
        for d in leftovers:
            shutil.rmtree(d, ignore_errors=True)


def test_the_same_data_through_a_linked_or_moved_folder_reruns_nothing(tiny_run, tmp_path):
    """Stamps compare inputs by content: GLUE files reached through a symlink, or copied elsewhere, are the same
    inputs; only the recorded paths change."""
    import shutil
    from dataclasses import replace

    from attnpatterns.run.pipeline import run_pipeline

    cfg, _, _ = tiny_run
    link = tmp_path / "glue-link"
    link.symlink_to(Path(cfg.data_dir), target_is_directory=True)
    moved = tmp_path / "elsewhere" / "glue_data"
    shutil.copytree(cfg.data_dir, moved)
    for where in (link, moved):
        res = run_pipeline(replace(cfg, data_dir=str(where)))
        assert res.ran == 0 and not any(s.adopted for s in res.stages.values()), where
    res = run_pipeline(cfg)
    assert res.ran == 0


def test_stamps_with_path_keyed_digests_are_migrated_not_redone(tiny_run):
    """A run folder stamped before content digests (the digest hashed the input paths too) retrains nothing: the
    stamp is recomputed from what it recorded and rewritten once."""
    import hashlib

    from attnpatterns.run.pipeline import run_pipeline

    cfg, _, _ = tiny_run
    stamps = sorted((cfg.out / ".stages").rglob("*.json"))
    for sp in stamps:
        s = json.loads(sp.read_text())
        s["digest"] = hashlib.sha256(
            json.dumps({"config": s["config"], "inputs": s["inputs"]}, sort_keys=True, default=str).encode()
        ).hexdigest()
        sp.write_text(json.dumps(s))
    res = run_pipeline(cfg)
    assert res.ran == 0 and not any(s.adopted for s in res.stages.values())
    from attnpatterns.run.pipeline import digest

    for sp in stamps:
        s = json.loads(sp.read_text())
        assert s["digest"] == digest(s["config"], s["inputs"]), sp


def test_a_changed_setting_reruns_only_what_depends_on_it(tiny_run):
    from attnpatterns.run.pipeline import RunConfig, run_pipeline

    cfg, _, _ = tiny_run
    changed = RunConfig(
        out=cfg.out,
        profile="quick",
        model=cfg.model,
        tasks=["MRPC"],
        seeds=[1, 2],
        data_dir=cfg.data_dir,
        show_progress=False,
        overrides=TINY | {"classify_examples": 5},
        stages=["classify", "report"],
    )
    res = run_pipeline(changed)
    assert list(res.stages) == ["classify", "report"]
    # the per-seed classify units and, through their outputs, the pooled distribution and the report
    assert sorted(res.stages["classify"].ran) == ["MRPC/distribution", "MRPC/seed_1", "MRPC/seed_2"]
    assert res.stages["report"].ran == ["report"]
    heads = json.loads((cfg.out / "classify" / "MRPC" / "seed_1" / "heads.json").read_text())
    assert heads["n_examples"] == 5
    # and the earlier stages were not touched: a full run with the new setting only skips them
    full = RunConfig(
        out=cfg.out,
        profile="quick",
        model=cfg.model,
        tasks=["MRPC"],
        seeds=[1, 2],
        data_dir=cfg.data_dir,
        show_progress=False,
        overrides=TINY | {"classify_examples": 5},
    )
    res2 = run_pipeline(full)
    assert res2.ran == 0


def test_outputs_made_by_hand_are_adopted_not_redone(tiny_run, tmp_path):
    import shutil

    from attnpatterns.run.pipeline import RunConfig, run_pipeline

    cfg, _, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(cfg.out, copy)
    shutil.rmtree(copy / ".stages")  # as if made with attn finetune / prune / subnetworks by hand
    c2 = RunConfig(
        out=copy,
        profile="quick",
        model=cfg.model,
        tasks=["MRPC"],
        seeds=[1, 2],
        data_dir=cfg.data_dir,
        show_progress=False,
        overrides=TINY | {"classify_examples": 5},
    )
    res = run_pipeline(c2)
    assert res.ran == 0
    assert len(res.stages["finetune"].adopted) == 2


def test_a_super_set_or_distribution_found_from_other_seeds_is_redone_not_adopted(tiny_run, tmp_path, caplog):
    """Adoption takes outputs made by hand as they are, but not a super-survivor set or a pattern distribution made
    from other seeds than the run's: those are redone (the distribution's per-seed classifications are adopted)."""
    import shutil
    from dataclasses import replace

    from attnpatterns.run.pipeline import run_pipeline

    cfg, _, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(cfg.out, copy)
    shutil.rmtree(copy / ".stages")
    sup, dist = copy / "MRPC" / "super" / "super-survivors.json", copy / "classify" / "MRPC" / "distribution.json"
    for f in (sup, dist):  # as if made over seeds 1 and 3 by an earlier run
        obj = json.loads(f.read_text())
        assert obj["seeds"] == [1, 2]
        f.write_text(json.dumps(obj | {"seeds": [1, 3]}))
    c2 = replace(cfg, out=copy, overrides=TINY, stages=["survivors", "classify"])
    with caplog.at_level("INFO", logger="attnpatterns"):
        res = run_pipeline(c2)
    assert res.stages["survivors"].ran == ["MRPC"] and not res.stages["survivors"].adopted
    assert res.stages["classify"].ran == ["MRPC/distribution"]
    assert sorted(res.stages["classify"].adopted) == ["MRPC/seed_1", "MRPC/seed_2"]
    assert json.loads(sup.read_text())["seeds"] == [1, 2] and json.loads(dist.read_text())["seeds"] == [1, 2]
    assert "made from seeds [1, 3], not [1, 2]; redoing it" in caplog.text
    again = run_pipeline(c2)
    assert again.ran == 0 and not any(s.adopted for s in again.stages.values())


def test_a_run_over_some_tasks_or_seeds_keeps_the_folders_profile_record(tiny_run, tmp_path):
    """config.json records the run folder's profile: a later `attn run` over a subset of its seeds (same profile,
    model and settings) adds to its tasks and seeds instead of narrowing them; another profile replaces it."""
    import shutil
    from dataclasses import replace

    from attnpatterns.run.pipeline import run_pipeline

    cfg, _, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(cfg.out, copy)
    run_pipeline(replace(cfg, out=copy, stages=["survivors"]))  # the record of cfg (other tests change settings)
    res = run_pipeline(replace(cfg, out=copy, seeds=[2], stages=["survivors"]))
    assert res.ran == 0
    rec = json.loads((copy / "config.json").read_text())
    assert rec["tasks"] == ["MRPC"] and rec["seeds"] == [1, 2]
    run_pipeline(replace(cfg, out=copy, seeds=[2], stages=["survivors"], overrides=TINY | {"classify_examples": 5}))
    assert json.loads((copy / "config.json").read_text())["seeds"] == [2]  # other settings: this run's record


def test_cli_run_rejects_bad_input(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    r = CliRunner().invoke(app, ["run", "--profile", "huge", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "unknown profile 'huge'" in r.output
    r = CliRunner().invoke(app, ["run", "--stages", "finetune,dance", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "unknown stage(s) dance" in r.output
    r = CliRunner().invoke(app, ["run", "--tasks", "MRPC,NOPE", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "unknown task 'NOPE'" in r.output
    empty = tmp_path / "glue"
    empty.mkdir()
    r = CliRunner().invoke(app, ["run", "--data-dir", str(empty), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no MRPC train data" in r.output and "ATTN_GLUE_DIR" in r.output
    r = CliRunner().invoke(app, ["report", "--run", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such run folder" in r.output


def test_no_data_anywhere_says_how_to_get_it(tmp_path, monkeypatch):
    from attnpatterns.errors import UserError
    from attnpatterns.run.pipeline import RunConfig, run_pipeline

    monkeypatch.delenv("ATTN_GLUE_DIR", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # the hub unreachable, as on a machine without network
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as e:
        run_pipeline(RunConfig(out=tmp_path / "r", show_progress=False))
    msg = str(e.value)
    assert "--data-dir" in msg and "ATTN_GLUE_DIR" in msg and "glue_data" in msg
    assert not (tmp_path / "r").exists()  # failed before any work


def test_another_model_in_the_same_folder_is_refused(tiny_run):
    from attnpatterns.errors import UserError
    from attnpatterns.run.pipeline import RunConfig, run_pipeline

    cfg, _, _ = tiny_run
    with pytest.raises(UserError, match="holds a run of model"):
        run_pipeline(RunConfig(out=cfg.out, model=None, data_dir=cfg.data_dir, show_progress=False))


def test_run_layout_names_every_file_of_a_finished_run(tiny_run):
    """RunLayout round trip: the tasks and seeds it finds are the run's, every stage's outputs are where it says,
    and every file of the run folder lies under a folder it names."""
    from attnpatterns.run.layout import PRUNE_METHODS, SUBNET_METHODS, RunLayout

    cfg, _, _ = tiny_run
    lay = RunLayout(cfg.out)
    assert {t: list(s) for t, s in lay.tasks().items()} == {"MRPC": [1, 2]}
    owned = [
        lay.config,
        lay.report_dir,
        lay.root / ".stages",
        lay.super_dir("MRPC"),
        lay.classify_root,
        lay.majority("MRPC"),
    ]
    for seed in (1, 2):
        sl = lay.seed("MRPC", seed)
        assert sl.dir == lay.seed_dir("MRPC", seed) == cfg.out / "MRPC" / f"seed_{seed}"
        assert (sl.finetuned / "metrics.json").is_file()
        for method in PRUNE_METHODS:
            assert sl.mask(method).is_file() and sl.summary(method).is_file()
        for method in SUBNET_METHODS:
            assert (sl.subnet(method, "good") / "pruned.json").is_file(), method
        assert sl.full.is_file() and sl.majority.is_file()
        assert (lay.classify_dir("MRPC", seed) / "heads.json").is_file()
        owned += [sl.finetuned, sl.structured, sl.magnitude, sl.subnetworks]
    for subnet in ("good", "random", "bad"):
        assert lay.super_set("MRPC", subnet).is_file()
    assert (lay.classify_dir("MRPC") / "distribution.json").is_file() and (lay.report_dir / "index.html").is_file()
    assert lay.stamp("finetune", "MRPC/seed_1").is_file()
    stray = [p for p in cfg.out.rglob("*") if p.is_file() and not any(p == o or o in p.parents for o in owned)]
    assert not stray, stray


def test_paper_comparison_reads_both_sides_and_fails_loudly_on_a_missing_cell(tiny_run, tmp_path):
    """attn paper: the authors' numbers beside ours; a run short of the study's cells is an error naming them."""
    import shutil

    from attnpatterns.errors import UserError
    from attnpatterns.report.paper import compare_with_paper, to_markdown

    AUTHORS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "bert-experiments"

    cfg, _, _ = tiny_run
    with pytest.raises(UserError, match=r"cell\(s\) of the comparison are missing, first: stability MRPC: 2 of 5"):
        compare_with_paper(cfg.out, AUTHORS)
    c = compare_with_paper(cfg.out, AUTHORS, allow_missing=True)
    md = to_markdown(c)
    assert c.missing == ["stability MRPC: 2 of 5 seeds"]
    # the authors' MRPC cells as attn table --reference reads them, ours with their seed counts
    assert "| MRPC | 2 |" in md and "/ 8 | 68.4 ± 6.9 / 144 |" in md
    assert "| m-pruning good retrained | " in md and "(n=2) | 0.840 ± 0.009 |" in md
    assert "| MRPC | raw heterogeneous |" in md and "not in the authors' files" in md
    # a stage that has not run: every one of its cells is named, none is filled in
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    for sd in (run / "MRPC").glob("seed_*"):
        shutil.rmtree(sd / "subnetworks")
    (run / "classify" / "MRPC" / "distribution.json").unlink()
    c2 = compare_with_paper(run, AUTHORS, allow_missing=True)
    assert sum(m.startswith("subnetworks MRPC") for m in c2.missing) >= 18
    assert "patterns MRPC: no" in " ".join(c2.missing)
    with pytest.raises(UserError, match="not the authors' folder"):
        compare_with_paper(run, tmp_path)
