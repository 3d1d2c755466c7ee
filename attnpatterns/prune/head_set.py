"""A head set: the kept heads (and optionally MLPs) of one model, as arrays and as our JSON file.

Vocabulary: ``L`` layers, ``H`` heads per layer, 0-based ``layer`` and ``head``. A head mask is an (L, H)
array and an MLP mask an (L,) array, 1 = kept, 0 = pruned.

Our head set (``mask.json``, ``super-survivors.json``, any ``--heads`` file)::

    {"model": ..., "task": ..., "seed": S  (or "seeds": [S, ...]), "num_layers": L, "num_heads": H,
     "heads": [[layer, head], ...], "mlps": [layer, ...]}

``"mlps"`` may be left out: the set then says nothing about MLPs (all kept when turned into arrays). A plain JSON
list of ``[layer, head]`` pairs is read too (heads only; the model's shape comes from the caller).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.prune.mask_algebra import as_binary_mask


@dataclass
class HeadSet:
    """A set of kept heads (and optionally MLPs) of one model: what a head-set JSON file holds.

    ``heads`` are (layer, head) pairs, ``mlps`` layer indices; both are kept sorted and free of duplicates.
    ``mlps=None`` means the set says nothing about MLPs. ``seed`` is the seed of a single pruning run,
    ``seeds`` the seeds a set was combined from (super-survivors); at most one of them is set.
    """

    num_layers: int
    num_heads: int
    heads: list[tuple[int, int]]
    mlps: list[int] | None = None
    model: str | None = None
    task: str | None = None
    seed: int | None = None
    seeds: list[int] | None = None
    source: str = field(default="head set", repr=False, compare=False)  # names the file in error messages

    def __post_init__(self) -> None:
        src = self.source
        for name in ("num_layers", "num_heads"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise UserError(f"{src}: '{name}' must be a positive integer, got {v!r}; fix the file.")
        if self.seed is not None and self.seeds is not None:
            raise UserError(f"{src}: give either 'seed' or 'seeds', not both; fix the file.")
        if self.seed is not None and not _is_int(self.seed):
            raise UserError(f"{src}: 'seed' must be an integer, got {self.seed!r}; fix the file.")
        if self.seeds is not None:
            if not isinstance(self.seeds, (list, tuple)) or not all(_is_int(s) for s in self.seeds):
                raise UserError(f"{src}: 'seeds' must be a list of integers, got {self.seeds!r}; fix the file.")
            if len(set(self.seeds)) != len(self.seeds):
                raise UserError(f"{src}: 'seeds' repeats a seed ({_first_dup(self.seeds)}); list each seed once.")
            self.seeds = [int(s) for s in self.seeds]
        for name in ("model", "task"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise UserError(f"{src}: '{name}' must be a string, got {v!r}; fix the file.")
        L, H = int(self.num_layers), int(self.num_heads)
        pairs: list[tuple[int, int]] = []
        for p in self.heads:
            if not isinstance(p, (list, tuple)) or len(p) != 2 or not all(_is_int(x) for x in p):
                raise UserError(f"{src}: every head must be a [layer, head] pair of integers, got {p!r}; fix the file.")
            layer, head = int(p[0]), int(p[1])
            if not (0 <= layer < L and 0 <= head < H):
                raise UserError(
                    f"{src}: head [{layer}, {head}] is out of range: layers are 0..{L - 1} and heads 0..{H - 1} "
                    f"for a {L} x {H} model; check that the file is for this model."
                )
            pairs.append((layer, head))
        if len(set(pairs)) != len(pairs):
            d = _first_dup(pairs)
            raise UserError(f"{src}: head [{d[0]}, {d[1]}] is listed twice; list each head once.")
        self.heads = sorted(pairs)
        if self.mlps is not None:
            layers: list[int] = []
            for m in self.mlps:
                if not _is_int(m):
                    raise UserError(f"{src}: every MLP must be a layer index (integer), got {m!r}; fix the file.")
                if not 0 <= int(m) < L:
                    raise UserError(
                        f"{src}: MLP {int(m)} is out of range: layers are 0..{L - 1} for a {L}-layer model; "
                        "check that the file is for this model."
                    )
                layers.append(int(m))
            if len(set(layers)) != len(layers):
                raise UserError(f"{src}: MLP {_first_dup(layers)} is listed twice; list each layer once.")
            self.mlps = sorted(layers)
        self.num_layers, self.num_heads = L, H

    # --- arrays -------------------------------------------------------------------------------------------
    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(head_mask (L, H), mlp_mask (L,)) float32, 1 = kept. With ``mlps=None`` every MLP is kept."""
        head_mask = np.zeros((self.num_layers, self.num_heads), dtype=np.float32)  # (L, H)
        for layer, head in self.heads:
            head_mask[layer, head] = 1.0
        if self.mlps is None:
            mlp_mask = np.ones(self.num_layers, dtype=np.float32)  # (L,)
        else:
            mlp_mask = np.zeros(self.num_layers, dtype=np.float32)  # (L,)
            mlp_mask[self.mlps] = 1.0
        return head_mask, mlp_mask

    @classmethod
    def from_arrays(
        cls,
        head_mask: Any,
        mlp_mask: Any | None = None,
        *,
        model: str | None = None,
        task: str | None = None,
        seed: int | None = None,
        seeds: Iterable[int] | None = None,
        source: str = "mask arrays",
    ) -> "HeadSet":
        """Build a set from a 0/1 head mask (L, H) and optionally an MLP mask (L,)."""
        hm = as_binary_mask(head_mask, 2, source, "head mask")
        L, H = hm.shape
        mlps = None
        if mlp_mask is not None:
            mm = as_binary_mask(mlp_mask, 1, source, "MLP mask")
            if mm.shape != (L,):
                raise UserError(
                    f"{source}: MLP mask has shape {mm.shape} but the head mask has {L} layers; they must match."
                )
            mlps = [int(i) for i in np.flatnonzero(mm)]
        heads = [(int(a), int(b)) for a, b in zip(*np.nonzero(hm))]
        return cls(
            num_layers=L,
            num_heads=H,
            heads=heads,
            mlps=mlps,
            model=model,
            task=task,
            seed=seed,
            seeds=list(seeds) if seeds is not None else None,
            source=source,
        )

    # --- JSON ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "task": self.task}
        if self.seeds is not None:
            out["seeds"] = list(self.seeds)
        else:
            out["seed"] = self.seed
        out.update(
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            heads=[[a, b] for a, b in self.heads],
        )
        if self.mlps is not None:
            out["mlps"] = list(self.mlps)
        return out

    @classmethod
    def from_json(
        cls,
        obj: Any,
        *,
        num_layers: int | None = None,
        num_heads: int | None = None,
        model: str | None = None,
        source: str = "head set",
    ) -> "HeadSet":
        """Parse our head-set object or a plain list of [layer, head] pairs (see the module docstring).

        ``num_layers``/``num_heads`` are the model's shape: required for a plain list, checked against the
        file otherwise. ``model``, when given, must equal the file's ``"model"`` where the file names one.
        """
        for name, v in (("num_layers", num_layers), ("num_heads", num_heads)):
            if v is not None and (not _is_int(v) or v < 1):
                raise UserError(f"{name} must be a positive integer, got {v!r}.")
        if isinstance(obj, list):
            if num_layers is None or num_heads is None:
                raise UserError(
                    f"{source}: a plain list of [layer, head] pairs does not say the model's shape; "
                    "give num_layers and num_heads (or use the head-set JSON with 'num_layers' and 'num_heads')."
                )
            return cls(num_layers=num_layers, num_heads=num_heads, heads=obj, mlps=None, source=source)
        if not isinstance(obj, dict):
            raise UserError(
                f"{source}: expected a JSON object with 'heads' or a list of [layer, head] pairs, "
                f"got {type(obj).__name__}; fix the file."
            )
        if "heads" not in obj:
            raise UserError(f"{source}: no 'heads' key; a head set needs \"heads\": [[layer, head], ...].")
        if not isinstance(obj["heads"], list):
            raise UserError(
                f"{source}: 'heads' must be a list of [layer, head] pairs, got {type(obj['heads']).__name__}."
            )
        mlps = obj.get("mlps")
        if mlps is not None and not isinstance(mlps, list):
            raise UserError(f"{source}: 'mlps' must be a list of layer indices, got {type(mlps).__name__}.")
        L = obj.get("num_layers", num_layers)
        H = obj.get("num_heads", num_heads)
        if L is None or H is None:
            raise UserError(f"{source}: no 'num_layers'/'num_heads' in the file; add them (the model's shape).")
        for name, v in (("num_layers", L), ("num_heads", H)):
            if not _is_int(v) or v < 1:
                raise UserError(f"{source}: '{name}' must be a positive integer, got {v!r}; fix the file.")
        if num_layers is not None and L != num_layers or num_heads is not None and H != num_heads:
            raise UserError(
                f"{source}: the set is for a {L} x {H} (layers x heads) model, this model has "
                f"{num_layers or L} x {num_heads or H}; use masks made for this model."
            )
        file_model = obj.get("model")
        if model is not None and isinstance(file_model, str) and file_model != model:
            raise UserError(
                f"{source}: the set is for model '{file_model}', not '{model}'; use masks made for this model."
            )
        seeds = obj.get("seeds")
        return cls(
            num_layers=L,
            num_heads=H,
            heads=obj["heads"],
            mlps=mlps,
            model=file_model,
            task=obj.get("task"),
            seed=obj.get("seed"),
            seeds=seeds if seeds is not None else None,
            source=source,
        )

    @property
    def size(self) -> int:
        return len(self.heads)


def read_head_set(
    path: str | os.PathLike,
    num_layers: int | None = None,
    num_heads: int | None = None,
    model: str | None = None,
) -> HeadSet:
    """Read a head-set JSON file or a plain JSON list of [layer, head] pairs; one-line UserError naming the file."""
    from attnpatterns.io import read_json

    return HeadSet.from_json(read_json(path), num_layers=num_layers, num_heads=num_heads, model=model, source=str(path))


def write_head_set(path: str | os.PathLike, head_set: HeadSet) -> Path:
    """Write a head set as JSON (atomically)."""
    from attnpatterns.io import write_json

    return write_json(path, head_set.to_json())


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _first_dup(items: Iterable[Any]) -> Any:
    seen = set()
    for x in items:
        if x in seen:
            return x
        seen.add(x)
    return None
