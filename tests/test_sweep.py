"""``attn sweep`` on a tiny random BERT and a tiny synthetic MRPC: the local executor makes what ``attn run`` makes
(a later ``attn run`` finds nothing to do), a rerun submits nothing, a failing job is retried with its error kept,
a job that keeps failing holds back its dependants, and a sweep through a real local Ray head on 127.0.0.1 gives
the same masks and metrics as the local executor. Also: bf16 autocast is a no-op on CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_pipeline import TINY, ensure_classifiers, write_glue_mrpc, write_tiny_model

SEEDS = [1, 2]
# bookkeeping that names the run folder, the time or the executor, not results
TIMING_KEYS = ("started", "finished", "updated")


def _cfg(tmp: Path, out: Path, **kw):
    from attnpatterns.sweep.driver import SweepConfig

    return SweepConfig(
        out=out,
        model=str(tmp / "tiny-bert"),
        tasks=["MRPC"],
        seeds=SEEDS,
        data_dir=str(tmp / "glue"),
        overrides=TINY,
        threads=1,
        **kw,
    )


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """A whole tiny sweep (every job kind) on the local executor, one torch thread (as a 1-CPU Ray task)."""
    import torch

    from attnpatterns.sweep.driver import run_sweep

    threads = torch.get_num_threads()
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("sweep")
    ensure_classifiers(tmp / "clf", mp)
    write_glue_mrpc(tmp / "glue")
    write_tiny_model(tmp / "tiny-bert")
    cfg = _cfg(tmp, tmp / "local")
    res = run_sweep(cfg, "local", show_progress=False)
    yield cfg, res, tmp
    torch.set_num_threads(threads)
    mp.undo()


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _snapshot(root: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------------- local


def test_plan_declares_every_job_with_its_dependencies(local_sweep):
    from attnpatterns.sweep.driver import plan

    cfg, res, _ = local_sweep
    jobs = {j.id: j for j in plan(cfg)}
    kinds = sorted({j.kind for j in jobs.values()})
    assert kinds == ["classify", "distribution", "pipeline", "report", "subnet", "survivors"]
    # per seed: 3 methods (the super-survivors' too) x 3 subnetworks, each job one seed's subnetwork
    assert sum(1 for j in jobs.values() if j.kind == "subnet") == 2 * 3 * 3
    assert jobs["subnet/MRPC/seed_1/magnitude/random"].deps == ("pipeline/MRPC/seed_1",)
    assert "MRPC/seed_1/magnitude/mask.safetensors" in jobs["subnet/MRPC/seed_1/magnitude/random"].inputs
    sup = jobs["subnet/MRPC/seed_2/super/bad"]
    assert "MRPC/super/super-survivors.json" in sup.inputs and sup.params["seeds"] == [2]
    assert set(sup.deps) == {"pipeline/MRPC/seed_1", "pipeline/MRPC/seed_2", "survivors/MRPC"}  # the set needs all
    assert set(sup.outputs) == {f"MRPC/seed_2/subnetworks/super/bad/{s}.json" for s in ("pruned", "retrained")}
    order = list(jobs)
    for j in jobs.values():  # dependencies come first
        assert all(order.index(d) < order.index(j.id) for d in j.deps), j.id
        assert j.num_cpus == 1.0 and j.num_gpus == 0.0


def test_the_sweep_jobs_are_the_pipeline_units(local_sweep):
    """The jobs come from Pipeline.units: together they make exactly the units' outputs, and a job that runs one
    unit (survivors, classify, distribution) takes exactly its inputs (the classifier files included)."""
    from attnpatterns.run.pipeline import STAGES, Pipeline
    from attnpatterns.sweep.driver import plan

    cfg, _, _ = local_sweep
    jobs = plan(cfg)
    pipe = Pipeline(cfg.run_config())

    def rel(x):
        return str(Path(x).relative_to(cfg.out)) if Path(x).is_relative_to(cfg.out) else str(x)

    units = {s: {u.key: u for u in pipe.units(s)} for s in STAGES if s != "report"}
    unit_outputs = {rel(o) for us in units.values() for u in us.values() for o in u.outputs}
    job_outputs = [o for j in jobs if j.kind != "report" for o in j.outputs]
    assert sorted(job_outputs) == sorted(unit_outputs)  # each output made by one job, none missing
    by_id = {j.id: j for j in jobs}
    one_to_one = {
        "survivors/MRPC": units["survivors"]["MRPC"],
        "distribution/MRPC": units["classify"]["MRPC/distribution"],
    }
    one_to_one |= {f"classify/MRPC/seed_{s}": units["classify"][f"MRPC/seed_{s}"] for s in SEEDS}
    for jid, u in one_to_one.items():
        assert set(by_id[jid].inputs) == {rel(x) for x in u.inputs}, jid
    assert any(i.endswith("pattern-cnn-raw.safetensors") for i in by_id["classify/MRPC/seed_1"].inputs)
    # a job's inputs from the run folder are made by the jobs it depends on
    made_by = {o: j.id for j in jobs for o in j.outputs}
    for j in jobs:
        for i in j.inputs:
            if i in made_by:
                assert made_by[i] in j.deps or made_by[i] == j.id, (j.id, i)


def test_local_sweep_makes_what_attn_run_makes(local_sweep):
    from attnpatterns.run.pipeline import run_pipeline

    cfg, res, _ = local_sweep
    assert res.ok and res.ids("failed") == [] and len(res.ids("ran")) == len(res.jobs) == 25
    run = cfg.out
    for seed in SEEDS:
        sd = run / "MRPC" / f"seed_{seed}"
        for method in ("structured", "magnitude", "super"):
            for sub in ("good", "random", "bad"):
                for setting in ("pruned", "retrained"):
                    r = json.loads((sd / "subnetworks" / method / sub / f"{setting}.json").read_text())
                    assert (r["seed"], r["method"], r["subnet"], r["setting"]) == (seed, method, sub, setting)
    assert (run / "report" / "index.html").is_file()
    for j in res.jobs:
        m = json.loads(j.marker(run).read_text())
        assert m["status"] == "done" and len(m["attempts"]) == 1 and m["attempts"][0]["ok"]
    # the same folder through 'attn run': every stage finds its work done (the subnetworks made per seed and
    # subnetwork by the sweep are adopted, not redone)
    before = {p: t for p, t in _snapshot(run).items() if ".stages" not in p.parts and p.name != "config.json"}
    again = run_pipeline(cfg.run_config())
    assert again.ran == 0, {k: v.ran for k, v in again.stages.items()}
    assert sorted(again.stages["subnetworks"].adopted) == ["MRPC/magnitude", "MRPC/structured", "MRPC/super"]
    after = {p: t for p, t in _snapshot(run).items() if ".stages" not in p.parts and p.name != "config.json"}
    assert after == before


def test_rerun_submits_nothing(local_sweep, monkeypatch):
    from attnpatterns.sweep import driver as sweep

    cfg, res, _ = local_sweep
    submitted = []
    monkeypatch.setattr(sweep.LocalExecutor, "submit", lambda self, job: submitted.append(job.id))
    before = _snapshot(cfg.out / "MRPC")
    again = sweep.run_sweep(cfg, "local", show_progress=False)
    assert submitted == [] and again.ok and len(again.ids("done")) == len(res.jobs)
    assert _snapshot(cfg.out / "MRPC") == before
    # a missing output makes its job (only it) not done
    victim = next(j for j in res.jobs if j.id == "subnet/MRPC/seed_2/structured/bad")
    states = dict((j.id, done) for j, done in sweep.job_states(cfg))
    assert all(states.values())
    moved = cfg.out / victim.outputs[-1]
    moved.rename(moved.with_suffix(".bak"))
    try:
        states = dict((j.id, done) for j, done in sweep.job_states(cfg))
        assert [k for k, v in states.items() if not v] == [victim.id]
    finally:
        moved.with_suffix(".bak").rename(moved)


def _copy_without(cfg, tmp: Path, name: str, drop_jobs: list[str], drop_files: list[str]):
    """A copy of the finished sweep with some jobs' markers and outputs removed."""
    out = tmp / name
    shutil.copytree(cfg.out, out)
    new = _cfg(tmp, out)
    from attnpatterns.sweep.driver import plan

    jobs = {j.id: j for j in plan(new)}
    for jid in drop_jobs:
        jobs[jid].marker(out).unlink()
    for f in drop_files:
        (out / f).unlink()
    return new


def test_a_failing_job_is_retried_and_its_error_kept(local_sweep, monkeypatch):
    from attnpatterns.sweep import driver as sweep

    cfg, _, tmp = local_sweep
    new = _copy_without(cfg, tmp, "retry", ["survivors/MRPC"], ["MRPC/super/super-survivors.json"])
    real = sweep.JOB_FUNCTIONS["survivors"]
    calls = []

    def flaky(c, pipe, job):
        calls.append(job.id)
        if len(calls) == 1:
            raise RuntimeError("worker lost its disk")
        return real(c, pipe, job)

    monkeypatch.setitem(sweep.JOB_FUNCTIONS, "survivors", flaky)
    res = sweep.run_sweep(new, "local", show_progress=False)
    assert res.ok and res.ids("ran") == ["survivors/MRPC"] and calls == ["survivors/MRPC"] * 2
    m = json.loads(next(j for j in sweep.plan(new) if j.id == "survivors/MRPC").marker(new.out).read_text())
    assert m["job"] == "survivors/MRPC" and m["status"] == "done"
    assert [a["ok"] for a in m["attempts"]] == [False, True]
    assert (
        "RuntimeError: worker lost its disk" in m["attempts"][0]["error"] and "flaky" in m["attempts"][0]["traceback"]
    )
    assert (new.out / "MRPC" / "super" / "super-survivors.json").read_bytes() == (
        cfg.out / "MRPC" / "super" / "super-survivors.json"
    ).read_bytes()


def test_a_job_that_keeps_failing_holds_back_its_dependants(local_sweep, monkeypatch):
    from attnpatterns.errors import UserError
    from attnpatterns.sweep import driver as sweep

    cfg, _, tmp = local_sweep
    dependants = ["subnet/MRPC/seed_1/super/good", "distribution/MRPC", "report"]
    new = _copy_without(cfg, tmp, "fail", ["survivors/MRPC"] + dependants, [])
    calls = []

    def broken(c, pipe, job):
        calls.append(job.id)
        raise RuntimeError("always")

    monkeypatch.setitem(sweep.JOB_FUNCTIONS, "survivors", broken)
    new.retries = 1
    res = sweep.run_sweep(new, "local", show_progress=False)
    assert not res.ok and res.ids("failed") == ["survivors/MRPC"] and len(calls) == 2  # 1 + 1 retry
    assert res.ids("blocked") == dependants and res.ids("ran") == []
    m = json.loads((new.out / ".sweep" / "jobs" / "survivors__MRPC.json").read_text())
    assert m["status"] == "failed" and [a["error"] for a in m["attempts"]] == ["RuntimeError: always"] * 2
    # a UserError would fail the same way again: not retried
    calls.clear()

    def user_error(c, pipe, job):
        calls.append(job.id)
        raise UserError("bad input; fix it")

    monkeypatch.setitem(sweep.JOB_FUNCTIONS, "survivors", user_error)
    res = sweep.run_sweep(new, "local", show_progress=False)
    assert res.ids("failed") == ["survivors/MRPC"] and calls == ["survivors/MRPC"]


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_dry_run_lists_the_jobs_and_bad_input_is_one_line(local_sweep, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    cfg, res, tmp = local_sweep
    runner = CliRunner()
    base = ["sweep", "--tasks", "MRPC", "--seeds", "1,2", "--model", cfg.model, "--data-dir", cfg.data_dir]
    r = runner.invoke(app, base + ["--out", str(tmp / "fresh"), "--dry-run"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("25 job(s): 25 to run, 0 done")
    assert any(l.split()[:2] == ["todo", "subnet/MRPC/seed_1/magnitude/bad"] for l in lines)
    assert not (tmp / "fresh").exists()  # a dry run writes nothing
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for extra, msg in (
        (["--executor", "slurm"], "unknown --executor 'slurm'"),
        (["--executor", "ray"], "--executor ray needs --address"),
        (["--address", "127.0.0.1:1"], "--address is for --executor ray"),
        (["--max-train-examples", "0"], "--max-train-examples must be at least 1"),
        (["--seeds", "1,1"], "repeats a seed"),
    ) + (
        ((["--executor", "ray", "--address", f"127.0.0.1:{_free_port()}"], "nothing answers at Ray address"),)
        if importlib.util.find_spec("ray")
        else ()
    ):
        r = runner.invoke(app, base + ["--out", str(tmp / "bad")] + extra)
        assert r.exit_code == 2, (extra, r.output)
        err = r.stderr if hasattr(r, "stderr") else r.output
        assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (extra, err)


# ------------------------------------------------------------------------------------------------- bf16


def test_bf16_option_is_a_no_op_on_cpu(tmp_path):
    from attnpatterns.finetune import FinetuneConfig, finetune

    glue = write_glue_mrpc(tmp_path / "glue", n_train=16, n_dev=8)
    model = write_tiny_model(tmp_path / "tiny-bert")
    runs = {}
    for bf16 in (True, False):
        c = FinetuneConfig(
            task="MRPC", seed=3, model=str(model), epochs=1, batch_size=8, max_length=32, data_dir=str(glue), bf16=bf16
        )
        runs[bf16] = (c, finetune(c, tmp_path / f"bf16_{bf16}", show_progress=False))
    assert runs[True][0].identity() == runs[False][0].identity()
    assert runs[True][1].metrics == runs[False][1].metrics
    assert (tmp_path / "bf16_True" / "model.safetensors").read_bytes() == (
        tmp_path / "bf16_False" / "model.safetensors"
    ).read_bytes()
    assert "bf16" in FinetuneConfig(task="MRPC", seed=3, device="cuda").identity()  # on a GPU it defines the run
    assert "bf16" not in FinetuneConfig(task="MRPC", seed=3, device="cuda", bf16=False).identity()


# ------------------------------------------------------------------------------------------------- Ray


def _children(pid: int) -> list[int]:
    """``pid`` and every process below it (by parent id)."""
    parents: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def _listening(pids) -> list[str]:
    """The local addresses of the TCP sockets in LISTEN state held by ``pids`` (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    out = []
    for name, fam, n in (("tcp", socket.AF_INET, 4), ("tcp6", socket.AF_INET6, 16)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:
                continue
            hexaddr, port = f[1].split(":")
            raw = bytes.fromhex(hexaddr)
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, n, 4))  # /proc writes 32-bit words in host order
            out.append(f"{socket.inet_ntop(fam, raw)}:{int(port, 16)}")
    return out


def _is_loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0]
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1") or host.startswith("::ffff:127.")


@pytest.fixture
def ray_head(monkeypatch):
    """A private Ray head on 127.0.0.1 (2 CPUs, no dashboard), stopped and its processes gone afterwards."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'attnpatterns[ray]')")
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.is_file():
        pytest.skip("the ray command is not installed beside this python")
    # Ray turns --node-ip-address=127.0.0.1 into the machine's outward address and then listens on every interface;
    # with this switch (meant for single-machine Ray) the node keeps 127.0.0.1 and its servers bind to loopback only
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    log = open(Path(temp) / "head.log", "w")
    proc = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--include-dashboard=false",
            "--num-cpus=2",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
            "--object-store-memory=100000000",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"ray start exited with {proc.returncode}: {(Path(temp) / 'head.log').read_text()[-2000:]}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the Ray head did not come up within 90 s")
                time.sleep(0.3)
        yield {"address": f"127.0.0.1:{port}", "proc": proc}
    finally:
        # stop exactly the processes this fixture started (ray start, GCS, raylet, workers), not every Ray on the
        # machine as 'ray stop' would: SIGTERM, then SIGKILL what is left
        tree = _children(proc.pid)
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            for pid in tree:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + wait
            while time.monotonic() < end and any(Path(f"/proc/{p}").exists() and "(Z)" not in _state(p) for p in tree):
                time.sleep(0.2)
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _state(pid: int) -> str:
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
        return "(Z)" if st.rsplit(")", 1)[1].split()[0] == "Z" else "(R)"
    except OSError:
        return "(Z)"


def _normalise(x, root: Path):
    if isinstance(x, dict):
        return {k: _normalise(v, root) for k, v in x.items() if "seconds" not in k and k not in TIMING_KEYS}
    if isinstance(x, list):
        return [_normalise(v, root) for v in x]
    if isinstance(x, str):
        return x.replace(str(root), "<RUN>")
    return x


def _same_file(a: Path, b: Path, root_a: Path, root_b: Path) -> bool:
    if a.suffix == ".json":
        return _normalise(json.loads(a.read_text()), root_a) == _normalise(json.loads(b.read_text()), root_b)
    if a.suffix == ".safetensors":  # the header's metadata order is not fixed across processes: compare contents
        from safetensors import safe_open

        with safe_open(str(a), framework="numpy") as fa, safe_open(str(b), framework="numpy") as fb:
            if sorted(fa.keys()) != sorted(fb.keys()) or (fa.metadata() or {}) != (fb.metadata() or {}):
                return False
            return all(
                fa.get_tensor(k).dtype == fb.get_tensor(k).dtype
                and fa.get_tensor(k).tobytes() == fb.get_tensor(k).tobytes()
                for k in fa.keys()
            )
    return a.read_bytes() == b.read_bytes()


RAY_DRIVER = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_sweep import _cfg, _listening
from attnpatterns.sweep.driver import run_sweep
import ray

cfg = _cfg(Path({tmp!r}), Path({out!r}), analysis=False)
first = run_sweep(cfg, "ray", address={address!r}, show_progress=False)
again = run_sweep(cfg, "ray", address={address!r}, show_progress=False)
ray.init(address={address!r}, logging_level="WARNING", log_to_driver=False)
driver = _listening([os.getpid()])
ray.shutdown()
print("RESULT " + json.dumps({{"status": first.status, "attempts": first.attempts, "again": again.status,
                              "driver": driver, "pid": os.getpid()}}))
"""


@pytest.mark.slow
def test_ray_sweep_matches_the_local_one(local_sweep, ray_head):
    from attnpatterns.sweep.driver import plan

    cfg, _, tmp = local_sweep
    out = tmp / "ray"
    # the driver in its own process: Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when imported, and a hang is cut off
    script = RAY_DRIVER.format(
        tests=str(Path(__file__).parent), tmp=str(tmp), out=str(out), address=ray_head["address"]
    )
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=420, env=os.environ.copy()
    )
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(next(l for l in p.stdout.splitlines() if l.startswith("RESULT "))[7:])
    errors = {j: a[-1].get("error") for j, a in r["attempts"].items() if not a[-1]["ok"]}
    assert set(r["status"].values()) == {"ran"} and len(r["status"]) == 21, errors
    assert set(r["again"].values()) == {"done"}  # a rerun through Ray submits nothing
    # every job ran in a Ray worker, not in the driver
    pids = {a["pid"] for att in r["attempts"].values() for a in att}
    assert r["pid"] not in pids
    rcfg = _cfg(tmp, out, analysis=False)
    markers = [json.loads(j.marker(out).read_text()) for j in plan(rcfg)]
    assert {m["executor"] for m in markers} == {"ray"} and {m["status"] for m in markers} == {"done"}
    # nothing the cluster or the driver listens on is outside 127.0.0.1
    addrs = _listening(_children(ray_head["proc"].pid)) + r["driver"]
    assert addrs and all(_is_loopback(a) for a in addrs), addrs
    # the same results, file for file: masks byte for byte (safetensors: tensor for tensor), metrics value for value
    compared = 0
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out)
        if not f.is_file() or rel.parts[0] in (".sweep", ".stages"):
            continue
        g = cfg.out / rel
        assert g.is_file(), rel
        assert _same_file(f, g, out, cfg.out), rel
        compared += 1
    assert compared > 150
    for name in ("mask.json", "head_mask.npy", "mask.safetensors", "retrained.json", "pruned.json", "metrics.json"):
        assert any(out.rglob(name)), name


# ------------------------------------------------------------------------------------------------- one shared device


def test_processes_executor_matches_the_local_one_and_follows_the_cost_order(local_sweep, tmp_path):
    """--executor processes --workers 2 --costs F: two spawned processes at once (as jobs sharing one GPU), the
    same results file for file (the order of submission: the next test)."""
    from attnpatterns.sweep.driver import run_sweep

    cfg, _, tmp = local_sweep
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"slots": 2, "seconds": {"pipeline": 10, "survivors": 1, "subnet": {"MRPC": 4}}}))
    pcfg = _cfg(tmp, tmp_path / "proc", analysis=False)
    res = run_sweep(pcfg, "processes", show_progress=False, workers=2, costs=costs)
    assert res.ok and len(res.ids("ran")) == 21, {j: a[-1].get("error") for j, a in res.attempts.items()}
    pids = {a["pid"] for att in res.attempts.values() for a in att}
    assert os.getpid() not in pids and len(pids) == 2
    compared = 0
    for f in sorted(pcfg.out.rglob("*")):
        rel = f.relative_to(pcfg.out)
        if not f.is_file() or rel.parts[0] in (".sweep", ".stages"):
            continue
        assert _same_file(f, cfg.out / rel, pcfg.out, cfg.out), rel
        compared += 1
    assert compared > 100


def test_the_driver_submits_in_the_planned_order(local_sweep, tmp_path, monkeypatch):
    """With a cost table the driver's submissions are device_plan.priority_order, the order --plan simulates."""
    from attnpatterns.sweep import driver as sweep
    from attnpatterns.sweep.device_plan import load_costs, priority_order, simulate

    cfg, _, tmp = local_sweep
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"seconds": {"pipeline": 30, "survivors": 1, "subnet": 5}}))
    submitted: list[str] = []

    class Recorder:
        name, capacity = "local", 1

        def __init__(self, c):
            self.c, self.done = c, []

        def submit(self, job):  # the job's outputs appear, as if it ran
            submitted.append(job.id)
            for o in job.outputs:
                (self.c.out / o).parent.mkdir(parents=True, exist_ok=True)
                (self.c.out / o).touch()
            self.done.append((job.id, {"ok": True, "seconds": 0.0}))

        def wait(self):
            out, self.done = self.done, []
            return out

        def close(self):
            pass

    monkeypatch.setattr(sweep, "LocalExecutor", Recorder)
    rcfg = _cfg(tmp, tmp_path / "rec", analysis=False)
    sweep.run_sweep(rcfg, "local", show_progress=False, costs=costs)
    order = [j.id for j in priority_order(sweep.plan(rcfg), load_costs(costs))]
    assert submitted == order
    # one process: the simulated schedule runs the jobs back to back in that order
    sched = simulate(sweep.plan(rcfg), load_costs(costs), 1)
    assert [p.job for p in sorted(sched.placed, key=lambda p: p.start)] == order
