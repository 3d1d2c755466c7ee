"""Render contact sheets of pooled maps for labelling by eye.

Pass 1 (``--pass 1``): the pool of one kind, source by source, in pages of ``--per-sheet`` maps.
Each cell is titled with a short sheet id (``r03.17`` = raw sheet 3, cell 17), the number of tokens,
the layer/head, and the heuristic's hint (``attnpatterns.patterns.suggest`` when that module exists,
else the sampler's candidate type); red triangles outside the top and left edges mark [CLS]/[SEP],
orange ones punctuation, and a dotted white line marks the segment boundary of a sentence pair.
A manifest ``<sheet>.tsv`` beside each PNG maps the short ids to the map ids and records the hint.

Pass 2 (``--pass 2``): a blind re-annotation. A seeded random subset of the labelled maps, shuffled,
under new anonymous ids (``x2.05.11``) and WITHOUT hint, layer/head or source, so that nothing on the
sheet reveals the first label.

Sheets go to ``annotations/sheets/<kind>/`` (``--out``); the labels typed for each sheet live in
``annotations/tools/labels/<kind>/<sheet>.txt`` (see ``apply_labels.py``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import string
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
POOL = ROOT / "runs" / "annotation_pool"
SHEETS = ROOT / "annotations" / "sheets"
PUNCT = set(string.punctuation)
SPECIAL = {"[CLS]", "[SEP]"}
ABBREV = {"vertical": "V", "diagonal": "D", "vertical+diagonal": "VD", "block": "B", "heterogeneous": "H"}


def read_pool(kind: str, pool: Path = POOL) -> tuple[list[dict], dict[str, np.ndarray]]:
    """All pooled rows of a kind (sources in name order) and their maps."""
    rows: list[dict] = []
    maps: dict[str, np.ndarray] = {}
    for tsv in sorted((pool / kind).glob("*.tsv")):
        with open(tsv, encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                r["layer"], r["head"] = int(r["layer"]), int(r["head"])
                r["tokens"] = json.loads(r["tokens"])
                r["source"] = tsv.stem
                rows.append(r)
        with np.load(tsv.with_suffix(".npz")) as z:
            maps.update({k: z[k] for k in z.files})
    return rows, maps


def hint_of(m: np.ndarray, tokens: list[str], quick: str) -> tuple[str, str]:
    """(suggested label, what suggested it)."""
    try:
        from attnpatterns.patterns import suggest
    except ImportError:
        return quick, "annotations/tools/sample_maps.py quick_type"
    s = suggest(m, tokens)
    label = getattr(s, "value", None) or getattr(getattr(s, "label", None), "value", None) or str(s)
    return str(label), "attnpatterns.patterns.suggest"


def draw_sheet(
    items: list[tuple[str, np.ndarray, list[str], str]], path: Path, ncols: int = 6, cell: float = 2.5, dpi: int = 80
) -> None:
    """items: (title, map, tokens, _) -> one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from attnpatterns.annotate.render import check_map
    from attnpatterns.io import atomic_path

    nrows = int(math.ceil(len(items) / ncols))
    fig = Figure(figsize=(ncols * cell, nrows * (cell + 0.3)), dpi=dpi)
    FigureCanvasAgg(fig)
    for k, (title, m, tokens, _) in enumerate(items):
        a = check_map(m, where=title)
        ax = fig.add_subplot(nrows, ncols, k + 1)
        top = float(a.max()) if a.max() > 0 else 1.0
        ax.imshow(a, cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest")
        n = a.shape[0]
        sp = [i for i, t in enumerate(tokens) if t in SPECIAL]
        pu = [i for i, t in enumerate(tokens) if len(t) == 1 and t in PUNCT]
        # markers just outside the top and left edges: red = [CLS]/[SEP], orange = punctuation
        off = -0.5 - max(0.6, n * 0.035)
        for pos, colour in ((sp, "red"), (pu, "orange")):
            if pos:
                ax.scatter(pos, [off] * len(pos), marker="v", s=14, color=colour, clip_on=False, zorder=3)
                ax.scatter([off] * len(pos), pos, marker=">", s=14, color=colour, clip_on=False, zorder=3)
        seps = [i for i, t in enumerate(tokens) if t == "[SEP]"]
        if len(seps) >= 2:  # sentence pair: dotted white line after the first [SEP]
            b = seps[0] + 0.5
            ax.axvline(b, color="white", lw=0.7, ls=":", alpha=0.8)
            ax.axhline(b, color="white", lw=0.7, ls=":", alpha=0.8)
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9, pad=7)
    fig.tight_layout(pad=0.5)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def write_manifest(path: Path, rows: list[dict]) -> None:
    from attnpatterns.io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(rows)


def pass1(kind: str, sources: list[str] | None, per_sheet: int, start: int, out: Path) -> list[Path]:
    rows, maps = read_pool(kind)
    if sources:
        rows = [r for r in rows if r["source"] in sources]
    # skip maps already on a sheet
    done = set()
    for man in (out / kind).glob("p1_*.tsv"):
        with open(man, encoding="utf-8", newline="") as fh:
            done.update(r["id"] for r in csv.DictReader(fh, delimiter="\t"))
    rows = [r for r in rows if r["id"] not in done]
    written = []
    s = start
    for i in range(0, len(rows), per_sheet):
        page = rows[i : i + per_sheet]
        sheet = f"p1_{kind[0]}{s:02d}"
        items, man = [], []
        for c, r in enumerate(page, start=1):
            short = f"{kind[0]}{s:02d}.{c:02d}"
            lab, by = hint_of(maps[r["id"]], r["tokens"], r["quick"])
            title = f"{short} n{len(r['tokens'])} L{r['layer']}H{r['head']} [{ABBREV.get(lab, lab)}]"
            items.append((title, maps[r["id"]], r["tokens"], r["id"]))
            man.append({"short": short, "id": r["id"], "suggested_label": lab, "suggested_by": by})
        (out / kind).mkdir(parents=True, exist_ok=True)
        draw_sheet(items, out / kind / f"{sheet}.png")
        write_manifest(out / kind / f"{sheet}.tsv", man)
        written.append(out / kind / f"{sheet}.png")
        s += 1
    return written


def pass2(
    kind: str,
    n: int,
    per_sheet: int,
    seed: int,
    out: Path,
    labelled_ids: list[str],
    prefix: str = "p2",
    anon: str = "x",
    start: int = 1,
    pool_round: int | None = None,
) -> list[Path]:
    """Blind re-annotation sheets: ``n`` labelled maps drawn with ``seed`` (only from the pool sources
    of sampling round ``pool_round`` when given), shuffled, under anonymous ids, without any hint."""
    rows, maps = read_pool(kind)
    by_id = {r["id"]: r for r in rows}
    if pool_round is not None:

        def round_of(source: str) -> int:
            tail = source.rsplit("-", 1)[-1]
            return int(tail[1:]) if tail.startswith("r") and tail[1:].isdigit() else 1

        labelled_ids = [i for i in labelled_ids if round_of(by_id[i]["source"]) == pool_round]
    rng = np.random.default_rng(seed)
    ids = sorted(labelled_ids)
    chosen = [ids[i] for i in rng.choice(len(ids), size=min(n, len(ids)), replace=False)]
    rng.shuffle(chosen)
    written = []
    for s, i in enumerate(range(0, len(chosen), per_sheet), start=start):
        page = chosen[i : i + per_sheet]
        sheet = f"{prefix}_{kind[0]}{s:02d}"
        items, man = [], []
        for c, mid in enumerate(page, start=1):
            short = f"{anon}{kind[0]}{s:02d}.{c:02d}"
            r = by_id[mid]
            items.append((f"{short} n{len(r['tokens'])}", maps[mid], r["tokens"], mid))
            man.append({"short": short, "id": mid})
        (out / kind).mkdir(parents=True, exist_ok=True)
        draw_sheet(items, out / kind / f"{sheet}.png")
        write_manifest(out / kind / f"{sheet}.tsv", man)
        written.append(out / kind / f"{sheet}.png")
    return written


def review(kind: str, labels: list[str], per_sheet: int, out: Path) -> list[Path]:
    """Sheets ``rv_<k>NN`` of the labelled maps whose label is in ``labels`` (labels.tsv order), each
    titled with its current label, for checking them against annotations/GUIDELINES.md."""
    from attnpatterns.annotate.dataset import load

    rows, maps = read_pool(kind)
    by_id = {r["id"]: r for r in rows}
    ds = load(ROOT / "annotations", kind, with_maps=False)
    todo = [r for r in ds.rows if r["label"] in labels]
    written = []
    for s, i in enumerate(range(0, len(todo), per_sheet), start=1):
        page = todo[i : i + per_sheet]
        sheet = f"rv_{kind[0]}{s:02d}"
        items, man = [], []
        for c, r in enumerate(page, start=1):
            short = f"v{kind[0]}{s:02d}.{c:02d}"
            p = by_id[r["id"]]
            items.append((f"{short} n{len(p['tokens'])} [{ABBREV[r['label']]}]", maps[r["id"]], p["tokens"], r["id"]))
            man.append({"short": short, "id": r["id"], "label_shown": r["label"]})
        (out / kind).mkdir(parents=True, exist_ok=True)
        draw_sheet(items, out / kind / f"{sheet}.png")
        write_manifest(out / kind / f"{sheet}.tsv", man)
        written.append(out / kind / f"{sheet}.png")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=("raw", "normed"), required=True)
    ap.add_argument(
        "--pass",
        dest="pass_",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="1: first labels; 2: blind re-annotation (before GUIDELINES.md); 3: blind re-annotation "
        "under GUIDELINES.md",
    )
    ap.add_argument(
        "--review", help="comma-separated labels (e.g. block,diagonal): review sheets of the maps with these labels"
    )
    ap.add_argument("--source", action="append", help="pool source(s) such as pre-MRPC (pass 1; default all)")
    ap.add_argument("--per-sheet", type=int, default=30)
    ap.add_argument("--start", type=int, default=1, help="number of the first new pass-1 sheet")
    ap.add_argument("--n", type=int, default=60, help="pass 2: maps to re-annotate")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pool-round", type=int, help="pass 2/3: draw only from maps of this sampling round")
    ap.add_argument("--out", type=Path, default=SHEETS)
    args = ap.parse_args(argv)
    if args.review:
        paths = review(args.kind, args.review.split(","), args.per_sheet, args.out)
    elif args.pass_ == 1:
        paths = pass1(args.kind, args.source, args.per_sheet, args.start, args.out)
    else:
        from attnpatterns.annotate.dataset import load

        ds = load(ROOT / "annotations", args.kind, with_maps=False)
        prefix, anon = ("p2", "x") if args.pass_ == 2 else ("p3", "y")
        paths = pass2(
            args.kind, args.n, args.per_sheet, args.seed, args.out, ds.ids, prefix, anon, args.start, args.pool_round
        )
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
