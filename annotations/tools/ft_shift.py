"""How far fine-tuning moved the maps of the fine-tuned sources in the annotated set.

For every fine-tuned raw map in ``annotations/raw/`` the same (example, layer, head) map of the
pre-trained MiniLM is recomputed, and the mean total-variation distance between matching query rows
(0 = identical attention, 1 = disjoint) is reported per source, with the share of maps whose first-pass
label would plausibly differ (distance above 0.2). Prints one line per fine-tuned source.

Usage: ``ATTN_GLUE_DIR=/work/shared/glue .venv/bin/python annotations/tools/ft_shift.py``
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    import torch

    torch.set_num_threads(1)
    from attnpatterns.annotate.dataset import load
    from attnpatterns.data import get_task, load_task
    from attnpatterns.maps import extract_maps
    from attnpatterns.models import load_model

    ds = load(ROOT / "annotations", "raw")
    by_source = defaultdict(list)
    for r in ds.rows:
        if r["model_state"] == "finetuned":
            by_source[(r["source_model"], r["task"])].append(r)
    if not by_source:
        print("no fine-tuned maps in annotations/raw", file=sys.stderr)
        return 1
    model, tok = load_model(None)
    for (src, task), rows in sorted(by_source.items()):
        spec = get_task(task)
        examples = {str(e.id): e for e in load_task(spec, "dev")}
        ids = sorted({r["example"] for r in rows})
        ems = extract_maps(
            model,
            tok,
            [examples[i].text_a for i in ids],
            [examples[i].text_b for i in ids] if spec.text_b else None,
            ids=ids,
            normed=False,
        )
        pre = {em.example_id: em.raw for em in ems}
        tv = np.array(
            [0.5 * np.abs(ds.maps[r["id"]] - pre[r["example"]][r["layer"], r["head"]]).sum(axis=1).mean() for r in rows]
        )
        print(
            f"{src} ({task}): {len(rows)} maps, mean row total-variation distance to the pre-trained map "
            f"{tv.mean():.4f} (median {np.median(tv):.4f}, max {tv.max():.4f}); maps above 0.2: {(tv > 0.2).mean():.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
