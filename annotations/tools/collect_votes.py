"""Turn one blind annotator's sheet labels into their own file ``annotations/<kind>/annotators/<name>.tsv``.

The annotator typed ``anon_id, label, confident`` for the sheets of ``blind_sheets.py``; the key
``annotations/blind/<name>-<kind>[-<prefix>].key.tsv`` maps each anonymous id to its map. Every map on
the sheets must have exactly one label, else nothing is written.

    .venv/bin/python annotations/tools/collect_votes.py --kind raw --name agent-annotator-2 \
        --labels /work/blind/agent-annotator-2/labels.tsv --round 1 \
        --describe "agent-annotator-2 (helper agent, by eye, blind full pass, sheets of blind_sheets.py seed 202)"

``--migrate`` writes ``agent-annotator-1.tsv`` from the labels that ``labels.tsv`` held before the
consensus (the first annotator's labels, with their sheets and first-pass labels).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANN = ROOT / "annotations"
SHORT = {"v": "vertical", "d": "diagonal", "vd": "vertical+diagonal", "b": "block", "h": "heterogeneous"}


def read_tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def collect(kind: str, name: str, labels: Path, key: Path, round_: str, describe: str) -> list[dict]:
    from attnpatterns.patterns import PATTERN_VALUES

    k = {r["anon_id"]: r for r in read_tsv(key)}
    got: dict[str, dict] = {}
    for n, r in enumerate(read_tsv(labels), start=2):
        a = (r.get("anon_id") or "").strip()
        lab = (r.get("label") or "").strip().lower()
        lab = SHORT.get(lab, lab)
        if a not in k:
            raise SystemExit(f"error: {labels}:{n}: '{a}' is not on {name}'s sheets; fix the id.")
        if lab not in PATTERN_VALUES:
            raise SystemExit(f"error: {labels}:{n}: label '{lab}' is not one of the five types.")
        if a in got and got[a]["label"] != lab:
            raise SystemExit(f"error: {labels}:{n}: '{a}' is labelled twice, differently; keep one.")
        conf = (r.get("confident") or "").strip().lower()
        got[a] = {"label": lab, "confident": {"yes": "yes", "no": "no", "y": "yes", "n": "no"}.get(conf, "")}
    missing = [a for a in k if a not in got]
    if missing:
        raise SystemExit(
            f"error: {len(missing)} map(s) of {name}'s sheets have no label ({', '.join(missing[:5])}); "
            "finish them first."
        )
    return [
        {
            "id": k[a]["id"],
            "label": got[a]["label"],
            "confident": got[a]["confident"],
            "annotator": describe,
            "round": round_,
            "anon_id": a,
            "sheet": k[a]["sheet"],
        }
        for a in k
    ]


def migrate(kind: str) -> Path:
    from attnpatterns.annotate.dataset import load, write_annotator

    rows = load(ANN, kind, with_maps=False).rows
    if not all(r["annotator"].startswith("agent-annotator-1") for r in rows):
        raise SystemExit("error: labels.tsv no longer holds agent-annotator-1's labels; nothing to migrate.")
    out = [
        {
            "id": r["id"],
            "label": r["label"],
            "confident": "",
            "annotator": r["annotator"],
            "round": "1",
            "sheet": r["sheet"],
            "label_pass1": r["label_pass1"],
            "suggested_label": r["suggested_label"],
            "suggested_by": r["suggested_by"],
        }
        for r in rows
    ]
    return write_annotator(ANN, kind, "agent-annotator-1", out)


def main(argv=None) -> int:
    from attnpatterns.annotate.dataset import write_annotator

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=("raw", "normed"), required=True)
    ap.add_argument("--migrate", action="store_true")
    ap.add_argument("--name")
    ap.add_argument("--labels", type=Path)
    ap.add_argument("--key", type=Path, help="default annotations/blind/<name>-<kind>.key.tsv")
    ap.add_argument("--round", default="1")
    ap.add_argument("--describe", help="who or what made the labels, and how")
    args = ap.parse_args(argv)
    if args.migrate:
        print(migrate(args.kind))
        return 0
    if not (args.name and args.labels and args.describe):
        ap.error("--name, --labels and --describe are required")
    key = args.key or ANN / "blind" / f"{args.name}-{args.kind}.key.tsv"
    rows = collect(args.kind, args.name, args.labels, key, args.round, args.describe)
    print(write_annotator(ANN, args.kind, args.name, rows), len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
