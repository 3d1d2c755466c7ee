"""A lock file that works on a shared filesystem: atomically created, held under a lease its holder renews.

The lock is a small JSON file ``{"host", "pid", "token", "expires"}`` created with ``O_CREAT | O_EXCL`` (atomic on
local filesystems and on NFSv3+). Its holder rewrites it (write a temporary file, then ``os.replace``) every
``lease / 3`` seconds from a background thread, pushing ``expires`` forward. Another process breaks the lock when its
lease has **expired**, or at once when the holder ran on **this host** and its process is gone (killed, crashed): a
rerun right after a crash then takes over instead of skipping the work for the rest of the lease. A holder on another
host is never judged by its PID (``os.kill(pid, 0)`` sees only the local host, so a live holder on another node
would look dead); there only the lease counts.

Breaking is itself race-free: the breaker renames the expired file to a name of its own (only one rename of a file
succeeds), reads what it renamed, and puts it back (``os.link``, which fails if a new lock exists) when it turns out
to have been renewed in between. A holder that finds its token gone from the file has lost the lock; :attr:`held`
turns False and the caller must not write its result.

Clocks: ``expires`` is the holder's wall clock; hosts sharing a run folder must agree within the lease (NTP).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Callable

DEFAULT_LEASE = 120.0


class LeaseLock:
    """``with LeaseLock(path) as lock: if lock.held: ...`` or :meth:`acquire` / :meth:`release`."""

    def __init__(
        self,
        path: str | os.PathLike,
        lease: float = DEFAULT_LEASE,
        *,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
        pid: int | None = None,
        renew: bool = True,
    ):
        if lease <= 0:
            raise ValueError("lease must be positive")
        self.path = Path(path)
        self.lease = float(lease)
        self.clock = clock
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.token = secrets.token_hex(8)
        self.renew_in_background = renew
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ state

    @property
    def held(self) -> bool:
        """True while this object holds the lock (False after :meth:`release` or once it was lost)."""
        return self._held

    def read(self) -> dict | None:
        """The lock file's content, or None when there is no lock (or it is being written this instant)."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        return info if isinstance(info, dict) and {"token", "expires"} <= set(info) else None

    def _content(self) -> bytes:
        return json.dumps(
            {"host": self.host, "pid": self.pid, "token": self.token, "expires": self.clock() + self.lease}
        ).encode()

    # ------------------------------------------------------------------ acquire, renew, release

    def acquire(self) -> bool:
        """Take the lock if it is free or its lease has expired; False when a live lease holds it. Never waits."""
        if self._held:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._break_if_expired():
                    return False
                continue
            try:
                os.write(fd, self._content())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._held = True
            if self.renew_in_background:
                self._stop.clear()
                self._thread = threading.Thread(target=self._heartbeat, name=f"lease:{self.path.name}", daemon=True)
                self._thread.start()
            return True
        return False

    def _break_if_expired(self) -> bool:
        """True when the lock file was expired and is now gone (so creating it may be tried again)."""
        info = self.read()
        if info is None:
            try:  # no readable content: a creator between O_EXCL and its write, or a crash right there
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return True
            if age < self.lease:
                return False
        gone = info is not None and self._holder_is_gone(info)
        if info is not None and float(info["expires"]) > self.clock() and not gone:
            return False
        aside = self.path.with_name(f"{self.path.name}.broken-{self.token}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True  # someone else broke or released it
        taken = _read_json(aside)
        renewed = taken is not None and (
            info is None
            or taken.get("token") != info.get("token")
            or (float(taken.get("expires", 0)) > self.clock() and not gone)
        )
        if renewed:  # renewed (or replaced) between our read and our rename: put it back unless a new lock exists
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        return True

    def _holder_is_gone(self, info: dict) -> bool:
        """True when the lock was taken on this host by a process that no longer exists (its lease is void)."""
        if info.get("host") != self.host or not isinstance(info.get("pid"), int) or info["pid"] == os.getpid():
            return False
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists but is not ours to signal (another user): alive
            return False
        return False

    def renew(self) -> bool:
        """Push the lease forward; False (and :attr:`held` False) when the lock is no longer ours."""
        if not self._held:
            return False
        info = self.read()
        if info is None or info.get("token") != self.token:
            self._held = False
            return False
        tmp = self.path.with_name(f".{self.path.name}.{self.token}.tmp")
        tmp.write_bytes(self._content())
        os.replace(tmp, self.path)
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease / 3):
            if not self.renew():
                return

    def release(self) -> None:
        """Give the lock up (only if it is still ours)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._thread = None
        if self._held:
            info = self.read()
            if info is not None and info.get("token") == self.token:
                self.path.unlink(missing_ok=True)
        self._held = False

    def __enter__(self) -> "LeaseLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_json(path: Path) -> dict | None:
    try:
        out = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    return out if isinstance(out, dict) else None
