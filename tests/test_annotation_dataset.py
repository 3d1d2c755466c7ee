"""The annotated-maps dataset: upsert by id, validation, atomic writes, untouched on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from attnpatterns.annotate import dataset as ds
from attnpatterns.errors import UserError


def row(i, label="vertical", **extra):
    base = dict(
        id=f"pre-MRPC-{i}-L1H2",
        label=label,
        annotator="ann",
        source_model="minilm",
        task="MRPC",
        layer=1,
        head=2,
        example=str(i),
    )
    return {**base, **extra}


def amap(i, n=5):
    return np.random.default_rng(i).random((n, n)).astype(np.float32)


def test_roundtrip_and_upsert(tmp_path):
    r = ds.upsert(tmp_path, "raw", [row(0), row(1, "block")], {row(0)["id"]: amap(0), row(1)["id"]: amap(1)})
    assert r.added == [row(0)["id"], row(1)["id"]]
    s = ds.load(tmp_path, "raw")
    assert s.labels == ["vertical", "block"] and s.rows[0]["layer"] == 1
    np.testing.assert_array_equal(s.maps[row(1)["id"]], amap(1))
    assert s.maps[row(0)["id"]].dtype == np.float32

    before = (tmp_path / "raw" / "labels.tsv").read_bytes()
    again = ds.upsert(tmp_path, "raw", [row(0), row(1, "block")], {row(0)["id"]: amap(0)})
    assert again.unchanged == [row(0)["id"], row(1)["id"]] and not again.changed
    assert (tmp_path / "raw" / "labels.tsv").read_bytes() == before

    upd = ds.upsert(tmp_path, "raw", [row(1, "diagonal", suggested_label="block")])
    assert upd.updated == [row(1)["id"]]
    s = ds.load(tmp_path, "raw")
    assert len(s.rows) == 2 and s.row(row(1)["id"])["label"] == "diagonal"
    assert s.columns == ds.COLUMNS + ["suggested_label"]
    assert s.row(row(0)["id"]).get("suggested_label", "") == ""
    np.testing.assert_array_equal(s.maps[row(1)["id"]], amap(1))  # the stored map was kept
    assert ds.class_balance(s.rows) == {
        "vertical": 1,
        "diagonal": 1,
        "vertical+diagonal": 0,
        "block": 0,
        "heterogeneous": 0,
    }
    header = (tmp_path / "raw" / "labels.tsv").read_text().splitlines()[0].split("\t")
    assert header[:8] == ds.COLUMNS


@pytest.mark.parametrize(
    "rows, maps, match",
    [
        ([row(2, "vert")], {row(2)["id"]: amap(2)}, "unknown label 'vert'"),
        ([row(2)], {}, "has no map"),
        ([row(2), row(2)], {row(2)["id"]: amap(2)}, "given twice"),
        ([dict(row(2), layer="x")], {row(2)["id"]: amap(2)}, "not an integer"),
        ([dict(row(2), id="a/b")], {"a/b": amap(2)}, "not valid"),
        ([row(2)], {row(2)["id"]: np.ones((2, 3))}, "square"),
        ([{k: v for k, v in row(2).items() if k != "task"}], {row(2)["id"]: amap(2)}, "missing field"),
        ([row(2, annotator="a\tb")], {row(2)["id"]: amap(2)}, "tab or newline"),
    ],
)
def test_bad_input_leaves_dataset_untouched(tmp_path, rows, maps, match):
    ds.upsert(tmp_path, "normed", [row(0)], {row(0)["id"]: amap(0)})
    files = {p.name: p.read_bytes() for p in (tmp_path / "normed").iterdir()}
    with pytest.raises(UserError, match=match):
        ds.upsert(tmp_path, "normed", rows, maps)
    assert {p.name: p.read_bytes() for p in (tmp_path / "normed").iterdir()} == files


def test_reading_bad_files(tmp_path):
    with pytest.raises(UserError, match="unknown map kind"):
        ds.load(tmp_path, "weird")
    with pytest.raises(UserError, match="file not found"):
        ds.load(tmp_path, "raw")
    assert ds.load_or_empty(tmp_path, "raw").rows == []
    d = tmp_path / "raw"
    d.mkdir()
    (d / "labels.tsv").write_text("id\tlabel\n")
    with pytest.raises(UserError, match="missing column"):
        ds.load(tmp_path, "raw")
    (d / "labels.tsv").write_text(
        "\t".join(ds.COLUMNS) + "\n" + "\t".join(["x", "block", "a", "m", "T", "0", "1", "e"]) + "\n"
    )
    with pytest.raises(UserError, match="maps.npz: file not found"):
        ds.load(tmp_path, "raw")
    np.savez(d / "maps.npz", y=np.eye(3))
    with pytest.raises(UserError, match="no map for id"):
        ds.load(tmp_path, "raw")
    assert ds.load(tmp_path, "raw", with_maps=False).ids == ["x"]


def test_make_id_is_a_valid_key():
    mid = ds.make_id("MRPC", "dev/12 a", 3, 11, model_state="ft-seed42", kind="raw")
    assert mid == "raw-ft-seed42-MRPC-dev_12_a-L3H11"
    assert ds.check_id(mid) == mid


def test_quotes_in_fields_roundtrip(tmp_path):
    """Tokens such as '"' (GLUE has them) are plain characters in the TSV, not CSV quoting."""
    r = row(5, annotator='a "b"', tokens="[CLS] \" hi '' \" [SEP]")
    ds.upsert(tmp_path, "raw", [r], {r["id"]: amap(5)})
    got = ds.load(tmp_path, "raw").rows[0]
    assert got["tokens"] == "[CLS] \" hi '' \" [SEP]" and got["annotator"] == 'a "b"'
    assert ds.upsert(tmp_path, "raw", [r]).unchanged == [r["id"]]


def test_cli_sheet_and_baseline(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    n = 8
    toks = " ".join(["[CLS]"] + [f"w{i}" for i in range(n - 2)] + ["[SEP]"])
    vert = np.full((n, n), 0.01, np.float32)
    vert[:, 0] = 1.0
    diag = np.eye(n, k=-1, dtype=np.float32) + 0.001
    rows = [row(1, "vertical", tokens=toks), row(2, "diagonal", tokens=toks), row(3, "vertical", tokens=toks)]
    ds.upsert(tmp_path, "raw", rows, {rows[0]["id"]: vert, rows[1]["id"]: diag, rows[2]["id"]: vert})
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "annotate",
            "sheet",
            "--kind",
            "raw",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "s"),
            "--per-page",
            "2",
        ],
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["sheet-raw-001.png", "sheet-raw-002.png"]
    r = runner.invoke(
        app,
        [
            "annotate",
            "sheet",
            "--kind",
            "raw",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "s"),
            "--label",
            "blok",
        ],
    )
    assert r.exit_code == 2 and "unknown pattern label 'blok'" in r.output
    r = runner.invoke(app, ["annotate", "baseline", "--kind", "raw", "--data", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "3 maps (3 with tokens); heuristic accuracy 1.000, weighted F1 1.000" in r.output
