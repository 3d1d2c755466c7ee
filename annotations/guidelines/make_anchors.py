"""Anchor examples of GUIDELINES.md v2: for each disputed boundary, maps on both sides of it.

Each example is a map that all round-1 annotators gave the same label (so never a disputed map; where a
label has fewer than three such maps, as raw block, a map that two of the three gave it), picked
by the measures of ``annotations/tools/measures.py`` as the one nearest the boundary on its side, and drawn
with the blind sheets' renderer, its measures in the caption.

    .venv/bin/python annotations/guidelines/make_anchors.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "annotations" / "tools"))

# (file, kind, left label, right label, the measure that separates them, a one-line reading)
BOUNDARIES = [
    ("anchor-d-vd-raw", "raw", "diagonal", "vertical+diagonal", "cls"),
    ("anchor-v-h-raw", "raw", "vertical", "heterogeneous", "bright_on"),
    ("anchor-b-v-raw", "raw", "block", "vertical", "column", "min"),
    ("anchor-d-h-normed", "normed", "diagonal", "heterogeneous", "bright_on"),
    ("anchor-v-h-normed", "normed", "vertical", "heterogeneous", "column"),
    ("anchor-b-h-normed", "normed", "block", "heterogeneous", "fill"),
]


def main() -> int:
    from blind_sheets import draw_map
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from measures import measures

    from attnpatterns.annotate.agreement import vote_table
    from attnpatterns.annotate.dataset import load, read_annotators
    from attnpatterns.io import atomic_path

    tokens = json.loads((ROOT / "annotations" / "tools" / "tokens.json").read_text())
    for name, kind, left, right, key, *how in BOUNDARIES:
        ds = load(ROOT / "annotations", kind)
        rows = {r["id"]: r for r in ds.rows}
        v = vote_table(read_annotators(ROOT / "annotations", kind, rounds=["1"])).dropna()
        unanimous = v[v.nunique(axis=1) == 1].iloc[:, 0]
        majority = v.mode(axis=1)[0][(v.apply(lambda r: r.value_counts().iloc[0], axis=1) >= 2)]
        picks = []
        for lab in (left, right):
            pool = unanimous if (unanimous == lab).sum() >= 3 else majority  # raw block: never unanimous
            ids = [i for i in pool.index[pool == lab] if 16 <= ds.maps[i].shape[0] <= 48]
            toks = {i: tokens[f"{rows[i]['task']}|{rows[i]['example']}"] for i in ids}
            ms = {}
            for i in ids:
                seps = [k for k, t in enumerate(toks[i]) if t == "[SEP]"]
                ms[i] = measures(ds.maps[i], seps[0] if len(seps) >= 2 else None)
            ids = [i for i in ids if key in ms[i]]
            vals = np.array([ms[i][key] for i in ids])
            # the example nearest the other side: the median of its label's values, so it is typical, not extreme
            pos = 0 if how and lab == left else len(vals) // 2  # "min": the clearest example of the left label
            i = ids[int(np.argsort(vals)[pos])]
            picks.append((lab, i, toks[i], ms[i]))
        fig = Figure(figsize=(9.2, 5.0), dpi=85)
        FigureCanvasAgg(fig)
        for k, (lab, i, toks, m) in enumerate(picks):
            ax = fig.add_subplot(1, 2, k + 1)
            txt = ", ".join(f"{x} {m[x]:.2f}" for x in ("cls", "column", "diagonal") if x in m)
            txt2 = ", ".join(f"{x} {m[x]:.2f}" for x in ("bright_on", "fill") if x in m)
            draw_map(ax, fig, ds.maps[i], toks, f"{lab}\n{txt}\n{txt2}")
        fig.tight_layout(pad=0.6)
        with atomic_path(HERE / f"{name}.png", suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=85)
        print(name, [(lab, i) for lab, i, _, _ in picks])
    return 0


if __name__ == "__main__":
    sys.exit(main())
