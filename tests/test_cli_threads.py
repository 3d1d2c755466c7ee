"""--threads means the same in every command: left out = torch's default, a number >= 1 = that many threads, 0 or
less = the same one-line error (never a silent default)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--out", "OUT", "--data-dir", "GLUE"],
        ["finetune", "--task", "MRPC", "--seeds", "1", "--out", "OUT", "--data-dir", "GLUE"],
        ["prune", "structured", "--task", "MRPC", "--run", "OUT"],
        ["subnetworks", "--task", "MRPC", "--run", "OUT", "--method", "structured", "--seeds", "1"],
        ["sweep", "--out", "OUT", "--data-dir", "GLUE", "--dry-run"],
        ["classifier", "train", "--kind", "raw", "--out", "OUT/c.safetensors"],
        ["annotate", "backend", "--models", "OUT"],
    ],
)
def test_threads_zero_is_the_same_one_line_error_everywhere(args, tmp_path, glue_dir):
    (tmp_path / "run").mkdir()
    args = [a.replace("OUT", str(tmp_path / "run")).replace("GLUE", str(glue_dir)) for a in args]
    r = CliRunner().invoke(app, args + ["--threads", "0"])
    assert r.exit_code == 2 and "--threads must be at least 1 (got 0)" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
