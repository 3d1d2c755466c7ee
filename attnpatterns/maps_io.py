"""Maps to files: the ``attn maps`` outputs and their reader."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.io import save_npz


def maps_for_text(
    text: str,
    pair: str | None,
    out: str | os.PathLike,
    model: str | None = None,
    max_length: int = 128,
    device: str = "cpu",
) -> tuple[int, ...]:
    from attnpatterns.maps import check_text, extract_maps
    from attnpatterns.models import load_model, model_id

    m, tok = load_model(model, device=device)
    check_text(tok, text, pair, min(max_length, _model_max(m, tok)))
    [ex] = extract_maps(m, tok, [text], [pair] if pair is not None else None, max_length=max_length)
    assert ex.normed is not None  # extract_maps computes the normed maps by default
    save_npz(
        out,
        raw=ex.raw.astype(np.float32),
        normed=ex.normed.astype(np.float32),
        tokens=np.array(ex.tokens),
        model=np.array(model_id(model)),
    )
    return ex.raw.shape


def maps_for_task(
    task: str,
    out: str | os.PathLike,
    n: int = 100,
    split: str = "dev",
    model: str | None = None,
    data_dir=None,
    max_length: int = 128,
    batch_size: int = 32,
    device: str = "cpu",
    show_progress: bool = True,
) -> int:
    from attnpatterns.data import get_task, load_task
    from attnpatterns.maps import extract_example_maps
    from attnpatterns.models import load_model, model_id

    spec = get_task(task)
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}.")
    examples = load_task(spec, split, data_dir)[:n]
    m, tok = load_model(model, device=device)
    maps = extract_example_maps(
        m,
        tok,
        examples,
        bool(spec.text_b),
        max_length=max_length,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    arrays: dict[str, np.ndarray] = {
        "ids": np.array([str(e.example_id) for e in maps]),
        "model": np.array(model_id(model)),
        "task": np.array(spec.name),
        "split": np.array(split),
    }
    for i, e in enumerate(maps):
        assert e.normed is not None  # extract_maps computes the normed maps by default
        arrays[f"raw_{i}"] = e.raw.astype(np.float32)
        arrays[f"normed_{i}"] = e.normed.astype(np.float32)
        arrays[f"tokens_{i}"] = np.array(e.tokens)
    save_npz(out, **arrays)
    return len(maps)


def _model_max(model, tok) -> int:
    return int(min(getattr(model.config, "max_position_embeddings", 512), getattr(tok, "model_max_length", 512) or 512))


def load_task_maps(path: str | os.PathLike) -> list[dict]:
    """Read an ``attn maps --task`` file: a list of {id, raw, normed, tokens} (no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; make it with 'attn maps --task T --out {path.name}'.")
    try:
        with np.load(path, allow_pickle=False) as z:
            ids = [str(x) for x in z["ids"]]
            return [
                dict(id=ids[i], raw=z[f"raw_{i}"], normed=z[f"normed_{i}"], tokens=[str(t) for t in z[f"tokens_{i}"]])
                for i in range(len(ids))
            ]
    except (KeyError, ValueError, OSError) as e:
        raise UserError(f"{path}: not an 'attn maps --task' file ({type(e).__name__}); regenerate it.") from None
