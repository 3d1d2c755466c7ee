"""Crash safety: ``attn run`` killed with SIGKILL at random points of every stage, rerun, ends byte-identical.

A tiny random BERT on a tiny synthetic MRPC (tests/test_pipeline.py). One uninterrupted run is the reference. A
second run folder is attacked: ``attn run`` is started, killed (SIGKILL, no chance to clean up) a seeded random
delay after the log line of each stage in turn, and started again, until a start finishes. After every kill every
file in the folder that is not a temporary name must be complete (JSON parses, arrays and weights load, images and
pages are whole): nothing half-written under a real name. The finished folder must equal the reference byte for
byte, except the timing fields listed in ``TIMING_KEYS`` (wall-clock seconds and dates in JSON files: the stamps
in ``.stages``, fine-tuning metrics and run records, pruning summaries, subnetwork results) and the absolute path
of the run folder itself (``run_dir`` in results). The number of kill points and the stage each one hit are printed
(``pytest -s``).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_pipeline import TINY, ensure_classifiers, write_glue_mrpc, write_tiny_model  # noqa: E402

STAGES = ("finetune", "structured", "magnitude", "survivors", "subnetworks", "classify", "report")
# JSON keys that hold wall-clock measurements (seconds, dates): the only content allowed to differ between runs
TIMING_KEYS = {"seconds", "train_seconds", "eval_seconds", "started", "finished"}
TEMP = re.compile(r"^\..+\.tmp")  # attnpatterns.io.atomic_path's temporary names
SAVE_TMP = re.compile(r"^\.save\.")  # finetune_runs.save_model's temporary folder (removed by the next save)
SEEDS = "1,2"
KILL_SEED = 20261125


def is_temporary(p: Path, run: Path) -> bool:
    """A killed write's leftover: an atomic_path temporary, or anything inside save_model's temporary folder."""
    rel = p.relative_to(run).parts
    return bool(TEMP.match(p.name)) or any(SAVE_TMP.match(part) for part in rel[:-1])


# `attn run` itself (cli.main), with the quick profile shrunk to the tiny settings of tests/test_pipeline.py
RUNNER = f"""
import sys
from dataclasses import replace
import torch
torch.set_num_threads(1)
sys.path.insert(0, {str(ROOT)!r})
from attnpatterns.run import pipeline
pipeline.PROFILES["quick"] = replace(pipeline.PROFILES["quick"], **{TINY!r})
from cli.main import app
app(sys.argv[1:], prog_name="attn")
"""


def attn_run_cmd(script: Path, out: Path, model: Path, glue: Path) -> list[str]:
    return [
        sys.executable,
        str(script),
        "run",
        "--out",
        str(out),
        "--model",
        str(model),
        "--data-dir",
        str(glue),
        "--tasks",
        "MRPC",
        "--seeds",
        SEEDS,
        "--no-progress",
        "--threads",
        "1",
    ]


def env_for_child() -> dict:
    env = dict(os.environ)
    env.update(TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    return env


# ------------------------------------------------------------------------------------- what "complete" means


def check_complete(path: Path) -> None:
    """Raise if ``path`` (a file under its real name) is not a whole file of its type."""
    suffix = path.suffix
    if suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif suffix == ".npy":
        import numpy as np

        np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            for k in z.files:
                z[k]
    elif suffix == ".safetensors":
        from safetensors.numpy import load_file

        load_file(str(path))
    elif suffix == ".png":
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), "truncated PNG"
    elif suffix == ".svg":
        assert path.read_text(encoding="utf-8").rstrip().endswith("</svg>"), "truncated SVG"
    elif suffix == ".html":
        assert path.read_text(encoding="utf-8").rstrip().endswith("</html>"), "truncated HTML"
    elif suffix in (".md", ".csv", ".tsv", ".txt", ".tex"):
        path.read_text(encoding="utf-8")


def partial_files(run: Path) -> list[str]:
    bad = []
    for p in sorted(run.rglob("*")):
        if not p.is_file() or is_temporary(p, run):
            continue
        try:
            check_complete(p)
        except Exception as e:  # noqa: BLE001 - any failure to read it whole is the finding
            bad.append(f"{p.relative_to(run)} ({type(e).__name__}: {e})")
    return bad


def _drop_timing(obj):
    if isinstance(obj, dict):
        return {k: _drop_timing(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_drop_timing(v) for v in obj]
    return obj


def _mask_report_timing(data: bytes) -> bytes:
    """The report's wall-clock content: its "written" date and the fine-tuning table's "train s" column."""
    data = re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d UTC", b"<WRITTEN>", data)
    out, inside = [], False
    for line in data.split(b"\n"):
        if b"train s" in line:
            inside = True
        elif inside and line.startswith((b"|", b"<tr>")):
            line = re.sub(rb"[0-9.]+( \|)$", rb"<S>\1", line)  # markdown row
            line = re.sub(rb">[0-9.]+(</td></tr>)$", rb"><S>\1", line)  # HTML row
        else:
            inside = False
        out.append(line)
    return b"\n".join(out)


def comparable(run: Path) -> tuple[dict[str, bytes], set[str]]:
    """Every file of a finished run folder (temporary leftovers excluded) as comparable bytes; JSON files without
    their timing fields. Returns the files and the names of the files that had timing fields."""
    files, timed = {}, set()
    for p in sorted(run.rglob("*")):
        if not p.is_file() or is_temporary(p, run):
            continue
        rel = str(p.relative_to(run))
        # results and the report name their own folder (run_dir, the report's title); the runs live in two folders
        data = p.read_bytes().replace(str(run).encode(), b"<RUN>")
        if len(run.name) >= 6:
            data = data.replace(run.name.encode(), b"<RUN>")
        if rel.startswith("report/") and p.suffix in (".md", ".html"):
            new = _mask_report_timing(data)
            if new != data:
                timed.add(rel + " (the 'written' date, the 'train s' column)")
            data = new
        if p.suffix == ".json" and not p.name.startswith("tokenizer"):
            obj = json.loads(data)
            stripped = _drop_timing(obj)
            if rel.startswith(".stages/"):
                stripped.pop("adopted", None)  # a unit killed after its outputs, before its stamp, is adopted
                # the digest and input hashes cover files that name the run's own absolute folder (run.json,
                # heads.json): compared by name here, the files themselves are compared above, byte for byte
                stripped.pop("digest", None)
                stripped["inputs"] = sorted(stripped.get("inputs", {}))
            if stripped != obj:
                timed.add(re.sub(r"seed_\d+", "seed_S", rel))
            data = json.dumps(stripped, sort_keys=True).encode()
        files[rel] = data
    return files, timed


# ------------------------------------------------------------------------------------- the attack


class Child:
    """``attn run`` in a subprocess; a thread reads its log and records the stage it is in."""

    STAGE_LINE = re.compile(r"\[stage \d+/\d+\] (\w+):")

    def __init__(self, cmd, env, cwd):
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        self.stage: str | None = None
        self.lines: list[str] = []
        self.seen = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            m = self.STAGE_LINE.search(line)
            if m:
                self.stage = m.group(1)
                self.seen.set()

    def wait_for_stage(self, stage: str, timeout: float) -> bool:
        """Until the child reaches ``stage`` or a later one (True) or exits (False)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.stage is not None and STAGES.index(self.stage) >= STAGES.index(stage):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        raise AssertionError(f"no stage {stage} within {timeout} s:\n{''.join(self.lines[-20:])}")

    def kill(self) -> str | None:
        stage = self.stage
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=10)
        return stage


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("crash")
    ensure_classifiers(tmp / "clf", mp)
    glue = write_glue_mrpc(tmp / "glue")
    model = write_tiny_model(tmp / "tiny-bert")
    script = tmp / "attn_run.py"
    script.write_text(RUNNER, encoding="utf-8")
    yield tmp, script, model, glue
    mp.undo()


@pytest.mark.slow
def test_sigkill_at_every_stage_then_rerun_is_byte_identical(setup):
    tmp, script, model, glue = setup
    env = env_for_child()
    ref_out, victim = tmp / "run-ref-q7", tmp / "run-kill-q7"
    # the uninterrupted reference runs beside the attack (separate folders, separate processes)
    ref = subprocess.Popen(
        attn_run_cmd(script, ref_out, model, glue),
        env=env,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    rng = random.Random(KILL_SEED)
    kills: list[tuple[str, str | None, float]] = []  # (aimed at, hit, delay)
    partial_seen: list[str] = []
    starts = 0
    for target in STAGES:
        child = Child(attn_run_cmd(script, victim, model, glue), env, tmp)
        starts += 1
        if not child.wait_for_stage(target, timeout=900):
            # finished (or failed) before we got there: a failure is a finding, a finish ends the attack
            child.reader.join(timeout=10)
            assert child.proc.returncode == 0, "".join(child.lines[-30:])
            break
        delay = rng.uniform(0.0, 2.5)
        time.sleep(delay)
        if child.proc.poll() is not None:  # finished the whole run within the delay
            child.reader.join(timeout=10)
            assert child.proc.returncode == 0, "".join(child.lines[-30:])
            break
        hit = child.kill()
        kills.append((target, hit, round(delay, 2)))
        bad = partial_files(victim)
        partial_seen += [f"after kill {len(kills)} ({hit}): {b}" for b in bad]
    else:
        child = None
    # run to completion
    done = subprocess.run(
        attn_run_cmd(script, victim, model, glue), env=env, cwd=tmp, capture_output=True, text=True, timeout=1200
    )
    starts += 1
    assert done.returncode == 0, done.stdout + done.stderr
    ref_log, _ = ref.communicate(timeout=1200)
    assert ref.returncode == 0, ref_log

    leftovers = sorted(str(p.relative_to(victim)) for p in victim.rglob("*") if p.is_file() and is_temporary(p, victim))
    hit_stages = sorted({h for _, h, _ in kills if h}, key=STAGES.index)
    print(f"\nkill points: {len(kills)} SIGKILLs over {starts} starts of attn run; stages hit: {', '.join(hit_stages)}")
    for aimed, hit, delay in kills:
        print(f"  aimed at {aimed:<12} hit {hit or '-':<12} {delay:.2f} s after the stage began")
    print(f"  temporary files left by killed writes (never read, ignored by the stamps): {len(leftovers)}")

    assert not partial_seen, "\n".join(partial_seen)
    assert len(kills) >= 5, kills
    a, timed_a = comparable(ref_out)
    b, timed_b = comparable(victim)
    print(
        f"  files compared: {len(a)}; timing fields ({', '.join(sorted(TIMING_KEYS))}) left out of: "
        f"{', '.join(sorted(timed_a | timed_b))}"
    )
    assert sorted(a) == sorted(b), (sorted(set(a) ^ set(b)))[:20]
    differ = [k for k in a if a[k] != b[k]]
    assert not differ, f"{len(differ)} files differ from the uninterrupted run: {differ[:20]}"
