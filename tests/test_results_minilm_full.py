"""The committed full-size study (results/minilm-full): its report is what its committed files make, and its
restore script puts back what the later stages need without pretending that weights are there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "results" / "minilm-full"

# the scripts run with this interpreter's folder first on PATH (collect.sh calls python3)
PATH = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])}

pytestmark = pytest.mark.skipif(not (FULL / "masks").is_dir(), reason="results/minilm-full is not in this checkout")


def _without_date(md: str) -> str:
    return re.sub(r"^- \*\*written\*\*: .*$", "", md, flags=re.M)


def test_the_committed_report_is_what_the_committed_files_make(tmp_path, monkeypatch):
    from attnpatterns.report.build import build_report

    monkeypatch.chdir(ROOT)  # the report names its run folder as given: results/minilm-full/masks
    res = build_report(Path("results/minilm-full/masks"), tmp_path / "report", title="minilm-full")
    committed = (FULL / "report" / "report.md").read_text()
    assert _without_date(res.markdown.read_text()) == _without_date(committed)
    assert committed.startswith("# attnpatterns report: minilm-full")
    # the sections a folder without weights can still fill, m-pruning survival included
    names = {p.name for p in res.figures}
    assert {"survival-MRPC-magnitude.png", "examples-raw.png", "patterns-normed.png"} <= names


def test_the_committed_grid_is_complete_and_its_paper_table_is_what_its_files_make(monkeypatch):
    """Every cell of the five-task grid beside the paper (no --allow-missing): losing one record fails here."""
    from attnpatterns.report.paper import compare_with_paper, to_markdown

    monkeypatch.chdir(ROOT)  # the table names its run folder and the authors' folder as given
    reference = Path("../shared/reference/bert-experiments")
    if not reference.is_dir():
        pytest.skip(f"the authors' files ({reference}) are not beside this checkout")
    comparison = compare_with_paper(Path("results/minilm-full/masks"), reference)
    assert comparison.tasks == ["CoLA", "MRPC", "RTE", "SST-2", "STS-B"]
    md = to_markdown(comparison)
    assert md == (FULL / "paper.md").read_text()
    # every re-fine-tuned and pruned subnetwork cell over the study's three seeds, every stability row over five
    assert set(re.findall(r"\(n=(\d+)\)", md)) == {"3"}
    assert re.findall(r"^\| (?:CoLA|MRPC|RTE|SST-2|STS-B) \| (\d+) \|", md, flags=re.M) == ["5"] * 5


def test_restore_with_records_brings_back_the_fine_tuning_records_and_no_weights(tmp_path):
    run = tmp_path / "run"
    subprocess.run(
        ["bash", "results/minilm-full/restore.sh"],
        cwd=ROOT,
        env={"RUN": str(run), "RECORDS": "1", **PATH},
        check=True,
        capture_output=True,
    )
    seeds_with_config = sorted(p.parent.parent for p in (FULL / "masks").glob("*/seed_*/finetuned/config.json"))
    assert seeds_with_config, "no committed fine-tuned config.json"
    for sd in seeds_with_config:
        ft = run / sd.parent.name / sd.name / "finetuned"
        assert sorted(p.name for p in ft.iterdir()) == ["config.json", "metrics.json", "run.json"], ft
        assert json.loads((ft / "metrics.json").read_text()) == json.loads(
            (sd / "finetuned" / "metrics.json").read_text()
        )
    # a seed whose config.json is not committed gets no records (the subnetworks stage could not read its shape)
    for sd in (FULL / "masks").glob("*/seed_*"):
        if not (sd / "finetuned" / "config.json").is_file():
            assert not (run / sd.parent.name / sd.name / "finetuned").exists(), sd
    # m-pruning comes back only with its committed weight mask, unpacked (else it is rebuilt)
    for md in run.glob("*/seed_*/magnitude"):
        packed = FULL / "masks" / md.relative_to(run) / "mask.safetensors.xz"
        assert packed.is_file() and (md / "mask.safetensors").is_file(), md
    assert not list(run.rglob("*.xz"))
    # without RECORDS nothing of finetuned/ comes back (run_pruning.sh re-fine-tunes)
    bare = tmp_path / "bare"
    subprocess.run(
        ["bash", "results/minilm-full/restore.sh"],
        cwd=ROOT,
        env={"RUN": str(bare), **PATH},
        check=True,
        capture_output=True,
    )
    assert not list(bare.glob("*/seed_*/finetuned")) and list(bare.glob("*/seed_*/structured/mask.json"))


def test_collect_keeps_reproduced_records_and_replaces_a_differing_one(tmp_path):
    env = dict(PATH)
    run, dest = tmp_path / "run", tmp_path / "masks"
    subprocess.run(
        ["bash", "results/minilm-full/restore.sh"],
        cwd=ROOT,
        env={**env, "RUN": str(run), "RECORDS": "1"},
        check=True,
        capture_output=True,
    )
    seed = sorted(run.glob("*/seed_*/finetuned/metrics.json"))[0].parent.parent
    rel = seed.relative_to(run)
    shutil.copytree(FULL / "masks" / rel.parts[0], dest / rel.parts[0])
    committed = json.loads((dest / rel / "finetuned" / "metrics.json").read_text())
    # the same result with other timings (a rebuild): the committed record stays
    rerun = {**committed, "train_seconds": 1.0}
    (seed / "finetuned" / "metrics.json").write_text(json.dumps(rerun))
    out = subprocess.run(
        ["bash", "results/minilm/collect.sh", str(run), str(dest)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and "warning" not in out.stderr, out.stderr
    assert json.loads((dest / rel / "finetuned" / "metrics.json").read_text()) == committed
    # another result: copied over it, and said
    other = {**committed, "metrics": {k: 0.0 for k in committed["metrics"]}}
    (seed / "finetuned" / "metrics.json").write_text(json.dumps(other))
    out = subprocess.run(
        ["bash", "results/minilm/collect.sh", str(run), str(dest)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and "differs from the committed one" in out.stderr
    assert json.loads((dest / rel / "finetuned" / "metrics.json").read_text()) == other


def test_collect_subnetworks_keeps_the_records_and_leaves_the_models_behind(tmp_path):
    """A re-fine-tuned super-survivor subnetwork's folder holds a model (tokenizer, config, weights) beside its
    records; only the records, the head sets and the baselines (each seed's full model and majority class, the task's
    majority class) are copied."""
    run, dest = tmp_path / "run", tmp_path / "out"
    files = {
        "MRPC/majority.json": "{}",
        "MRPC/super/super-survivors.json": "{}",
        "MRPC/super/random.json": "{}",
        # the seed's unmasked model and majority class on the subnetworks' dev examples (the table's baselines)
        "MRPC/seed_1/subnetworks/full.json": "{}",
        "MRPC/seed_1/subnetworks/majority.json": "{}",
        "MRPC/seed_1/subnetworks/super/good/retrained.json": "{}",
        "MRPC/seed_1/subnetworks/super/good/retrained/run.json": "{}",
        "MRPC/seed_1/subnetworks/super/good/retrained/metrics.json": "{}",
        "MRPC/seed_1/subnetworks/super/good/retrained/config.json": "{}",
        "MRPC/seed_1/subnetworks/super/good/retrained/tokenizer.json": "{}",
        "MRPC/seed_1/subnetworks/super/good/retrained/model.safetensors": "",
        "MRPC/seed_1/subnetworks/structured/good/mask.json": "{}",
        # a re-fine-tuning still running: its run.json waits for its metrics
        "MRPC/seed_1/subnetworks/super/bad/retrained/run.json": "{}",
    }
    for rel, text in files.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    subprocess.run(
        ["bash", "results/minilm/collect_subnetworks.sh", str(run), str(dest)],
        cwd=ROOT,
        env=dict(PATH),
        check=True,
        capture_output=True,
    )
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == sorted(
        [
            "MRPC/majority.json",
            "MRPC/super/super-survivors.json",
            "MRPC/super/random.json",
            "MRPC/seed_1/subnetworks/full.json",
            "MRPC/seed_1/subnetworks/majority.json",
            "MRPC/seed_1/subnetworks/super/good/retrained.json",
            "MRPC/seed_1/subnetworks/super/good/retrained/run.json",
            "MRPC/seed_1/subnetworks/super/good/retrained/metrics.json",
            "MRPC/seed_1/subnetworks/structured/good/mask.json",
        ]
    )


def test_weight_masks_packed_by_collect_come_back_whole_with_restore(tmp_path):
    """pack_weight_masks.sh (run by collect.sh) xz-packs each seed's good and bad m-pruning weight masks, rewriting
    only what changed; restore.sh brings a seed's magnitude/ back with its unpacked mask only where one is packed."""
    import torch

    from attnpatterns.io import save_safetensors, write_json

    run, masks = tmp_path / "run", tmp_path / "masks"
    g = torch.Generator().manual_seed(0)
    good = {"bert.encoder.layer.0.attention.self.query.weight": (torch.rand(64, 64, generator=g) < 0.35)}
    bad = {k: ~v for k, v in good.items()}
    sd = run / "SST-2" / "seed_1"
    save_safetensors(sd / "magnitude" / "mask.safetensors", {k: v.to(torch.uint8) for k, v in good.items()})
    save_safetensors(
        sd / "subnetworks" / "magnitude" / "bad" / "mask.safetensors", {k: v.to(torch.uint8) for k, v in bad.items()}
    )
    for name in ("summary.json", "iter_00.json"):
        write_json(sd / "magnitude" / name, {"kept": 1})
    write_json(run / "SST-2" / "seed_2" / "magnitude" / "summary.json", {"kept": 2})  # no weight mask: not packed

    def pack() -> str:
        out = subprocess.run(
            ["bash", "results/minilm-full/pack_weight_masks.sh", str(run), str(masks)],
            cwd=ROOT,
            env=dict(PATH),
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    assert "packed 2 weight mask(s)" in pack()
    packed = sorted(str(p.relative_to(masks)) for p in masks.rglob("*") if p.is_file())
    assert packed == [
        "SST-2/seed_1/magnitude/mask.safetensors.xz",
        "SST-2/seed_1/subnetworks/magnitude/bad/mask.safetensors.xz",
    ]
    assert "packed 0 weight mask(s)" in pack()  # unchanged: left as it is
    save_safetensors(sd / "magnitude" / "mask.safetensors", {k: v.to(torch.uint8) for k, v in bad.items()})
    assert "packed 1 weight mask(s)" in pack()  # the good mask changed (pruning rerun): packed again
    save_safetensors(sd / "magnitude" / "mask.safetensors", {k: v.to(torch.uint8) for k, v in good.items()})
    pack()
    # the rest of a committed seed, as collect.sh leaves it
    shutil.copy(sd / "magnitude" / "summary.json", masks / "SST-2" / "seed_1" / "magnitude" / "summary.json")
    write_json(masks / "SST-2" / "seed_2" / "magnitude" / "summary.json", {"kept": 2})
    write_json(masks / "SST-2" / "seed_2" / "structured" / "mask.json", {"heads": []})

    back = tmp_path / "back"
    subprocess.run(
        ["bash", "results/minilm-full/restore.sh"],
        cwd=ROOT,
        env={"RUN": str(back), "SRC": str(masks), **PATH},
        check=True,
        capture_output=True,
    )
    for rel in ("SST-2/seed_1/magnitude/mask.safetensors", "SST-2/seed_1/subnetworks/magnitude/bad/mask.safetensors"):
        assert (back / rel).read_bytes() == (run / rel).read_bytes(), rel
    assert (back / "SST-2/seed_1/magnitude/summary.json").is_file()
    assert not (back / "SST-2/seed_2/magnitude").exists()  # no packed mask: m-pruning is rebuilt
    assert (back / "SST-2/seed_2/structured/mask.json").is_file()
    assert not list(back.rglob("*.xz")) and not list(back.rglob("*.tmp"))
