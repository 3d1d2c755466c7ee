"""Write the labels given by eye on the contact sheets into the dataset, and the blind second pass.

Label files: ``annotations/tools/labels/<kind>/<sheet>.txt``, one code per map in the sheet's cell
order (whitespace or newlines between codes, ``#`` starts a comment):
``V`` vertical, ``D`` diagonal, ``VD`` vertical+diagonal, ``B`` block, ``H`` heterogeneous.

Pass 1 (sheets ``p1_*``): each labelled map is upserted into ``annotations/<kind>/`` (``labels.tsv`` +
``maps.npz``) through :func:`attnpatterns.annotate.dataset.upsert`, with its provenance (source model,
task, layer, head, dev example, model state), the hint shown on the sheet (``suggested_label``,
``suggested_by``) and the annotator. A sheet whose label file is missing is skipped; a label file
with the wrong number of codes or an unknown code stops the run before anything is written.

Review (sheets ``rv_*``, written after ``annotations/GUIDELINES.md`` appeared): every map first
labelled diagonal, vertical+diagonal or block, shown with its label and checked against the
guidelines' borderline rules; the review label becomes ``label`` and the pass-1 label stays in
``label_pass1``.

Pass 2 (sheets ``p2_*``, blind, before the guidelines): labels go to
``annotations/<kind>/second_pass_v1.tsv``. Pass 3 (sheets ``p3_*``, blind, under the guidelines):
labels go to ``annotations/<kind>/second_pass.tsv`` (anonymous id, map id, label, annotator);
``consensus.py`` reports this intra-rater agreement (``intra_rater`` in agreement.json).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_sheets import SHEETS, read_pool  # noqa: E402

LABELS = ROOT / "annotations" / "tools" / "labels"
CODES = {"V": "vertical", "D": "diagonal", "VD": "vertical+diagonal", "B": "block", "H": "heterogeneous"}
ANNOTATOR = "agent-annotator-1 (by eye, contact sheet {sheet})"
ANNOTATOR_2 = "agent-annotator-1 (by eye, blind second pass, sheet {sheet})"
REVIEWED = "; checked against annotations/GUIDELINES.md on review sheet {sheet}"


def read_codes(path: Path, expected: int) -> list[str]:
    codes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        codes += line.split("#", 1)[0].split()
    bad = [c for c in codes if c not in CODES]
    if bad:
        raise SystemExit(f"{path}: unknown code(s) {bad}; use {', '.join(CODES)}")
    if len(codes) != expected:
        raise SystemExit(f"{path}: {len(codes)} codes for a sheet of {expected} maps; give one code per map")
    return [CODES[c] for c in codes]


def read_manifest(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def labelled_sheets(kind: str, prefix: str) -> list[tuple[str, list[dict], list[str]]]:
    out = []
    for man in sorted((SHEETS / kind).glob(f"{prefix}_*.tsv")):
        lab = LABELS / kind / f"{man.stem}.txt"
        if not lab.exists():
            continue
        rows = read_manifest(man)
        out.append((man.stem, rows, read_codes(lab, len(rows))))
    return out


def apply_pass1(kind: str) -> int:
    from attnpatterns.annotate.dataset import load, upsert

    if any(r["annotator"].startswith("consensus") for r in load(ROOT / "annotations", kind, with_maps=False).rows):
        raise SystemExit(
            f"error: annotations/{kind}/labels.tsv holds the consensus of several annotators; "
            f"agent-annotator-1's labels are in annotations/{kind}/annotators/agent-annotator-1.tsv "
            "(this script made them before the consensus); rebuild the consensus with consensus.py."
        )

    pool_rows, maps = read_pool(kind)
    by_id = {r["id"]: r for r in pool_rows}
    # review sheets (rv_*): the first labels checked against GUIDELINES.md; a review label replaces
    # the pass-1 label, which stays in the column label_pass1
    reviewed: dict[str, tuple[str, str]] = {}
    for sheet, man, labels in labelled_sheets(kind, "rv"):
        for m, label in zip(man, labels):
            reviewed[m["id"]] = (label, sheet)
    rows, arrays = [], {}
    for sheet, man, labels in labelled_sheets(kind, "p1"):
        for m, label in zip(man, labels):
            p = by_id[m["id"]]
            final, annotator = label, ANNOTATOR.format(sheet=sheet)
            if m["id"] in reviewed:
                final = reviewed[m["id"]][0]
                annotator += REVIEWED.format(sheet=reviewed[m["id"]][1])
            rows.append(
                {
                    "id": m["id"],
                    "label": final,
                    "annotator": annotator,
                    "source_model": p["source_model"],
                    "task": p["task"],
                    "layer": p["layer"],
                    "head": p["head"],
                    "example": p["example"],
                    "suggested_label": m["suggested_label"],
                    "suggested_by": m["suggested_by"],
                    "model_state": p["model_state"],
                    "kind": kind,
                    "n_tokens": p["n_tokens"],
                    "sheet": m["short"],
                    "label_pass1": label,
                }
            )
            arrays[m["id"]] = maps[m["id"]]
    if not rows:
        return 0
    res = upsert(ROOT / "annotations", kind, rows, arrays)
    print(f"{kind}: {len(rows)} labelled maps ({len(res.added)} added, {len(res.updated)} updated)", file=sys.stderr)
    return len(rows)


def apply_pass2(kind: str, prefix: str = "p2", filename: str = "second_pass_v1.tsv") -> int:
    from attnpatterns.io import atomic_path

    out = []
    for sheet, man, labels in labelled_sheets(kind, prefix):
        for m, label in zip(man, labels):
            out.append(
                {"anon_id": m["short"], "id": m["id"], "label": label, "annotator": ANNOTATOR_2.format(sheet=sheet)}
            )
    if not out:
        return 0
    path = ROOT / "annotations" / kind / filename
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(out[0]), delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(out)
    print(f"{kind}: {len(out)} second-pass labels -> {path}", file=sys.stderr)
    return len(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=("raw", "normed"), action="append")
    ap.add_argument(
        "--pass",
        dest="pass_",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="1: pass-1 labels with their review; 2: blind pass before the guidelines; "
        "3: blind pass under the guidelines",
    )
    args = ap.parse_args(argv)
    for kind in args.kind or ["raw", "normed"]:
        if args.pass_ == 1:
            apply_pass1(kind)
        elif args.pass_ == 2:
            apply_pass2(kind, "p2", "second_pass_v1.tsv")
        else:
            apply_pass2(kind, "p3", "second_pass.tsv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
