"""The executors of a sweep: one after the other in this process, or as Ray tasks on a cluster."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from attnpatterns.errors import UserError
from attnpatterns.sweep.jobs import (
    run_job,
)
from attnpatterns.sweep.plan import Job, SweepConfig

log = logging.getLogger("attnpatterns")

# ------------------------------------------------------------------------------------------------- executors


class LocalExecutor:
    """Jobs one after the other in this process."""

    name = "local"
    capacity = 1

    def __init__(self, cfg: SweepConfig):
        self.cfg = cfg
        self._done: list[tuple[str, dict]] = []

    def submit(self, job: Job) -> None:
        self._done.append((job.id, run_job(self.cfg, job, self.cfg.threads)))

    def wait(self) -> list[tuple[str, dict]]:
        out, self._done = self._done, []
        return out

    def close(self) -> None:
        pass


class ProcessExecutor:
    """Jobs in ``workers`` processes of this machine at once (spawned: each its own CUDA context), e.g. several
    training jobs sharing one GPU; the driver gives a free process the next ready job."""

    name = "processes"

    def __init__(self, cfg: SweepConfig, workers: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        if workers < 1:
            raise UserError(f"--workers must be at least 1 (got {workers}).")
        self.cfg = cfg
        self.capacity = int(workers)
        self._pool = ProcessPoolExecutor(max_workers=self.capacity, mp_context=mp.get_context("spawn"))
        self._futures: dict[Any, str] = {}

    def submit(self, job: Job) -> None:
        threads = self.cfg.threads if self.cfg.threads is not None else 1
        self._futures[self._pool.submit(run_job, self.cfg, job, threads)] = job.id

    def wait(self) -> list[tuple[str, dict]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        out = []
        for f in done:
            jid = self._futures.pop(f)
            try:
                out.append((jid, f.result()))
            except Exception as e:  # noqa: BLE001 - a dead worker process is a failed attempt, retried
                out.append((jid, {"ok": False, "error": f"worker process failed: {type(e).__name__}: {e}"}))
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """A HOST:PORT or ray://HOST:PORT address must accept a TCP connection (Ray itself would retry for minutes)."""
    hostport = address.split("://", 1)[1] if "://" in address else address
    if address in ("auto", "local") or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise UserError(
            f"nothing answers at Ray address '{address}' ({type(e).__name__}: {e}); start the head with "
            "'ray start --head --port PORT' there, or check --address."
        ) from None


def _ray_task(cfg: SweepConfig, job: Job, threads: int | None) -> dict:
    return run_job(cfg, job, threads)


class RayExecutor:
    """Each job a Ray task (``num_cpus``/``num_gpus`` from the job) on the cluster at ``address``."""

    name = "ray"
    capacity = 1 << 30  # Ray queues tasks until their resources are free

    def __init__(self, cfg: SweepConfig, address: str | None):
        try:
            import ray
        except ImportError:
            raise UserError(
                "the ray executor needs Ray: pip install 'attnpatterns[ray]' (or pip install ray)."
            ) from None
        address = address or os.environ.get("RAY_ADDRESS")
        if not address:
            raise UserError(
                "--executor ray needs --address (or $RAY_ADDRESS): the head's address, e.g. HEAD_IP:6379 or "
                "ray://HEAD_IP:10001; start a head with 'ray start --head'."
            )
        self.ray = ray
        _check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise UserError(
                f"cannot connect to Ray at '{address}' ({first}); check --address and that 'ray start "
                "--head' runs there (ray:// addresses also need pip install 'ray[client]')."
            ) from None
        except ImportError as e:
            raise UserError(
                f"connecting to '{address}' needs more of Ray ({e.name or e}); pip install 'ray[client]' "
                "for ray:// addresses."
            ) from None
        self.cfg = cfg
        self._remote = ray.remote(_ray_task)
        self._refs: dict[Any, str] = {}
        self.resources = ray.cluster_resources()
        if cfg.num_gpus > 0 and self.resources.get("GPU", 0) < cfg.num_gpus:
            ray.shutdown()
            raise UserError(
                f"the Ray cluster at '{address}' has {self.resources.get('GPU', 0):g} GPU(s) but each job asks "
                f"for {cfg.num_gpus:g}; add GPU nodes, use --device cpu, or lower --gpus-per-job."
            )
        if self.resources.get("CPU", 0) < cfg.cpus_per_job:
            ray.shutdown()
            raise UserError(
                f"the Ray cluster at '{address}' has {self.resources.get('CPU', 0):g} CPU(s) but each job asks "
                f"for {cfg.cpus_per_job:g}; lower --cpus-per-job."
            )

    def submit(self, job: Job) -> None:
        threads = self.cfg.threads if self.cfg.threads is not None else max(1, int(job.num_cpus))
        ref = self._remote.options(
            num_cpus=job.num_cpus, num_gpus=job.num_gpus, max_retries=0, name=job.id.replace("/", ":")
        ).remote(self.cfg, job, threads)
        self._refs[ref] = job.id

    def wait(self) -> list[tuple[str, dict]]:
        if not self._refs:
            return []
        ready, _ = self.ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in ready:
            jid = self._refs.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except Exception as e:  # the worker died (out of memory, node lost): retryable
                outcome = {
                    "id": jid,
                    "ok": False,
                    "user_error": False,
                    "seconds": 0.0,
                    "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                }
            out.append((jid, outcome))
        return out

    def close(self) -> None:
        for ref in list(self._refs):
            self.ray.cancel(ref, force=True)
        self._refs.clear()
        self.ray.shutdown()
