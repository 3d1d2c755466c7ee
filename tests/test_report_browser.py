"""The report page in a real browser: headless Chromium renders it offline and the screenshot shows the plots.

The run folder is written by hand here, file by file as docs/CONTRACTS.md lays it out (two seeds of a 2-layer x
4-head model: fine-tuned metrics, s- and m-pruning with their iterations, super-survivors, subnetwork results,
classified maps), so the test checks the report against the contract, independent of the pipeline.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

TYPES = ["vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous"]
L, H, D, HID, INTER = 2, 4, 8, 32, 64


def make_run(root: Path, seeds=(1, 2), task: str = "MRPC") -> Path:
    """A finished run folder with every file the report reads, made of small random arrays."""
    from safetensors.numpy import save_file

    from attnpatterns.io import save_npz, write_json
    from attnpatterns.prune.masks import HeadSet, write_head_set
    from attnpatterns.run.pipeline import write_distribution

    rng = np.random.default_rng(0)
    head_masks = {}
    for seed in seeds:
        sd = root / task / f"seed_{seed}"
        write_json(
            sd / "finetuned" / "config.json",
            {"model_type": "bert", "num_hidden_layers": L, "num_attention_heads": H, "hidden_size": HID},
        )
        write_json(
            sd / "finetuned" / "metrics.json",
            {
                "task": task,
                "seed": seed,
                "model": "tiny",
                "metrics": {"acc": 0.7},
                "score": 0.7,
                "main_metric": "acc",
                "train_examples": 40,
                "dev_examples": 20,
                "train_seconds": 1.0,
            },
        )
        hm = (rng.random((L, H)) > 0.3).astype(np.float32)
        hm[0, 0] = 1
        head_masks[seed] = hm
        st = sd / "structured"
        write_head_set(
            st / "mask.json", HeadSet.from_arrays(hm, np.ones(L, np.float32), model="tiny", task=task, seed=seed)
        )
        np.save(st / "head_mask.npy", hm)
        np.save(st / "mlp_mask.npy", np.ones(L, np.float32))
        for k in range(3):
            write_json(
                st / f"iter_{k:02d}.json",
                {
                    "head_mask": np.ones((L, H)).tolist(),
                    "mlp_mask": [1.0] * L,
                    "score": 0.7 - 0.02 * k,
                    "head_importance": rng.random((L, H)).tolist(),
                    "mlp_importance": rng.random(L).tolist(),
                },
            )
        write_json(st / "summary.json", {"iterations": 3})
        mg = sd / "magnitude"
        masks = {}
        for i in range(L):
            for name, shape in (
                ("attention.self.query", (HID, HID)),
                ("attention.self.key", (HID, HID)),
                ("attention.self.value", (HID, HID)),
                ("attention.output.dense", (HID, HID)),
                ("intermediate.dense", (INTER, HID)),
                ("output.dense", (HID, INTER)),
            ):
                masks[f"bert.encoder.layer.{i}.{name}.weight"] = (rng.random(shape) > 0.4).astype(np.uint8)
        save_file(masks, str(mg.mkdir(parents=True) or mg / "mask.safetensors"))
        for k in range(3):
            write_json(mg / f"iter_{k:02d}.json", {"kept_fraction": 0.9**k, "score": 0.7 - 0.01 * k})
        write_json(mg / "summary.json", {"threshold": 0.63})
        for method in ("structured", "magnitude", "super"):
            for sub in ("good", "random", "bad"):
                for setting in ("pruned", "retrained"):
                    write_json(
                        sd / "subnetworks" / method / sub / f"{setting}.json",
                        {
                            "metrics": {"acc": float(rng.uniform(0.5, 0.7)), "f1": 0.5},
                            "score": 0.6,
                            "size": {"kept_fraction": 0.5},
                        },
                    )
        cd = root / "classify" / task / f"seed_{seed}"
        counts = {k: rng.integers(0, 20, size=(L, H, 5)).tolist() for k in ("raw", "normed")}
        write_json(
            cd / "heads.json",
            {
                "task": task,
                "seed": seed,
                "num_layers": L,
                "num_heads": H,
                "n_examples": 20,
                "types": TYPES,
                "counts": counts,
            },
        )
        arrays, caps = {}, {}
        for kind in ("raw", "normed"):
            for t in TYPES[:4]:
                for i in range(2):
                    m = rng.random((9, 9)).astype(np.float32)
                    if t == "vertical":
                        m[:, 0] += 3
                    if t == "diagonal":
                        m += 3 * np.eye(9, k=1, dtype=np.float32)
                    arrays[f"{kind}__{t}__{i}"] = m
                    caps[f"{kind}__{t}__{i}"] = f"L0H{i}"
        save_npz(cd / "examples.npz", **arrays)
        write_json(cd / "examples.json", caps)
    sup = np.all([head_masks[s] > 0 for s in seeds], axis=0)
    write_head_set(
        root / task / "super" / "super-survivors.json",
        HeadSet.from_arrays(sup.astype(np.float32), np.ones(L, np.float32), model="tiny", task=task, seeds=list(seeds)),
    )
    write_json(root / task / "majority.json", {"metrics": {"acc": 0.68, "f1": 0.81}, "score": 0.68})
    write_distribution(
        [root / "classify" / task / f"seed_{s}" / "heads.json" for s in seeds],
        root / task / "super" / "super-survivors.json",
        root / "classify" / task / "distribution.json",
        task,
    )
    return root


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def screenshot(page: Path, out: Path, tmp: Path, width: int = 1200, height: int = 2400) -> np.ndarray:
    exe = _chromium()
    if exe is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chrome-profile'}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        f"--screenshot={out}",
        page.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    from matplotlib.image import imread

    return imread(str(out))[..., :3]  # (h, w, 3) floats in [0, 1]


def colourful_share(px: np.ndarray) -> float:
    """Share of pixels whose channels differ by more than 0.25 (plots; the page's text and boxes are near-grey)."""
    return float(((px.max(axis=2) - px.min(axis=2)) > 0.25).mean())


@pytest.mark.browser
def test_chromium_screenshot_of_the_report_shows_the_plots(tmp_path):
    from attnpatterns.report.build import build_report

    run = make_run(tmp_path / "run")
    res = build_report(run)
    assert not res.missing, res.missing  # every section has its inputs
    html = res.html.read_text()
    assert html.count("data:image/png;base64,") >= 8

    # tall enough to reach past the opening text sections (findings, what this run is) into the plots
    shot = screenshot(res.html, tmp_path / "shot.png", tmp_path, height=4800)
    assert shot.shape[0] >= 1000 and shot.shape[1] >= 1000
    assert shot.std() > 0.05  # not a blank page
    with_plots = colourful_share(shot)

    # the same page with its images taken out: the colour came from the plots
    bare = res.html.with_name("bare.html")
    import re

    bare.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', html))
    without = colourful_share(screenshot(bare, tmp_path / "bare.png", tmp_path, height=4800))
    # measured: about 0.05 with the plots, 0.004 without (the links and the yellow "missing" boxes)
    assert with_plots > 0.02 and with_plots > 5 * max(without, 1e-4), (with_plots, without)


def test_report_of_a_complete_run_has_every_section_and_figure(tmp_path):
    from attnpatterns.report.build import build_report

    run = make_run(tmp_path / "run")
    res = build_report(run)
    assert not res.missing
    names = sorted(p.name for p in res.figures)
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
        assert f"{stem}.png" in names and f"{stem}.svg" in names, stem
        assert (res.out_dir / f"{stem}.png").stat().st_size > 1000
    md = res.markdown.read_text()
    assert "![" in md and "patterns-raw.png" in md and "subnetworks-table" in md
    assert "chi2 super vs other" in md
    # a second build with a section's input gone: that section says so, its stale plot is removed
    shutil.rmtree(run / "classify")
    res2 = build_report(run)
    assert "patterns" in res2.missing and "examples" in res2.missing
    assert not (res2.out_dir / "patterns-raw.png").exists()


def test_report_of_committed_results_reads_the_records_instead_of_weights(tmp_path):
    """A folder of committed results (results/minilm-full/masks) keeps no weights: no fine-tuned config.json, no
    m-pruning mask, one seed's classify files. The report takes m-pruning survival from each summary's per-head
    record, the pattern seeds from distribution.json, and its name from ``title``."""
    from attnpatterns.io import read_json, write_json
    from attnpatterns.prune.head_weights import head_weight_survival
    from attnpatterns.prune.masks import read_weight_masks
    from attnpatterns.report.build import build_report

    run = make_run(tmp_path / "run")
    per_seed = []
    for seed in (1, 2):
        sd = run / "MRPC" / f"seed_{seed}"
        masks = {k: v.numpy() for k, v in read_weight_masks(sd / "magnitude" / "mask.safetensors")[0].items()}
        rec = head_weight_survival(masks, L, H)
        per_seed.append(rec)
        summ = read_json(sd / "magnitude" / "summary.json")
        write_json(sd / "magnitude" / "summary.json", {**summ, "head_weight_kept": rec.tolist()})
        (sd / "magnitude" / "mask.safetensors").unlink()
        (sd / "finetuned" / "config.json").unlink()
    (run / "classify" / "MRPC" / "seed_2" / "heads.json").unlink()

    res = build_report(run, tmp_path / "rep", title="minilm-full")
    assert "survival" not in res.missing, res.missing
    assert (res.out_dir / "survival-MRPC-magnitude.png").is_file()
    md = res.markdown.read_text()
    assert md.startswith("# attnpatterns report: minilm-full")
    assert "pattern distributions: MRPC 2 seeds (the study: 5)" in md  # the distribution's seeds, not heads.json's

    from attnpatterns.report.context import ReportContext
    from attnpatterns.report.html import Section
    from attnpatterns.report.sections_pruning import _magnitude_survival

    seeds = {s: run / "MRPC" / f"seed_{s}" for s in (1, 2)}
    ctx = ReportContext(run_dir=run, out=tmp_path / "o", tasks={"MRPC": seeds}, cfg={}, model_cfg=None)
    sec = Section("survival", "s")
    assert np.allclose(_magnitude_survival(ctx, "MRPC", seeds, sec), np.mean(per_seed, axis=0))
    # a summary without the record, and no mask or config to compute it: said, not guessed
    summ = read_json(seeds[2] / "magnitude" / "summary.json")
    del summ["head_weight_kept"]
    write_json(seeds[2] / "magnitude" / "summary.json", summ)
    sec = Section("survival", "s")
    assert np.allclose(_magnitude_survival(ctx, "MRPC", seeds, sec), per_seed[0])
    assert any("no per-head record" in m for m in sec.missing), sec.missing
