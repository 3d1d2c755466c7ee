"""Bad input, table-driven: every command, every kind of bad file or argument.

Each case must give a non-zero exit code, exactly one line on stderr that names the problem (a pattern per case) and
says how to fix it, no traceback, and must leave every file of the workspace (inputs and output folders) byte for
byte as it was. The cases run through typer's CliRunner on ``cli.main.app``; a few also run through the real
``attn`` entry point in a subprocess to show it behaves the same. The number of cases is printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_pipeline import write_glue_mrpc, write_tiny_model  # noqa: E402

HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
# words a fix is phrased with: every message must tell the user what to do
FIX_WORDS = re.compile(
    r"\b(use|pass|give|check|set|fix|save|choose|run|rerun|retrain|restore|start|add|remove|"
    r"export|make|put|keep|install|push|pull|select|write|try|expected|must|should|need|needs|"
    r"one of|instead|at least|at most|between|supported|known|annotate)\b|e\.g\.|; .{8,}|\?$",
    re.I,
)


# ------------------------------------------------------------------------------------------- the workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """Inputs good and bad, made once; each case only reads them (checked by the snapshot)."""
    w = tmp_path_factory.mktemp("bad-input")
    write_tiny_model(w / "model")
    write_glue_mrpc(w / "glue", n_train=8, n_dev=6)
    # a data set with no examples, one with one class, one that is not UTF-8, a malformed TSV
    for name, rows in (
        ("glue_empty", []),
        ("glue_oneclass", [f"1\t{i}\t{i + 9}\tthe cat sat .\tthe cat sat ." for i in range(8)]),
    ):
        d = w / name / "MRPC"
        d.mkdir(parents=True)
        for split in ("train", "dev"):
            (d / f"{split}.tsv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    d = w / "glue_latin1" / "MRPC"
    d.mkdir(parents=True)
    for split in ("train", "dev"):
        (d / f"{split}.tsv").write_bytes((HEADER + "\n1\t1\t2\tcaf\xe9 cr\xe8me .\tna\xefve .\n").encode("latin-1"))
    d = w / "glue_malformed" / "MRPC"
    d.mkdir(parents=True)
    for split in ("train", "dev"):
        (d / f"{split}.tsv").write_text("this is\tnot\nthe MRPC layout at all\n", encoding="utf-8")
    d = w / "glue_badlabel" / "MRPC"
    d.mkdir(parents=True)
    for split in ("train", "dev"):
        (d / f"{split}.tsv").write_text(HEADER + "\nyes\t1\t2\ta b .\tc d .\n", encoding="utf-8")

    # head sets
    j = w / "json"
    j.mkdir()
    (j / "malformed.json").write_text('{"heads": [[0, 1], ', encoding="utf-8")
    (j / "latin1.json").write_bytes('{"heads": "caf\xe9"}'.encode("latin-1"))
    (j / "out_of_range.json").write_text("[[0, 1], [7, 3]]", encoding="utf-8")
    (j / "negative.json").write_text("[[0, -1]]", encoding="utf-8")
    (j / "wrong_shape.json").write_text(
        json.dumps({"num_layers": 6, "num_heads": 12, "heads": [[0, 0], [5, 11]]}), encoding="utf-8"
    )
    (j / "not_pairs.json").write_text('{"hello": "world"}', encoding="utf-8")
    (j / "empty.json").write_text("", encoding="utf-8")
    (j / "a_folder.json").mkdir()

    # mask folders (the authors' layout)
    def masks(name, head, mlp=None):
        d = w / name / "MRPC" / "seed_1"
        d.mkdir(parents=True)
        np.save(d / "head_mask.npy", head, allow_pickle=True)
        np.save(d / "mlp_mask.npy", np.ones(2) if mlp is None else mlp, allow_pickle=True)
        return d

    good = np.ones((2, 4))
    masks("masks_ok", good)
    d2 = w / "masks_ok" / "MRPC" / "seed_2"
    d2.mkdir()
    np.save(d2 / "head_mask.npy", np.ones((3, 4)))  # another shape than seed_1
    np.save(d2 / "mlp_mask.npy", np.ones(3))
    masks("masks_1d", np.ones(8))
    masks("masks_values", np.full((2, 4), 2.0))
    masks("masks_pickle", np.array([{"a": 1}, None], dtype=object))
    d = w / "masks_garbage" / "MRPC" / "seed_1"
    d.mkdir(parents=True)
    (d / "head_mask.npy").write_bytes(b"\x93NUMPY garbage that is no array")
    (d / "mlp_mask.npy").write_bytes(b"nope")
    (w / "masks_empty").mkdir()

    # annotation data sets
    from attnpatterns.annotate import dataset as ads

    cols = "id\tlabel\tannotator\tsource_model\ttask\tlayer\thead\texample"
    for name, text in (
        ("ann_malformed", "id\tlabel\nonly\ttwo\tcolumns\there\n"),
        ("ann_unknown", f"{cols}\nm1\tzigzag\ta\tm\tMRPC\t0\t1\t1\n"),
        ("ann_nomaps", f"{cols}\nm1\tblock\ta\tm\tMRPC\t0\t1\t1\n"),
    ):
        (w / name / "raw").mkdir(parents=True)
        (w / name / "raw" / "labels.tsv").write_text(text, encoding="utf-8")
    (w / "ann_latin1" / "raw").mkdir(parents=True)
    (w / "ann_latin1" / "raw" / "labels.tsv").write_bytes(
        f"{cols}\nm\xe91\tblock\ta\tm\tMRPC\t0\t1\t1\n".encode("latin-1")
    )
    # one class only (valid files)
    rng = np.random.default_rng(0)
    rows = [
        dict(
            id=f"r{i}", label="block", annotator="a", source_model="m", task="MRPC", layer=0, head=i % 4, example=str(i)
        )
        for i in range(12)
    ]
    ads.upsert(w / "ann_oneclass", "raw", rows, {r["id"]: rng.random((6, 6), dtype=np.float32) for r in rows})
    (w / "ann_empty" / "raw").mkdir(parents=True)
    (w / "ann_empty" / "raw" / "labels.tsv").write_text(cols + "\n", encoding="utf-8")
    np.savez(w / "ann_empty" / "raw" / "maps.npz")

    # classifier files that are not ours
    c = w / "clf"
    c.mkdir()
    (c / "text.safetensors").write_text("I am not a tensor file", encoding="utf-8")
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(c / "foreign.safetensors"))
    import torch

    torch.save({"w": torch.zeros(2)}, c / "pickle.pt")
    # a model folder whose weights are a pickle with more than tensors in it (refused by weights_only=True)
    pm = w / "pickled-model"
    pm.mkdir()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (pm / f).write_bytes((w / "model" / f).read_bytes())
    torch.save({"bert.embeddings.word_embeddings.weight": SimpleNamespace(x=1)}, pm / "pytorch_model.bin")
    # maps for predict
    m = w / "mapsin"
    m.mkdir()
    np.save(m / "ok.npy", np.eye(6, dtype=np.float32))
    np.save(m / "cube.npy", np.zeros((2, 3, 3), dtype=np.float32))
    np.save(m / "object.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (m / "text.npy").write_text("0 1\n1 0\n", encoding="utf-8")

    # run folders for table / report / subnetworks
    (w / "run_empty").mkdir()
    r = w / "run_badjson" / "MRPC" / "seed_1" / "subnetworks" / "structured" / "good"
    r.mkdir(parents=True)
    (r / "pruned.json").write_text("{not json", encoding="utf-8")
    (w / "out").mkdir()  # output folder the commands are pointed at
    (w / "out" / "keep.txt").write_text("an earlier result\n", encoding="utf-8")
    return w


def _snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = p.read_bytes() if p.is_file() else b"<dir>"
    return out


# ------------------------------------------------------------------------------------------- the table


AUTHORS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "bert-experiments"


@dataclass
class Case:
    id: str
    args: Callable[[Path], list[str]]
    problem: str  # regex the one line must match (names the problem)
    env: dict | None = None
    patch: Callable | None = None  # (monkeypatch, ws) -> None


def _fake_ls(mp, w, label="zigzag"):
    """Label Studio's answers to 'attn annotate pull' without a server: one task annotated with ``label``."""
    from attnpatterns.annotate import labelstudio as lsc

    data = dict(
        map_id="raw-pre-MRPC-1-L0H1",
        kind="raw",
        map=lsc.encode_map(np.eye(4, dtype=np.float32)),
        image="data:image/png;base64,AA",
        task="MRPC",
        example="1",
        layer=0,
        head=1,
        source_model="m",
        n_tokens=4,
    )
    export = [
        {
            "id": 1,
            "data": data,
            "annotations": [
                {
                    "id": 1,
                    "completed_by": 1,
                    "updated_at": "2026-01-01",
                    "was_cancelled": False,
                    "result": [{"from_name": "pattern", "type": "choices", "value": {"choices": [label]}}],
                }
            ],
        }
    ]
    proj = SimpleNamespace(id=1, title="attn-raw", label_config=lsc.LABEL_CONFIG)
    sdk = SimpleNamespace(
        projects=SimpleNamespace(list=lambda **k: [proj], exports=SimpleNamespace(as_json=lambda *a, **k: export)),
        users=SimpleNamespace(list=lambda: [SimpleNamespace(id=1, email="a@b", username="a")]),
    )
    conn = lsc.Connection(url="http://127.0.0.1:9", sdk=sdk, _key="k", retries=0, sleep=lambda s: None)
    mp.setattr(lsc, "connect", lambda *a, **k: conn)


M = lambda w: ["--model", str(w / "model")]  # noqa: E731
G = lambda w, name="glue": ["--data-dir", str(w / name)]  # noqa: E731
O = lambda w, name="x": str(w / "out" / name)  # noqa: E731

CASES = [
    # ---- attn maps
    Case(
        "maps-unknown-task",
        lambda w: ["maps", "--task", "NOPE", "--out", O(w, "m.npz"), *M(w), *G(w)],
        r"unknown task 'NOPE'",
    ),
    Case(
        "maps-unknown-model-path",
        lambda w: ["maps", "--text", "a b", "--out", O(w, "m.npz"), "--model", str(w / "nomodel")],
        r"nomodel",
    ),
    Case(
        "maps-unknown-hub-model",
        lambda w: ["maps", "--text", "a b", "--out", O(w, "m.npz"), "--model", "no-such-org/no-such-model"],
        r"no-such-org/no-such-model",
    ),
    Case(
        "maps-model-pickled-weights",
        lambda w: ["maps", "--text", "a b", "--out", O(w, "m.npz"), "--model", str(w / "pickled-model")],
        r"pickle",
    ),
    Case(
        "maps-model-is-a-file",
        lambda w: ["maps", "--text", "a b", "--out", O(w, "m.npz"), "--model", str(w / "json" / "negative.json")],
        r"negative\.json",
    ),
    Case("maps-no-input", lambda w: ["maps", "--out", O(w, "m.npz"), *M(w)], r"--text|--task"),
    Case(
        "maps-text-past-max-length",
        lambda w: ["maps", "--text", "word " * 700, "--out", O(w, "m.npz"), *M(w), "--max-length", "1000"],
        r"max.length|512|position",
    ),
    Case(
        "maps-max-length-zero",
        lambda w: ["maps", "--text", "a b", "--out", O(w, "m.npz"), *M(w), "--max-length", "0"],
        r"max.length",
    ),
    Case(
        "maps-empty-dev",
        lambda w: ["maps", "--task", "MRPC", "--out", O(w, "m.npz"), *M(w), *G(w, "glue_empty")],
        r"MRPC|no .*example|empty",
    ),
    Case(
        "maps-non-utf8-tsv",
        lambda w: ["maps", "--task", "MRPC", "--out", O(w, "m.npz"), *M(w), *G(w, "glue_latin1")],
        r"UTF-8|utf-8",
    ),
    Case(
        "maps-malformed-tsv",
        lambda w: ["maps", "--task", "MRPC", "--out", O(w, "m.npz"), *M(w), *G(w, "glue_malformed")],
        r"dev\.tsv|column",
    ),
    Case("maps-out-is-folder", lambda w: ["maps", "--text", "a b", "--out", str(w / "out"), *M(w)], r"out|folder"),
    # ---- attn finetune
    Case(
        "finetune-unknown-task",
        lambda w: ["finetune", "--task", "NOPE", "--seeds", "1", "--out", O(w, "ft"), *M(w), *G(w)],
        r"unknown task 'NOPE'",
    ),
    Case(
        "finetune-bad-seeds",
        lambda w: ["finetune", "--task", "MRPC", "--seeds", "1,x", "--out", O(w, "ft"), *M(w), *G(w)],
        r"--seeds",
    ),
    Case(
        "finetune-empty-train",
        lambda w: ["finetune", "--task", "MRPC", "--seeds", "1", "--out", O(w, "ft"), *M(w), *G(w, "glue_empty")],
        r"MRPC|no .*example|empty",
    ),
    Case(
        "finetune-one-class",
        lambda w: ["finetune", "--task", "MRPC", "--seeds", "1", "--out", O(w, "ft"), *M(w), *G(w, "glue_oneclass")],
        r"one class|single class|only .*label|class",
    ),
    Case(
        "finetune-bad-label",
        lambda w: ["finetune", "--task", "MRPC", "--seeds", "1", "--out", O(w, "ft"), *M(w), *G(w, "glue_badlabel")],
        r"label|yes",
    ),
    Case(
        "finetune-missing-data-dir",
        lambda w: ["finetune", "--task", "MRPC", "--seeds", "1", "--out", O(w, "ft"), *M(w), *G(w, "no_glue")],
        r"no_glue|MRPC",
    ),
    Case(
        "finetune-unknown-model",
        lambda w: [
            "finetune",
            "--task",
            "MRPC",
            "--seeds",
            "1",
            "--out",
            O(w, "ft"),
            "--model",
            str(w / "nomodel"),
            *G(w),
        ],
        r"nomodel",
    ),
    # ---- attn prune
    Case(
        "prune-structured-missing-run",
        lambda w: ["prune", "structured", "--task", "MRPC", "--run", str(w / "norun"), "--seeds", "1", *G(w)],
        r"norun|finetuned",
    ),
    Case(
        "prune-magnitude-missing-run",
        lambda w: ["prune", "magnitude", "--task", "MRPC", "--run", str(w / "norun"), "--seeds", "1", *G(w)],
        r"norun|finetuned",
    ),
    Case(
        "prune-unknown-task",
        lambda w: ["prune", "structured", "--task", "NOPE", "--run", str(w / "run_empty"), "--seeds", "1", *G(w)],
        r"unknown task 'NOPE'",
    ),
    # ---- attn survivors
    Case(
        "survivors-missing-folder",
        lambda w: ["survivors", "--masks", str(w / "nomasks"), "--task", "MRPC", "--out", O(w, "s.json")],
        r"nomasks",
    ),
    Case(
        "survivors-empty-folder",
        lambda w: ["survivors", "--masks", str(w / "masks_empty"), "--task", "MRPC", "--out", O(w, "s.json")],
        r"masks_empty|MRPC",
    ),
    Case(
        "survivors-mask-shapes-differ",
        lambda w: ["survivors", "--masks", str(w / "masks_ok"), "--task", "MRPC", "--out", O(w, "s.json")],
        r"shape|2x4|3x4|\(2, 4\)|\(3, 4\)",
    ),
    Case(
        "survivors-mask-1d",
        lambda w: ["survivors", "--masks", str(w / "masks_1d"), "--task", "MRPC", "--out", O(w, "s.json")],
        r"head_mask\.npy",
    ),
    Case(
        "survivors-mask-values",
        lambda w: ["survivors", "--masks", str(w / "masks_values"), "--task", "MRPC", "--out", O(w, "s.json")],
        r"head_mask\.npy",
    ),
    Case(
        "survivors-mask-pickle",
        lambda w: ["survivors", "--masks", str(w / "masks_pickle"), "--task", "MRPC", "--out", O(w, "s.json")],
        r"pickle|object|head_mask\.npy",
    ),
    Case(
        "survivors-mask-garbage",
        lambda w: ["survivors", "--masks", str(w / "masks_garbage"), "--task", "MRPC", "--out", O(w, "s.json")],
        r"head_mask\.npy|mlp_mask\.npy",
    ),
    Case(
        "survivors-unknown-seed",
        lambda w: [
            "survivors",
            "--masks",
            str(w / "masks_1d"),
            "--task",
            "MRPC",
            "--seeds",
            "7",
            "--out",
            O(w, "s.json"),
        ],
        r"seed",
    ),
    Case(
        "survivors-bad-split",
        lambda w: [
            "survivors",
            "--masks",
            str(w / "masks_values"),
            "--task",
            "MRPC",
            "--split",
            "most",
            "--out",
            O(w, "s.json"),
        ],
        r"most|split",
    ),
    # ---- attn stats
    Case("stats-missing-folder", lambda w: ["stats", "--masks", str(w / "nomasks")], r"nomasks"),
    Case("stats-empty-folder", lambda w: ["stats", "--masks", str(w / "masks_empty")], r"masks_empty|mask"),
    Case("stats-unknown-task", lambda w: ["stats", "--masks", str(w / "masks_values"), "--tasks", "NOPE"], r"NOPE"),
    # ---- attn subnetworks
    Case(
        "subnetworks-unknown-method",
        lambda w: [
            "subnetworks",
            "--task",
            "MRPC",
            "--seeds",
            "1",
            "--method",
            "lottery",
            "--run",
            str(w / "run_empty"),
        ],
        r"lottery",
    ),
    Case(
        "subnetworks-missing-run",
        lambda w: [
            "subnetworks",
            "--task",
            "MRPC",
            "--seeds",
            "1",
            "--method",
            "structured",
            "--run",
            str(w / "norun"),
        ],
        r"norun",
    ),
    Case(
        "subnetworks-unknown-subnet",
        lambda w: [
            "subnetworks",
            "--task",
            "MRPC",
            "--seeds",
            "1",
            "--method",
            "structured",
            "--run",
            str(w / "run_empty"),
            "--subnets",
            "good,ugly",
        ],
        r"ugly",
    ),
    # ---- attn table
    Case("table-missing-run", lambda w: ["table", "--run", str(w / "norun"), "--out", O(w, "t")], r"norun"),
    Case(
        "table-empty-run",
        lambda w: ["table", "--run", str(w / "run_empty"), "--out", O(w, "t")],
        r"run_empty|subnetworks|result",
    ),
    Case(
        "table-malformed-json",
        lambda w: ["table", "--run", str(w / "run_badjson"), "--out", O(w, "t")],
        r"pruned\.json",
    ),
    # ---- attn paper
    Case("paper-missing-run", lambda w: ["paper", "--run", str(w / "norun"), "--out", O(w, "p.md")], r"norun"),
    Case(
        "paper-not-the-authors-folder",
        lambda w: ["paper", "--run", str(w / "run_empty"), "--reference", str(w / "json"), "--out", O(w, "p.md")],
        r"not the authors' folder",
    ),
    Case(
        "paper-missing-cells",
        lambda w: ["paper", "--run", str(w / "run_empty"), "--reference", str(AUTHORS), "--out", O(w, "p.md")],
        r"missing|TASK/seed_S",
    ),
    # ---- attn classify
    Case(
        "classify-heads-malformed-json",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "malformed.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"malformed\.json",
    ),
    Case(
        "classify-heads-non-utf8",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "latin1.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"latin1\.json",
    ),
    Case(
        "classify-heads-out-of-range",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "out_of_range.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"out_of_range\.json|range|\b7\b",
    ),
    Case(
        "classify-heads-negative",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "negative.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"negative\.json|-1",
    ),
    Case(
        "classify-heads-wrong-shape",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "wrong_shape.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"wrong_shape\.json|6|12",
    ),
    Case(
        "classify-heads-not-pairs",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "not_pairs.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"not_pairs\.json",
    ),
    Case(
        "classify-heads-empty-file",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "empty.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"empty\.json",
    ),
    Case(
        "classify-heads-is-folder",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "a_folder.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"a_folder\.json",
    ),
    Case(
        "classify-heads-missing",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            "--heads",
            str(w / "json" / "absent.json"),
            *M(w),
            *G(w),
            "--out",
            O(w, "c"),
        ],
        r"absent\.json",
    ),
    Case(
        "classify-classifier-not-ours",
        lambda w: [
            "classify",
            "--task",
            "MRPC",
            *M(w),
            *G(w),
            "--kind",
            "raw",
            "--classifier-raw",
            str(w / "clf" / "foreign.safetensors"),
            "--out",
            O(w, "c"),
        ],
        r"foreign\.safetensors",
    ),
    Case(
        "classify-unknown-task",
        lambda w: ["classify", "--task", "NOPE", *M(w), *G(w), "--out", O(w, "c")],
        r"unknown task 'NOPE'",
    ),
    Case(
        "classify-empty-dev",
        lambda w: ["classify", "--task", "MRPC", *M(w), *G(w, "glue_empty"), "--out", O(w, "c")],
        r"MRPC|example|empty",
    ),
    # ---- attn classifier
    Case(
        "classifier-predict-not-ours",
        lambda w: [
            "classifier",
            "predict",
            "--kind",
            "raw",
            "--classifier",
            str(w / "clf" / "foreign.safetensors"),
            str(w / "mapsin" / "ok.npy"),
        ],
        r"foreign\.safetensors",
    ),
    Case(
        "classifier-predict-text-as-weights",
        lambda w: [
            "classifier",
            "predict",
            "--kind",
            "raw",
            "--classifier",
            str(w / "clf" / "text.safetensors"),
            str(w / "mapsin" / "ok.npy"),
        ],
        r"text\.safetensors",
    ),
    Case(
        "classifier-predict-pickle-weights",
        lambda w: [
            "classifier",
            "predict",
            "--kind",
            "raw",
            "--classifier",
            str(w / "clf" / "pickle.pt"),
            str(w / "mapsin" / "ok.npy"),
        ],
        r"pickle\.pt",
    ),
    Case(
        "classifier-predict-missing-map",
        lambda w: ["classifier", "predict", "--kind", "raw", str(w / "mapsin" / "absent.npy")],
        r"absent\.npy",
    ),
    Case(
        "classifier-predict-3d-map",
        lambda w: ["classifier", "predict", "--kind", "raw", str(w / "mapsin" / "cube.npy")],
        r"cube\.npy",
    ),
    Case(
        "classifier-predict-object-map",
        lambda w: ["classifier", "predict", "--kind", "raw", str(w / "mapsin" / "object.npy")],
        r"object\.npy",
    ),
    Case(
        "classifier-predict-text-map",
        lambda w: ["classifier", "predict", "--kind", "raw", str(w / "mapsin" / "text.npy")],
        r"text\.npy",
    ),
    Case(
        "classifier-train-one-class",
        lambda w: [
            "classifier",
            "train",
            "--kind",
            "raw",
            "--data",
            str(w / "ann_oneclass"),
            "--out",
            O(w, "c.safetensors"),
            "--epochs",
            "1",
        ],
        r"class|block",
    ),
    Case(
        "classifier-train-empty",
        lambda w: [
            "classifier",
            "train",
            "--kind",
            "raw",
            "--data",
            str(w / "ann_empty"),
            "--out",
            O(w, "c.safetensors"),
            "--epochs",
            "1",
        ],
        r"ann_empty|no .*map|empty|annotat",
    ),
    Case(
        "classifier-train-unknown-annotator",
        lambda w: [
            "classifier",
            "train",
            "--kind",
            "raw",
            "--data",
            str(w / "ann_oneclass"),
            "--annotator",
            "nobody",
            "--out",
            O(w, "c.safetensors"),
            "--epochs",
            "1",
        ],
        r"nobody",
    ),
    Case(
        "classifier-train-missing-data",
        lambda w: ["classifier", "train", "--kind", "raw", "--data", str(w / "noann"), "--out", O(w, "c.safetensors")],
        r"noann",
    ),
    Case(
        "classifier-evaluate-not-ours",
        lambda w: [
            "classifier",
            "evaluate",
            "--kind",
            "raw",
            "--data",
            str(w / "ann_oneclass"),
            "--classifier",
            str(w / "clf" / "foreign.safetensors"),
            "--out",
            O(w, "ev"),
        ],
        r"foreign\.safetensors",
    ),
    # ---- attn annotate
    Case(
        "annotate-sheet-malformed-tsv",
        lambda w: ["annotate", "sheet", "--kind", "raw", "--data", str(w / "ann_malformed"), "--out", O(w, "sh")],
        r"labels\.tsv",
    ),
    Case(
        "annotate-sheet-unknown-label",
        lambda w: ["annotate", "sheet", "--kind", "raw", "--data", str(w / "ann_unknown"), "--out", O(w, "sh")],
        r"zigzag",
    ),
    Case(
        "annotate-sheet-no-maps",
        lambda w: ["annotate", "sheet", "--kind", "raw", "--data", str(w / "ann_nomaps"), "--out", O(w, "sh")],
        r"maps\.npz|m1",
    ),
    Case(
        "annotate-sheet-non-utf8",
        lambda w: ["annotate", "sheet", "--kind", "raw", "--data", str(w / "ann_latin1"), "--out", O(w, "sh")],
        r"UTF-8|utf-8",
    ),
    Case(
        "annotate-sheet-unknown-kind",
        lambda w: ["annotate", "sheet", "--kind", "weird", "--data", str(w / "ann_oneclass"), "--out", O(w, "sh")],
        r"weird",
    ),
    Case(
        "annotate-baseline-unknown-label",
        lambda w: ["annotate", "baseline", "--kind", "raw", "--data", str(w / "ann_unknown"), "--no-retokenize"],
        r"zigzag",
    ),
    Case(
        "annotate-push-no-key",
        lambda w: ["annotate", "push", "--kind", "raw", "--task", "MRPC", *M(w), *G(w), "--n", "1"],
        r"LABEL_STUDIO_API_KEY",
        env={"LABEL_STUDIO_API_KEY": ""},
    ),
    Case(
        "annotate-push-bad-url",
        lambda w: ["annotate", "push", "--kind", "raw", "--task", "MRPC", *M(w), *G(w), "--n", "1"],
        r"LABEL_STUDIO_URL",
        env={"LABEL_STUDIO_URL": "ftp://x", "LABEL_STUDIO_API_KEY": "k"},
    ),
    Case(
        "annotate-pull-unknown-label",
        lambda w: ["annotate", "pull", "--project", "attn-raw", "--out", str(w / "ann_oneclass")],
        r"unknown label 'zigzag'",
        patch=_fake_ls,
    ),
    # ---- attn run / report / sweep
    Case(
        "run-unknown-profile", lambda w: ["run", "--profile", "huge", "--out", O(w, "run")], r"unknown profile 'huge'"
    ),
    Case("run-unknown-stage", lambda w: ["run", "--stages", "finetune,dance", "--out", O(w, "run")], r"dance"),
    Case("run-unknown-task", lambda w: ["run", "--tasks", "MRPC,NOPE", "--out", O(w, "run")], r"unknown task 'NOPE'"),
    Case(
        "run-empty-data",
        lambda w: ["run", "--out", O(w, "run"), *M(w), *G(w, "glue_empty"), "--tasks", "MRPC", "--seeds", "1"],
        r"MRPC",
    ),
    Case(
        "run-out-is-file",
        lambda w: ["run", "--out", str(w / "out" / "keep.txt"), *M(w), *G(w), "--tasks", "MRPC", "--seeds", "1"],
        r"keep\.txt",
    ),
    Case("report-missing-run", lambda w: ["report", "--run", str(w / "norun"), "--out", O(w, "rep")], r"norun"),
    Case(
        "sweep-unknown-executor",
        lambda w: [
            "sweep",
            "--executor",
            "slurm",
            "--out",
            O(w, "sw"),
            *M(w),
            *G(w),
            "--tasks",
            "MRPC",
            "--seeds",
            "1",
        ],
        r"slurm",
    ),
    Case(
        "sweep-unknown-task",
        lambda w: ["sweep", "--tasks", "NOPE", "--out", O(w, "sw"), *M(w), *G(w), "--seeds", "1"],
        r"NOPE",
    ),
]


def _check_one_line(stderr: str, stdout: str, case: Case) -> str:
    assert "Traceback" not in stderr + stdout, f"{case.id}: traceback\n{stderr}"
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"{case.id}: expected one line on stderr, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith("error: "), f"{case.id}: {line}"
    assert re.search(case.problem, line), f"{case.id}: /{case.problem}/ not in: {line}"
    assert FIX_WORDS.search(line), f"{case.id}: says what is wrong but not how to fix it: {line}"
    return line


XFAIL: dict[str, str] = {}  # case id -> the bug that makes it fail (strict: fixing it turns the xfail red)


def _param(c: Case):
    marks = [pytest.mark.xfail(strict=True, reason=XFAIL[c.id])] if c.id in XFAIL else []
    return pytest.param(c, id=c.id, marks=marks)


def test_the_table_is_big_enough():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    commands = {c.args(Path("w"))[0] for c in CASES}
    from cli.main import app

    registered = {(cmd.name or cmd.callback.__name__) for cmd in app.registered_commands} | {
        g.name for g in app.registered_groups
    }
    assert registered <= commands, f"commands without a bad-input case: {sorted(registered - commands)}"
    print(f"\nbad-input cases: {len(CASES)} over {len(commands)} commands ({len(XFAIL)} xfail: {', '.join(XFAIL)})")


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, ws, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ATTN_GLUE_DIR", raising=False)
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "bad-input-test-key")
    monkeypatch.chdir(ws / "out")  # any default output folder lands in the snapshot
    for k, v in (case.env or {}).items():
        monkeypatch.setenv(k, v)
    if case.patch:
        case.patch(monkeypatch, ws)
    before = _snapshot(ws)
    try:
        r = CliRunner().invoke(app, case.args(ws), catch_exceptions=True)
        assert r.exception is None or isinstance(r.exception, SystemExit), (
            f"{case.id}: raised {type(r.exception).__name__}: {r.exception}"
        )
        assert r.exit_code != 0, f"{case.id}: exit code 0\n{r.stdout}"
        _check_one_line(r.stderr, r.stdout, case)
        after = _snapshot(ws)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"{case.id}: files changed: {changed[:5]}"
    finally:
        # put the workspace back so that one failure does not spill into the next case
        new = set(_snapshot(ws)) - set(before)
        for k in sorted(new, key=lambda k: -k.count("/")):
            p = ws / k
            if p.is_file():
                p.unlink()
            elif p.is_dir():
                import shutil

                shutil.rmtree(p, ignore_errors=True)


SUBPROCESS_CASES = [
    "maps-unknown-task",
    "survivors-mask-pickle",
    "classify-heads-malformed-json",
    "classifier-predict-not-ours",
    "run-unknown-profile",
]


def test_the_real_entry_point_behaves_the_same(ws):
    attn = Path(sys.executable).parent / "attn"
    cmd = [str(attn)] if attn.is_file() else [sys.executable, "-m", "cli.main"]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("ATTN_GLUE_DIR", None)
    by_id = {c.id: c for c in CASES}
    for cid in SUBPROCESS_CASES:
        case = by_id[cid]
        before = _snapshot(ws)
        p = subprocess.run(cmd + case.args(ws), capture_output=True, text=True, env=env, cwd=ws / "out", timeout=300)
        assert p.returncode == 2, f"{cid}: exit {p.returncode}\n{p.stderr}"
        _check_one_line(p.stderr, p.stdout, case)
        assert _snapshot(ws) == before, cid
