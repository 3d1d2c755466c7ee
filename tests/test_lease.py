"""The lease lock of attnpatterns.sweep.lease: two writers never overlap, an expired lease is broken, a live holder on
another host is respected whatever its PID, and a holder that lost its lease knows it."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time

from attnpatterns.sweep.lease import LeaseLock


def _contend(path: str, log: str, rounds: int, lease: float) -> None:
    """Take the lock ``rounds`` times; while holding it, append start/end lines to a shared log (slowly)."""
    done = 0
    while done < rounds:
        lock = LeaseLock(path, lease=lease)
        if lock.acquire():
            try:
                with open(log, "a") as fh:
                    fh.write(f"start {os.getpid()} {time.time()}\n")
                time.sleep(0.05)
                with open(log, "a") as fh:
                    fh.write(f"end {os.getpid()} {time.time()}\n")
            finally:
                lock.release()
            done += 1
        else:
            time.sleep(0.005)


def test_two_processes_never_hold_it_at_once(tmp_path):
    path, log = tmp_path / "x.lock", tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_contend, args=(str(path), str(log), 15, 5.0)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = log.read_text().split("\n")[:-1]
    assert len(lines) == 2 * 2 * 15
    holder = None
    for line in lines:  # strictly alternating start/end of the same process: no two writers at once
        what, pid, _ = line.split()
        if what == "start":
            assert holder is None, "two processes held the lock at once"
            holder = pid
        else:
            assert holder == pid
            holder = None
    assert not path.exists()


def _write_lock(path, host, pid, expires, token="other-token"):
    path.write_text(json.dumps({"host": host, "pid": pid, "token": token, "expires": expires}))


def test_live_holder_on_another_host_is_respected_whatever_its_pid(tmp_path):
    path = tmp_path / "x.lock"
    # a PID that does not exist here: the old PID test would have called this holder dead
    _write_lock(path, "node-7.cluster", 999_999_999, time.time() + 60)
    lock = LeaseLock(path, lease=60)
    assert not lock.acquire() and not lock.held
    assert json.loads(path.read_text())["host"] == "node-7.cluster"  # untouched


def test_expired_lease_is_broken_and_taken(tmp_path):
    path = tmp_path / "x.lock"
    _write_lock(path, "node-7.cluster", 123, time.time() - 1)
    lock = LeaseLock(path, lease=60)
    assert lock.acquire() and lock.held
    info = json.loads(path.read_text())
    assert info["token"] == lock.token and info["host"] == lock.host and info["expires"] > time.time() + 50
    lock.release()
    assert not path.exists()


def test_holder_renews_and_a_lost_lease_is_known(tmp_path):
    path = tmp_path / "x.lock"
    t = [1000.0]
    holder = LeaseLock(path, lease=10, clock=lambda: t[0], renew=False)
    assert holder.acquire()
    t[0] += 8  # within the lease: a renewal keeps it
    assert holder.renew() and json.loads(path.read_text())["expires"] == 1018.0
    other = LeaseLock(path, lease=10, clock=lambda: t[0], host="node-2", renew=False)
    t[0] += 9  # 17 < 18: still live
    assert not other.acquire()
    t[0] += 2  # 19 > 18: expired (the holder stalled), taken over
    assert other.acquire()
    assert not holder.renew() and not holder.held  # the old holder learns it lost the lock
    holder.release()  # and releasing does not remove the new holder's lock
    assert json.loads(path.read_text())["token"] == other.token
    other.release()


def test_background_renewal_outlives_the_lease(tmp_path):
    path = tmp_path / "x.lock"
    with LeaseLock(path, lease=0.6) as lock:
        assert lock.held
        time.sleep(1.5)  # more than two leases: the heartbeat renewed it
        assert lock.held and json.loads(path.read_text())["expires"] > time.time()
        assert not LeaseLock(path, lease=0.6).acquire()
    assert not path.exists()


def test_a_half_written_lock_is_not_broken_while_young(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text("")  # a creator between O_EXCL and its write
    assert not LeaseLock(path, lease=60).acquire()
    old = time.time() - 120
    os.utime(path, (old, old))  # the creator died there long ago
    lock = LeaseLock(path, lease=60)
    assert lock.acquire()
    lock.release()


def test_holder_killed_on_this_host_is_broken_at_once(tmp_path, dead_pid):
    """A lock whose holder ran here and is gone (SIGKILL, crash) is taken although its lease still runs: a rerun
    right after a crash does the work instead of skipping it for the rest of the lease."""
    import socket

    path = tmp_path / "x.lock"
    _write_lock(path, socket.gethostname(), dead_pid, time.time() + 60)
    lock = LeaseLock(path, lease=60)
    assert lock.acquire() and lock.held
    assert json.loads(path.read_text())["token"] == lock.token
    lock.release()
    assert not path.exists()


def test_live_holder_on_this_host_is_respected(tmp_path):
    import socket

    path = tmp_path / "x.lock"
    _write_lock(path, socket.gethostname(), os.getppid(), time.time() + 60)  # the parent: alive
    assert not LeaseLock(path, lease=60).acquire()
    assert json.loads(path.read_text())["pid"] == os.getppid()
