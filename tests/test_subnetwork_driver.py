"""The study's subnetworks driver (results/minilm/run_subnetworks.sh): job locks across drivers.

The driver runs each (setting, task, method, seeds, subnetwork) cell once under a lock folder holding its
worker's pid. A driver started while another runs must leave the running one's locks alone (it used to clear
them all and start the same cells again); a lock whose worker is gone is cleared. `attn` is replaced by a
fake that records its starts and writes the cell's result after a short sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "results" / "minilm" / "run_subnetworks.sh"
TASK = "MRPC"

FAKE_ATTN = """#!/usr/bin/env bash
while [[ $# -gt 0 ]]; do
  case $1 in
    --task) task=$2; shift;; --seeds) seed=$2; shift;; --method) method=$2; shift;;
    --run) run=$2; shift;; --settings) setting=$2; shift;; --subnets) sub=$2; shift;;
  esac
  shift
done
echo "$method $sub" >> "$run/starts.log"
sleep "${FAKE_SECONDS:-1}"
out=$run/$task/seed_$seed/subnetworks/$method/$sub
mkdir -p "$out" && echo '{}' > "$out/$setting.json"
"""

pytestmark = pytest.mark.skipif(os.name != "posix", reason="a bash script")


def _run_folder(tmp_path: Path) -> tuple[Path, Path]:
    run = tmp_path / "run"
    seed = run / TASK / "seed_1"
    (seed / "finetuned").mkdir(parents=True)
    (seed / "finetuned" / "metrics.json").write_text("{}")
    for method in ("structured", "magnitude"):
        (seed / method).mkdir()
        (seed / method / "summary.json").write_text("{}")
    fake = tmp_path / "attn"
    fake.write_text(FAKE_ATTN)
    fake.chmod(0o755)
    return run, fake


def _driver(run: Path, fake: Path, log: Path, **env: str) -> subprocess.Popen:
    full = {
        **os.environ,
        "ATTN": str(fake),
        "RUN": str(run),
        "TASKS": TASK,
        "SEEDS": "1",
        "SUPER_FROM": "1",
        "SETTINGS": "retrained",
        "CELLS": "1",
        "WORKERS": "1",
        "TABLE": "0",
        "STAGGER": "0",
        "POLL": "1",
        **env,
    }
    return subprocess.Popen(
        ["bash", str(DRIVER)],
        cwd=ROOT,
        env=full,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers in one process group, for the test that kills it
    )


def _starts(run: Path) -> list[str]:
    log = run / "starts.log"
    return log.read_text().splitlines() if log.is_file() else []


def _kill(proc: subprocess.Popen) -> None:
    """Stop a driver and its workers (one process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait(proc: subprocess.Popen, log: Path) -> None:
    try:
        assert proc.wait(timeout=120) == 0, log.read_text()
    finally:
        _kill(proc)


def _until(done, proc: subprocess.Popen, log: Path) -> None:
    """Wait (at most a minute) for ``done()`` while the driver ``proc`` still runs."""
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.1)


def test_a_second_driver_leaves_the_running_drivers_jobs_alone(tmp_path):
    run, fake = _run_folder(tmp_path)
    first = _driver(run, fake, tmp_path / "first.log", FAKE_SECONDS="2")
    _until(lambda: _starts(run), first, tmp_path / "first.log")  # the first driver holds its first cell
    second = _driver(run, fake, tmp_path / "second.log", FAKE_SECONDS="2")
    _wait(first, tmp_path / "first.log")
    _wait(second, tmp_path / "second.log")
    starts = _starts(run)
    cells = {f"{m} {s}" for m in ("structured", "magnitude", "super") for s in ("good", "random", "bad")}
    assert sorted(starts) == sorted(cells), starts  # every cell once: none started twice
    assert not list((run / ".subnetwork-locks").iterdir())  # every lock released


def test_a_lock_whose_worker_is_gone_is_cleared(tmp_path):
    run, fake = _run_folder(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock = run / ".subnetwork-locks" / f"retrained-{TASK}-structured-1-good"
    lock.mkdir(parents=True)
    (lock / "pid").write_text(f"{gone.pid}\n")
    (run / ".subnetwork-locks" / f"failed-retrained-{TASK}-structured-1-random").touch()
    driver = _driver(run, fake, tmp_path / "driver.log", FAKE_SECONDS="0")
    _wait(driver, tmp_path / "driver.log")
    assert "structured good" in _starts(run) and "structured random" in _starts(run)
    assert not lock.exists()


def test_a_lock_without_a_pid_is_kept_for_a_minute_then_cleared(tmp_path):
    # a worker writes its pid just after taking the lock: a driver starting in between must not clear it, but a
    # pid-less lock older than a minute is a worker killed in that gap
    run, fake = _run_folder(tmp_path)
    locks = run / ".subnetwork-locks"
    fresh = locks / f"retrained-{TASK}-structured-1-good"
    stale = locks / f"retrained-{TASK}-structured-1-random"
    fresh.mkdir(parents=True)
    stale.mkdir()
    old = time.time() - 120
    os.utime(stale, (old, old))
    driver = _driver(run, fake, tmp_path / "driver.log", FAKE_SECONDS="0")
    try:
        _until(lambda: len(_starts(run)) >= 8, driver, tmp_path / "driver.log")  # all but the freshly locked cell
        time.sleep(1.5)  # a look or more later (POLL=1): still waiting on the fresh lock
        assert "structured random" in _starts(run) and "structured good" not in _starts(run)
        assert fresh.is_dir() and driver.poll() is None
    finally:
        _kill(driver)
