"""Render blind annotation sheets of every map of a kind, for one independent annotator.

Each annotator gets the whole set (``annotations/<kind>``, plus the candidate maps of ``--extra`` pools)
in an order shuffled by their own seed, under anonymous ids that reveal nothing (``q07.4``: sheet 7,
cell 4): no layer, head, task, model, existing label or heuristic hint is on a sheet. Sheets are large
enough to read the edges: 3 x 3 maps per page, each about 330 px square (a 64-token map gets about
5 px per token column), drawn inside a grey margin so that the first row and column ([CLS]) never
touch the frame, with [CLS]/[SEP] marked by red ticks and letters outside the top and left edges, the
sentence-pair boundary by a dotted white line, and each map on its own 0..max colour scale with its
own colour bar.

Writes ``<out>/<annotator>/<kind>/sNN.png`` (what the annotator sees) and the key
``annotations/blind/<annotator>-<kind>.key.tsv`` (anon id -> map id), which the annotator never sees.

    .venv/bin/python annotations/tools/blind_sheets.py --kind raw --annotator agent-annotator-2 \
        --seed 202 --out /tmp/blind
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ANN = ROOT / "annotations"
BLIND = ANN / "blind"
TOKENS = ANN / "tools" / "tokens.json"
PER_SHEET = 9
NCOLS = 3


def token_marks(rows: list[dict], glue_dir: str | None) -> dict[str, list[str]]:
    """Tokens of every (task, example) the rows name, cached in ``annotations/tools/tokens.json``."""
    cache = json.loads(TOKENS.read_text()) if TOKENS.exists() else {}
    need = sorted({(r["task"], r["example"]) for r in rows} - {tuple(k.split("|", 1)) for k in cache})
    if need:
        from attnpatterns.data import get_task, load_task
        from attnpatterns.models import load_tokenizer

        tok = load_tokenizer(None)
        by_task: dict[str, list[str]] = {}
        for task, ex in need:
            by_task.setdefault(task, []).append(ex)
        for task, exs in by_task.items():
            spec = get_task(task)
            dev = {str(e.id): e for e in load_task(spec, "dev", glue_dir)}
            for ex in exs:
                e = dev[ex]
                ids = tok(e.text_a, e.text_b if spec.text_b else None, truncation=True, max_length=128)["input_ids"]
                cache[f"{task}|{ex}"] = tok.convert_ids_to_tokens(ids)
        from attnpatterns.io import atomic_path

        with atomic_path(TOKENS) as tmp:
            Path(tmp).write_text(json.dumps(cache, sort_keys=True, indent=0))
    return {f"{r['task']}|{r['example']}": cache[f"{r['task']}|{r['example']}"] for r in rows}


def draw_map(ax, fig, a: np.ndarray, tokens: list[str], title: str) -> None:
    n = a.shape[0]
    top = float(a.max()) if a.max() > 0 else 1.0
    ax.set_facecolor("#c8c8c8")
    im = ax.imshow(a, cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest", aspect="equal")
    pad = 0.5 + max(0.6, n * 0.03)  # grey margin: the first/last rows and columns stay off the frame
    ax.set_xlim(-pad, n - 1 + pad)
    ax.set_ylim(n - 1 + pad, -pad)
    special = [i for i, t in enumerate(tokens) if t in ("[CLS]", "[SEP]")]
    ax.set_xticks(special)
    ax.set_yticks(special)
    names = ["C" if tokens[i] == "[CLS]" else "S" for i in special]
    ax.set_xticklabels(names, fontsize=8, color="red", fontweight="bold")
    ax.set_yticklabels(names, fontsize=8, color="red", fontweight="bold")
    ax.tick_params(
        axis="both", colors="red", length=5, width=1.5, pad=1, top=True, bottom=False, labeltop=True, labelbottom=False
    )
    seps = [i for i, t in enumerate(tokens) if t == "[SEP]"]
    if len(seps) >= 2:
        b = seps[0] + 0.5
        ax.axvline(b, color="white", lw=0.8, ls=":", alpha=0.9)
        ax.axhline(b, color="white", lw=0.8, ls=":", alpha=0.9)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_title(title, fontsize=11, pad=14)
    cb = fig.colorbar(im, ax=ax, fraction=0.045, pad=0.02)
    cb.ax.tick_params(labelsize=7)
    cb.set_ticks([0.0, top / 2, top])
    cb.ax.set_yticklabels(["0", f"{top / 2:.2g}", f"{top:.2g}"])


def draw_sheet(items: list[tuple[str, np.ndarray, list[str]]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from attnpatterns.io import atomic_path

    nrows = int(math.ceil(len(items) / NCOLS))
    fig = Figure(figsize=(NCOLS * 4.4, nrows * 4.3), dpi=85)
    FigureCanvasAgg(fig)
    for k, (title, a, tokens) in enumerate(items):
        ax = fig.add_subplot(nrows, NCOLS, k + 1)
        draw_map(ax, fig, a, tokens, title)
    fig.tight_layout(pad=0.8)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=85)


def read_pool(root: Path, kind: str) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Unlabelled candidate maps of ``sample_thin.py``: ``<root>/<kind>.tsv`` + ``<root>/<kind>.npz``."""
    with open(root / f"{kind}.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    with np.load(root / f"{kind}.npz") as z:
        maps = {k: z[k] for k in z.files}
    return rows, maps


def load_items(kind: str, pools: list[Path]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Every map of ``annotations/<kind>`` plus the candidate maps of the given pools."""
    from attnpatterns.annotate.dataset import load

    ds = load(ANN, kind)
    rows, maps = list(ds.rows), dict(ds.maps)
    for root in pools:
        prow, pmaps = read_pool(root, kind)
        rows += [r for r in prow if r["id"] not in maps]
        maps.update(pmaps)
    return rows, maps


def render(
    kind: str,
    annotator: str,
    seed: int,
    out: Path,
    glue_dir: str | None,
    extra: list[Path],
    only: list[str] | None = None,
    prefix: str = "s",
) -> Path:
    from attnpatterns.io import atomic_path

    rows, maps = load_items(kind, extra)
    if only is not None:
        keep = set(only)
        rows = [r for r in rows if r["id"] in keep]
    toks = token_marks(rows, glue_dir)
    rng = np.random.default_rng(seed)
    order = [rows[i] for i in rng.permutation(len(rows))]
    folder = out / annotator / kind
    folder.mkdir(parents=True, exist_ok=True)
    key = []
    for s, i in enumerate(range(0, len(order), PER_SHEET), start=1):
        items = []
        for c, r in enumerate(order[i : i + PER_SHEET], start=1):
            anon = f"{prefix}{s:02d}.{c}"
            a = maps[r["id"]]
            t = toks[f"{r['task']}|{r['example']}"]
            if len(t) != a.shape[0]:
                raise SystemExit(f"error: {r['id']}: {len(t)} tokens for a {a.shape[0]}-row map")
            items.append((f"{anon}  ({a.shape[0]} tokens)", a, t))
            key.append({"anon_id": anon, "id": r["id"], "sheet": f"{prefix}{s:02d}"})
        draw_sheet(items, folder / f"{prefix}{s:02d}.png")
    BLIND.mkdir(parents=True, exist_ok=True)
    kp = BLIND / f"{annotator}-{kind}{'' if prefix == 's' else '-' + prefix}.key.tsv"
    with atomic_path(kp) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["anon_id", "id", "sheet"], delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(key)
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=("raw", "normed"), required=True)
    ap.add_argument("--annotator", required=True, help="who will label these sheets (names the key file)")
    ap.add_argument("--seed", type=int, required=True, help="this annotator's shuffle seed")
    ap.add_argument("--out", type=Path, required=True, help="folder for the sheets (outside the repository)")
    ap.add_argument("--glue-dir", default=None, help="GLUE data folder (default $ATTN_GLUE_DIR)")
    ap.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=[],
        help="a candidate pool folder of sample_thin.py (e.g. runs/thin_pool) whose maps are added",
    )
    ap.add_argument("--only", type=Path, help="a file of map ids (one per line): render only these")
    ap.add_argument("--prefix", default="s", help="anonymous-id prefix (another per relabel round)")
    args = ap.parse_args(argv)
    only = args.only.read_text().split() if args.only else None
    print(render(args.kind, args.annotator, args.seed, args.out, args.glue_dir, args.extra, only, args.prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
