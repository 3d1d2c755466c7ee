"""The authors' results in the layout of the results table (``attn table --reference``, ``attn paper``): their
``evaluate_masked/<setting>/baseline/results.json`` (bert-base-uncased, 5 seeds, [mean, population std] per metric)
and, when their ``masks/`` folder is beside it, the sizes of their s-pruning masks."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.report.tables import TASK_ORDER, Table, metric_key, row_keys, row_label

log = logging.getLogger("attnpatterns")

# the authors' folder names (evaluate_masked/<setting>) for each row
REFERENCE_SETTINGS: dict[tuple[str, str, str], str] = {
    ("full model", "", ""): "no_mask",
    ("majority baseline", "", ""): "freq_baseline",
}
for _m, _names in (
    ("structured", {"good": "head_mlp", "random": "head_mlp_random", "bad": "head_mlp_bad"}),
    ("magnitude", {"good": "global_magnitude", "random": "global_random", "bad": "global_bad"}),
    ("super", {"good": "head_mlp_super", "random": "head_mlp_super_midling", "bad": "head_mlp_super_bizzaro"}),
):
    for _s, _name in _names.items():
        REFERENCE_SETTINGS[(_m, _s, "pruned")] = _name
        REFERENCE_SETTINGS[(_m, _s, "retrained")] = _name + "_retrained"
# their s-pruning mask sets (masks/<set>) for the sizes
REFERENCE_MASK_SETS = {
    ("structured", "good"): "heads_mlps",
    ("structured", "random"): "heads_mlps_random",
    ("structured", "bad"): "heads_mlps_bad",
    ("super", "good"): "heads_mlps_super",
    ("super", "random"): "heads_mlps_super_midling",
    ("super", "bad"): "heads_mlps_super_bizzaro",
}
# the authors' model, bert-base-uncased: what a 12 x 12 mask set is sized against
BERT_BASE = {"hidden": 768, "intermediate": 3072}


def collect_reference(directory: str | os.PathLike) -> Table:
    """The authors' evaluate_masked folder in the same long layout (n = 5 seeds, population std)."""
    import pandas as pd

    from attnpatterns.io import read_json

    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(
            f"{directory}: no such folder; pass the authors' evaluate_masked folder "
            "(../shared/reference/bert-experiments/evaluate_masked)."
        )
    rows = []
    tasks: set[str] = set()
    found_any = False
    missing: list[tuple[Path, str]] = []
    for key in row_keys():
        name = REFERENCE_SETTINGS[key]
        path = next(
            (
                p
                for p in (directory / name / "baseline" / "results.json", directory / name / "results.json")
                if p.is_file()
            ),
            None,
        )
        if path is None:
            missing.append((directory / name, row_label(key)))
            continue
        found_any = True
        data = read_json(path)
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected an object {{TASK: {{metric: [mean, std]}}}}; is this the authors' file?")
        for task, metrics in data.items():
            try:
                mk = metric_key(task)
            except UserError:
                continue
            if not isinstance(metrics, dict):
                raise UserError(f"{path}: {task} holds {type(metrics).__name__}, expected {{metric: [mean, std]}}.")
            val = metrics.get(mk, metrics.get(f"{task.lower()}_{mk}"))
            if val is None:
                continue
            if not (isinstance(val, list) and len(val) == 2):
                raise UserError(f"{path}: {task} {mk} is {val!r}, expected [mean, std].")
            tasks.add(task)
            rows.append(
                dict(
                    method=key[0],
                    subnet=key[1],
                    setting=key[2],
                    task=task,
                    mean=float(val[0]),
                    std=float(val[1]),
                    n=1 if key[0] == "majority baseline" else 5,
                )
            )
    if not found_any:  # one line, with the folder the user most likely meant
        hint = directory / "evaluate_masked"
        raise UserError(
            f"{directory}: no <setting>/baseline/results.json inside; pass the authors' evaluate_masked folder"
            + (f" ({hint})." if hint.is_dir() else ".")
        )
    for where, label in missing:  # a partial copy: say what is left out
        log.warning("%s: no results.json for %s", where, label)
    cells = pd.DataFrame(rows)
    sizes = _reference_sizes(directory.parent / "masks")
    if sizes is not None and not cells.empty:
        cells = cells.merge(sizes, on=["method", "subnet", "task"], how="left")
    return Table(cells, f"authors' bert-base-uncased ({directory})", [t for t in TASK_ORDER if t in tasks])


def _reference_sizes(masks_dir: Path):
    """Mean sizes of the authors' s-pruning mask sets, per (method, subnet, task); None without the folder."""
    import pandas as pd

    from attnpatterns.prune.masks import discover_masks
    from attnpatterns.prune.subnetworks import structured_size

    if not masks_dir.is_dir():
        return None
    rows = []
    for (method, subnet), setname in REFERENCE_MASK_SETS.items():
        d = masks_dir / setname
        if not d.is_dir():
            continue
        for task, per_seed in discover_masks(d).items():
            fr, hk, mk = [], [], []
            for hm, mm in per_seed.values():
                if hm is None:
                    continue
                mm = np.ones(hm.shape[0], dtype=np.float32) if mm is None else mm
                s = structured_size(hm, mm, **BERT_BASE)
                fr.append(s["kept_fraction"])
                hk.append(s["heads_kept"])
                mk.append(s["mlps_kept"])
                ht, mt = s["heads_total"], s["mlps_total"]
            if fr:
                rows.append(
                    dict(
                        method=method,
                        subnet=subnet,
                        task=task,
                        kept_fraction=float(np.mean(fr)),
                        heads_kept=float(np.mean(hk)),
                        mlps_kept=float(np.mean(mk)),
                        heads_total=ht,
                        mlps_total=mt,
                    )
                )
    return pd.DataFrame(rows) if rows else None
