"""A fine-tuning run folder: whether it is done, whether it holds this run or another, the provenance of its record,
writing the model into it safely, and loading a finished run.

The folder holds ``model.safetensors`` + ``config.json`` + tokenizer files, ``run.json`` (config, masks' digests,
provenance) and ``metrics.json``, written last: its presence means the run is done.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from attnpatterns.errors import UserError


def run_is_done(out_dir: str | os.PathLike) -> bool:
    """Whether ``out_dir`` holds a finished run (``metrics.json`` is written last)."""
    return (Path(out_dir) / "metrics.json").is_file()


def run_identity(record: dict) -> dict:
    """The parts of a run record that define its result: config, masks' digests and starting weights."""
    return {k: record[k] for k in ("config", "masks", "init_from")}


def check_existing(out_dir: Path, record: dict) -> bool:
    """True when ``out_dir`` holds a finished run of the same config; UserError when it holds another run."""
    from attnpatterns.io import read_json

    rj = out_dir / "run.json"
    if not rj.is_file():
        if run_is_done(out_dir):
            raise UserError(
                f"{out_dir / 'metrics.json'}: a finished run without run.json; delete the folder or choose another "
                f"--out."
            )
        return False
    old = read_json(rj)
    want = run_identity(record)
    have = {k: old.get(k) for k in want}
    if have != want:
        diff = []
        for k, v in want.items():
            if isinstance(v, dict) and isinstance(have[k], dict):
                diff += [f"{k}.{kk}" for kk in sorted(set(v) | set(have[k])) if v.get(kk) != have[k].get(kk)]
            elif v != have[k]:
                diff.append(k)
        old_model = (old.get("config") or {}).get("model")
        raise UserError(
            f"{rj}: the folder holds a run of another model/config (model {old_model}; differs in "
            f"{', '.join(diff) or 'its record'}); choose another --out or delete the folder."
        )
    return run_is_done(out_dir)


def provenance(device=None) -> dict:
    """Versions, threads, device and start time, for the run record."""
    import torch
    import transformers

    import attnpatterns

    return {
        "attnpatterns": attnpatterns.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": device_name(device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def device_name(device) -> str:
    """'cpu', or 'cuda' with the GPU's name (numerics differ between devices: bf16 autocast, kernels)."""
    import torch

    device = torch.device(device or "cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def save_model(model, tok, out_dir: Path) -> None:
    """save_pretrained into a temporary folder beside the run, then rename each file into place. Temporary folders
    left by a save that was killed (never read) are removed first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".save.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".save.", dir=out_dir) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        for f in Path(tmp).iterdir():
            if f.is_file():
                os.replace(f, out_dir / f.name)


def load_finetuned(run_dir: str | os.PathLike, device: str = "cpu"):
    """(model, tokenizer, run record) of a finished fine-tuning run folder, in eval mode."""
    from attnpatterns.data import get_task
    from attnpatterns.io import read_json
    from attnpatterns.models import load_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder; run 'attn finetune' first or check --run.")
    if not run_is_done(run_dir):
        raise UserError(
            f"{run_dir}: fine-tuning is not finished (no metrics.json); rerun 'attn finetune' with the same options."
        )
    rec = read_json(run_dir / "run.json")
    metrics = read_json(run_dir / "metrics.json")
    spec = get_task(rec["config"]["task"])
    model, tok = load_model(str(run_dir), num_labels=spec.num_labels, device=device)
    rec["metrics"] = metrics
    return model, tok, rec
