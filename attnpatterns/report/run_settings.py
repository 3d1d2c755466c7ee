"""What a run is: the settings its stages recorded, compared with the study's, and how many seeds each table rests on.

Read from the run folder only (docs/CONTRACTS.md): ``config.json`` (the profile of ``attn run``), each seed's
``finetuned/run.json`` and ``metrics.json``, ``structured/summary.json``, ``magnitude/summary.json``,
``subnetworks/``, the classify stage's ``heads.json`` and ``distribution.json``, and ``TASK/majority.json``. A run
assembled by hand (stage commands with their own options, then ``attn run --stages classify,report``) is described
by what its stages recorded, not by the profile name in ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnpatterns.report.context import read_record
from attnpatterns.run.layout import RunLayout, SeedLayout

# The study's settings (Prasanna et al. 2020; ../shared/REFERENCE.md), the yardstick of every deviation.
STUDY: dict[str, Any] = {
    "lr": 2e-5,
    "epochs": 3,
    "batch_size": 32,
    "max_length": 128,
    "seeds": 5,
    "floor": "none",
    "magnitude_max_steps": 10,
    "classify_examples": 100,
}


@dataclass
class RunSettings:
    """The recorded settings of a run, each as {value: [where]} so that a run with mixed settings shows them all."""

    profile: str | None
    profile_description: str | None
    tasks: list[str] = field(default_factory=list)
    finetune: dict[str, dict[Any, list[str]]] = field(default_factory=dict)
    train_subsample: dict[str, int] = field(default_factory=dict)  # task -> training examples, where subsampled
    pruning_dev: dict[str, tuple[int, int]] = field(default_factory=dict)  # task -> (used, full dev) where smaller
    floors: dict[str, list[str]] = field(default_factory=dict)  # floor -> where
    seeds: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> task -> seeds
    classify_examples: dict[str, int] = field(default_factory=dict)  # task -> dev examples per seed
    at_majority: list[str] = field(default_factory=list)  # "TASK seed S (score x <= majority y)"
    devices: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # stage -> device -> tasks
    deviations: list[str] = field(default_factory=list)

    @property
    def smoke(self) -> bool:
        return self.profile == "quick"


def _note(d: dict, key: Any, where: str) -> None:
    d.setdefault(key, []).append(where)


def majority_score(run: Path, task: str) -> float | None:
    """The majority class's dev score of ``task`` as the run recorded it (``TASK/majority.json``), else None."""
    p = RunLayout(run).majority(task)
    if not p.is_file():
        return None
    r = read_record(p)
    s = r.get("score") if isinstance(r, dict) else None
    return float(s) if s is not None else None


def collect_settings(run: Path, tasks: dict[str, dict[int, Path]], cfg: dict) -> RunSettings:
    """Everything :class:`RunSettings` holds, read from the run folder."""
    prof = cfg.get("settings") or {}
    rs = RunSettings(profile=cfg.get("profile"), profile_description=prof.get("description"), tasks=list(tasks))
    seeds_ft: dict[str, int] = {}
    seeds_s: dict[str, int] = {}
    seeds_m: dict[str, int] = {}
    seeds_sub: dict[str, int] = {}
    seeds_pruned: dict[str, int] = {}
    seeds_cls: dict[str, int] = {}
    for task, seeds in tasks.items():
        maj = majority_score(run, task)
        for seed, sdir in seeds.items():
            sl = SeedLayout(sdir)
            where = f"{task} seed {seed}"
            rec = sl.finetuned / "run.json"
            if rec.is_file():
                r = read_record(rec)
                c = r.get("config", {})
                for k in ("lr", "epochs", "batch_size", "max_length"):
                    if k in c:
                        _note(rs.finetune.setdefault(k, {}), c[k], where)
                dev = (r.get("provenance") or {}).get("device")
                if dev:
                    rs.devices.setdefault("fine-tuning", {}).setdefault(str(dev), set()).add(task)
                data = r.get("data", {})
                if data.get("subsampled") and data.get("train_examples"):
                    rs.train_subsample[task] = int(data["train_examples"])
            met = sl.finetuned / "metrics.json"
            m = read_record(met) if met.is_file() else {}
            full_dev = int(m.get("dev_examples") or 0)  # the fine-tune scores the whole dev set
            if m:
                seeds_ft[task] = seeds_ft.get(task, 0) + 1
                if maj is not None and m.get("score") is not None and float(m["score"]) <= maj + 1e-9:
                    rs.at_majority.append(f"{where} (dev score {float(m['score']):.3f} <= majority class {maj:.3f})")
            for method, count in (("structured", seeds_s), ("magnitude", seeds_m)):
                summ = sl.summary(method)
                if not summ.is_file():
                    continue
                count[task] = count.get(task, 0) + 1
                s = read_record(summ)
                _note(rs.floors, s.get("floor", "none"), f"{where} {method}")
                used = s.get("dev_examples")
                if used and full_dev and int(used) < full_dev:
                    rs.pruning_dev[task] = (int(used), full_dev)
                if method == "magnitude" and "max_steps" in s:
                    _note(rs.finetune.setdefault("magnitude_max_steps", {}), s["max_steps"], where)
            if sl.subnetworks.is_dir() and any(sl.subnetworks.rglob("pruned.json")):
                seeds_pruned[task] = seeds_pruned.get(task, 0) + 1
            retrained = list(sl.subnetworks.rglob("retrained.json")) if sl.subnetworks.is_dir() else []
            if retrained:
                seeds_sub[task] = seeds_sub.get(task, 0) + 1
            for p in retrained:
                dev = read_record(p).get("device")
                if dev:
                    rs.devices.setdefault("re-fine-tuned subnetworks", {}).setdefault(str(dev), set()).add(task)
            heads = RunLayout(run).classify_dir(task, seed) / "heads.json"
            if heads.is_file():
                seeds_cls[task] = seeds_cls.get(task, 0) + 1
                h = read_record(heads)
                n = h.get("n_examples") or len(h.get("examples", []) or [])
                if n:
                    rs.classify_examples[task] = int(n)
    rs.seeds = {
        "fine-tuned models": seeds_ft,
        "s-pruning, stability and super-survivors": seeds_s,
        "m-pruning": seeds_m,
        "subnetworks (pruned)": seeds_pruned,
        "subnetworks (re-fine-tuned)": seeds_sub,
        "pattern distributions": _distribution_seeds(run, list(tasks), seeds_cls, rs),
    }
    rs.deviations = deviations(rs)
    return rs


def _distribution_seeds(run: Path, tasks: list[str], per_seed: dict[str, int], rs: RunSettings) -> dict[str, int]:
    """Seeds behind each task's reported pattern distribution: the ones its ``distribution.json`` pooled (a run
    folder rebuilt from committed results may hold the distribution without every seed's ``heads.json``), else the
    seeds with a ``heads.json``. Its examples per seed fill ``rs.classify_examples`` where no ``heads.json`` did."""
    out = dict(per_seed)
    for task in tasks:
        p = RunLayout(run).classify_dir(task) / "distribution.json"
        if not p.is_file():
            continue
        d = read_record(p)
        if d.get("seeds"):
            out[task] = len(d["seeds"])
        if d.get("n_examples_per_seed") and task not in rs.classify_examples:
            rs.classify_examples[task] = int(d["n_examples_per_seed"])
    return out


def _fmt_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def deviations(rs: RunSettings) -> list[str]:
    """Every way the recorded settings differ from the study's, as sentences."""
    out = []
    for key, label in (
        ("lr", "learning rate"),
        ("epochs", "epochs"),
        ("batch_size", "batch size"),
        ("max_length", "max length"),
        ("magnitude_max_steps", "m-pruning steps"),
    ):
        vals = rs.finetune.get(key, {})
        other = [v for v in vals if v != STUDY[key]]
        if other:
            shown = ", ".join(_fmt_value(v) for v in sorted(vals, key=str))
            out.append(f"{label} {shown} (the study: {_fmt_value(STUDY[key])})")
    if rs.train_subsample:
        parts = [f"{t} {n}" for t, n in sorted(rs.train_subsample.items())]
        out.append(
            "fine-tuned on a seeded training subsample: "
            + ", ".join(parts)
            + " examples (the study: the whole training set)"
        )
    if rs.pruning_dev:
        parts = [f"{t} {u} of {f}" for t, (u, f) in sorted(rs.pruning_dev.items())]
        out.append(
            "pruning scored on a seeded dev subsample: " + ", ".join(parts) + " examples (the study: the whole dev set)"
        )
    floors = [f for f in rs.floors if f != STUDY["floor"]]
    if floors:
        out.append(
            f"pruning floor '{', '.join(floors)}': a mask must also score above the majority class (not in the study)"
        )
    for table, per_task in rs.seeds.items():
        few = {t: per_task.get(t, 0) for t in (rs.tasks or per_task) if per_task.get(t, 0) < STUDY["seeds"]}
        if few:
            out.append(
                f"{table}: "
                + ", ".join(f"{t} {n}" for t, n in sorted(few.items()))
                + f" seeds (the study: {STUDY['seeds']})"
            )
    few_ex = {t: n for t, n in rs.classify_examples.items() if n < STUDY["classify_examples"]}
    if few_ex:
        out.append(
            "pattern distributions from "
            + ", ".join(f"{t} {n}" for t, n in sorted(few_ex.items()))
            + f" dev examples per seed (the study: {STUDY['classify_examples']})"
        )
    return out
