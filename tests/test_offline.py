"""Offline, a command without GLUE data fails fast: one line within 3 s, no library retry noise."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ATTN = Path(sys.executable).with_name("attn")


def _env(tmp_path, **extra):
    from attnpatterns.annotate.server import free_port

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ATTN_GLUE_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_DATASETS_CACHE")
    }
    # the hub unreachable (a closed local port), an empty cache
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", HF_HOME=str(tmp_path / "hf"), **extra)
    return env


@pytest.mark.parametrize(
    "args",
    [
        ["finetune", "--task", "RTE", "--seeds", "1", "--out", "OUT"],
        ["run", "--out", "OUT"],
        ["maps", "--task", "MRPC", "--n", "2", "--out", "OUT/maps.npz"],
        ["classify", "--task", "MRPC", "--out", "OUT/c"],
    ],
)
@pytest.mark.parametrize("offline_var", [None, "HF_DATASETS_OFFLINE"])
def test_no_data_and_no_hub_is_one_line_within_3_seconds(tmp_path, args, offline_var):
    if not ATTN.exists():
        pytest.skip(f"no attn script beside {sys.executable}")
    env = _env(tmp_path, **({offline_var: "1"} if offline_var else {}))
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    t0 = time.perf_counter()
    p = subprocess.run([str(ATTN), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    seconds = time.perf_counter() - t0
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--data-dir" in lines[0], p.stderr
    assert seconds < 3.0, f"{' '.join(args[:1])} took {seconds:.1f} s to say there is no data"
    assert not (tmp_path / "out").exists()
