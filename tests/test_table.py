"""The results table: layout, mean and population std over seeds, sizes, the authors' table, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnpatterns.errors import UserError
from attnpatterns.report import reference_table, table_format, tables


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _fake_run(root: Path) -> Path:
    """A run folder with hand-made result files: MRPC with 3 seeds, RTE with 2 (one cell missing)."""
    run = root / "run"
    scores = {"MRPC": {1: 0.80, 2: 0.84, 3: 0.82}, "RTE": {1: 0.60, 2: 0.64}}
    for task, per_seed in scores.items():
        _write(run / task / "majority.json", {"metrics": {"acc": 0.5, "f1": 0.6, "acc_and_f1": 0.55}, "score": 0.5})
        for seed, full in per_seed.items():
            sd = run / task / f"seed_{seed}"
            _write(
                sd / "finetuned" / "metrics.json",
                {"metrics": {"acc": full, "f1": 0.0, "acc_and_f1": 0.0}, "score": full},
            )
            for mi, method in enumerate(tables.METHOD_LABELS):
                for si, subnet in enumerate(tables.SUBNETS):
                    for ti, setting in enumerate(tables.SETTINGS):
                        if (
                            task == "RTE"
                            and seed == 2
                            and (method, subnet, setting) == ("magnitude", "bad", "retrained")
                        ):
                            continue  # not done yet
                        val = full - 0.1 * si + 0.01 * ti - 0.001 * mi
                        size = (
                            {"weights_kept": 40, "weights_total": 100, "kept_fraction": 0.4}
                            if method == "magnitude"
                            else {
                                "heads_kept": 10 + seed,
                                "heads_total": 72,
                                "mlps_kept": 5,
                                "mlps_total": 6,
                                "kept_fraction": 0.5 + 0.01 * seed,
                            }
                        )
                        _write(
                            sd / "subnetworks" / method / subnet / f"{setting}.json",
                            {"metrics": {"acc": val}, "score": val, "size": size},
                        )
    return run


def test_run_table_means_stds_and_layout(tmp_path):
    run = _fake_run(tmp_path)
    t = tables.run_table(run)
    assert t.tasks == ["MRPC", "RTE"]
    frame = table_format.score_frame(t, digits=3)
    assert list(frame.index)[:2] == ["full model", "majority baseline"]
    assert len(frame) == 2 + 3 * 3 * 2
    full = np.array([0.80, 0.84, 0.82])
    assert frame.loc["full model", "MRPC"] == f"{full.mean():.3f} ± {full.std(ddof=0):.3f}"
    assert frame.loc["majority baseline", "RTE"] == "0.500"
    good = full - 0.0 + 0.01 * 1 - 0.001 * 1  # m-pruning good retrained
    assert frame.loc["m-pruning good retrained", "MRPC"] == f"{good.mean():.3f} ± {good.std(ddof=0):.3f}"
    # the missing seed shows as n=1 in that cell only
    assert frame.loc["m-pruning bad retrained", "RTE"].endswith("(n=1)")
    assert "(n=" not in frame.loc["m-pruning bad pruned", "RTE"]
    sizes = table_format.size_frame(t)
    assert sizes.loc["m-pruning good", "MRPC"] == "0.400"
    assert sizes.loc["s-pruning random", "MRPC"].startswith("0.520 (12.0/72 h, 5.0/6 m)")


def test_write_md_csv_tex(tmp_path):
    import pandas as pd

    run = _fake_run(tmp_path)
    paths = table_format.write_tables(tables.run_table(run), tmp_path / "out")
    assert [p.name for p in paths] == ["table.md", "table.csv", "table.tex"]
    md = paths[0].read_text()
    assert "| s-pruning good pruned |" in md and "Subnetwork sizes" in md
    csv = pd.read_csv(paths[1])
    assert list(csv["setting"])[:2] == ["full model", "majority baseline"]
    row = csv[csv["setting"] == "full model"].iloc[0]
    assert row["MRPC_mean"] == pytest.approx(0.82) and row["MRPC_n"] == 3
    assert row["MRPC_std"] == pytest.approx(np.std([0.80, 0.84, 0.82]))
    tex = paths[2].read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and "super-survivors bad retrained" in tex


def test_reference_table(authors_dir):
    t = reference_table.collect_reference(authors_dir / "evaluate_masked")
    assert set(["CoLA", "MRPC", "RTE", "STS-B", "MNLI"]) <= set(t.tasks)
    frame = table_format.score_frame(t)
    raw = json.loads((authors_dir / "evaluate_masked" / "head_mlp_retrained" / "baseline" / "results.json").read_text())
    mean, std = raw["CoLA"]["mcc"]
    assert frame.loc["s-pruning good retrained", "CoLA"] == f"{mean:.3f} ± {std:.3f}"
    raw = json.loads((authors_dir / "evaluate_masked" / "global_bad" / "baseline" / "results.json").read_text())
    assert frame.loc["m-pruning bad pruned", "MRPC"] == f"{raw['MRPC']['acc'][0]:.3f} ± {raw['MRPC']['acc'][1]:.3f}"
    raw = json.loads((authors_dir / "evaluate_masked" / "freq_baseline" / "results.json").read_text())
    assert frame.loc["majority baseline", "MRPC"] == f"{raw['MRPC']['acc'][0]:.3f}"
    # sizes from their masks: super random/bad are size-matched to the super set
    sizes = table_format.size_frame(t)
    assert sizes.loc["super-survivors good", "RTE"] == sizes.loc["super-survivors bad", "RTE"]
    assert sizes.loc["m-pruning good", "RTE"] == "n/a"


def test_cli_table(tmp_path, authors_dir):
    from typer.testing import CliRunner

    from cli.main import app

    run = _fake_run(tmp_path)
    r = CliRunner().invoke(app, ["table", "--run", str(run), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "table.tex").is_file() and "full model" in r.output
    r = CliRunner().invoke(app, ["table", "--reference", str(authors_dir / "evaluate_masked"), "--tasks", "RTE,MRPC"])
    assert r.exit_code == 0, r.output
    assert "| setting | MRPC | RTE |" in r.output
    r = CliRunner().invoke(app, ["table"])
    assert r.exit_code == 2 and "exactly one of --run" in r.output
    r = CliRunner().invoke(app, ["table", "--reference", str(tmp_path)])
    assert r.exit_code == 2 and "evaluate_masked" in r.output


def test_bad_run_folders(tmp_path):
    with pytest.raises(UserError, match="no such run folder"):
        tables.run_table(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no TASK/seed_S folders"):
        tables.run_table(tmp_path / "empty")
    run = _fake_run(tmp_path)
    with pytest.raises(UserError, match="no results of task CoLA"):
        tables.run_table(run, ["CoLA"])
    _write(run / "MRPC" / "seed_1" / "subnetworks" / "super" / "good" / "pruned.json", {"metrics": {}})
    with pytest.raises(UserError, match="pruned.json.*no 'acc'"):
        tables.run_table(run)


def test_note_names_the_seeds_where_pruning_kept_the_whole_model():
    import pandas as pd

    from attnpatterns.report.tables import unpruned_notes

    rows = [
        dict(method="magnitude", subnet=sub, setting="pruned", task=t, seed=s, score=0.5, kept_fraction=kf)
        for t, s, kf in (("CoLA", 42, 1.0), ("CoLA", 7, 0.6), ("RTE", 86, 1.0), ("RTE", 3, 1.0))
        for sub in ("good", "random")
    ]
    rows.append(
        dict(method="structured", subnet="good", setting="pruned", task="CoLA", seed=7, score=0.5, kept_fraction=0.9)
    )
    notes = unpruned_notes(pd.DataFrame(rows))
    assert notes == [
        "m-pruning kept the whole model in CoLA seed 42; RTE seeds 3, 86: there good, random and bad are "
        "one mask (the full model) and score alike."
    ]
    rows[-1]["kept_fraction"] = 1.0
    assert len(unpruned_notes(pd.DataFrame(rows))) == 2
