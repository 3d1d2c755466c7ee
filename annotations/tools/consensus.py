"""Consensus labels from the annotators' votes, and the agreement report.

Reads every annotator's file ``annotations/<kind>/annotators/<name>.tsv``. Round 1 (``round`` = 1) are
the full blind passes under the first guidelines; round 2 (``round`` = 2) the blind relabel, under the
revised GUIDELINES.md, of the maps round 1 disputed (not unanimous) and of the targeted thin-class maps;
round 3 (``round`` = 3) full blind passes over every map under the revised GUIDELINES.md.

The final label of a map (``attnpatterns.annotate.agreement.consensus_one``):
- a map with votes under the revised guidelines (rounds 2 and 3): their majority (the revised guidelines
  decide); a tie is adjudicated by the round-1 votes, else by the tie rule (GUIDELINES.md rule 10);
- any other map: the round-1 votes.

Writes ``annotations/<kind>/labels.tsv`` (+ ``maps.npz``, with the thin-class maps added) with the columns
``label`` (consensus), ``status`` (unanimous / majority / adjudicated / tie-rule), ``votes`` (the deciding
votes), ``votes_round1``, ``share`` and the map's provenance; and ``annotations/agreement.json``. Prints
Markdown tables for the README. ``--disputed FILE`` also writes the ids round 1 disputed.

    .venv/bin/python annotations/tools/consensus.py [--pool runs/thin_pool]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANN = ROOT / "annotations"
KINDS = ("raw", "normed")
META = ["source_model", "task", "layer", "head", "example", "model_state", "kind", "n_tokens"]
SHORT = {"vertical": "V", "diagonal": "D", "vertical+diagonal": "VD", "block": "B", "heterogeneous": "H"}


def read_tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def rounds_of(kind: str) -> dict[str, dict[str, dict[str, str]]]:
    """``{"1": first guidelines, "2": revised guidelines (rounds 2 and 3)}``: the consensus rule's two tables."""
    from attnpatterns.annotate.dataset import read_by_guidelines

    return read_by_guidelines(ANN, kind)


def disputed_ids(kind: str) -> list[str]:
    from attnpatterns.annotate.agreement import vote_table

    r1 = vote_table(rounds_of(kind)["1"])
    full = r1.dropna()
    return sorted(full.index[full.nunique(axis=1) > 1])


def build(kind: str, pool: Path | None) -> tuple[list[dict], dict, dict]:
    import numpy as np

    from attnpatterns.annotate.agreement import (
        consensus_one,
        consensus_rounds,
        fleiss,
        pairwise,
        per_class_agreement,
        vote_table,
    )
    from attnpatterns.annotate.dataset import load

    ds = load(ANN, kind)
    meta = {r["id"]: {k: r.get(k, "") for k in META} for r in ds.rows}
    maps = dict(ds.maps)
    if pool is not None and (pool / f"{kind}.tsv").exists():
        for r in read_tsv(pool / f"{kind}.tsv"):
            meta.setdefault(r["id"], {k: r.get(k, "") for k in META})
        with np.load(pool / f"{kind}.npz") as z:
            for k in z.files:
                maps.setdefault(k, z[k])
    from attnpatterns.annotate.dataset import read_annotators

    rounds = rounds_of(kind)
    r1 = vote_table(rounds["1"])
    r2 = vote_table(rounds["2"]) if len(rounds["2"]) >= 2 else None  # every vote under the revised guidelines
    by_round = {r: read_annotators(ANN, kind, rounds=[r]) for r in ("2", "3")}
    names1 = list(r1.columns)
    ids = sorted(set(r1.index) | (set(r2.index) if r2 is not None else set()))
    unknown = [i for i in ids if i not in meta or i not in maps]
    if unknown:
        raise SystemExit(f"error: {kind}: votes for maps with no map or provenance: {unknown[:3]}; pass --pool.")
    cons = consensus_rounds(r1, r2)
    rows = []
    for mid in ids:
        c = cons.loc[mid]
        v1 = [v for v in (r1.loc[mid].tolist() if mid in r1.index else []) if isinstance(v, str)]
        present = [r for r in ("2", "3") if any(mid in lab for lab in by_round[r].values())]
        if present:
            names = [n for r in present for n, lab in by_round[r].items() if mid in lab]
            who = f"consensus of round {'+'.join(present)} ({', '.join(names)}; revised GUIDELINES.md)" + (
                f", ties adjudicated by round 1 ({', '.join(names1)})" if v1 else ""
            )
        else:
            who = f"consensus of round 1 ({', '.join(names1)})"
        rows.append(
            {
                "id": mid,
                "label": c["label"],
                "annotator": who,
                **meta[mid],
                "status": c["status"],
                "votes": c["votes"],
                "share": f"{c['share']:.3f}",
                "votes_round1": consensus_one(v1)[2] if v1 else "",
                "rounds": "+".join((["1"] if v1 else []) + present),
            }
        )
    # agreement
    info: dict = {"n": len(rows)}
    full1 = r1.dropna()
    info["round1"] = {
        "annotators": names1,
        "pairwise": pairwise(r1),
        "fleiss": fleiss(r1),
        "specific_agreement": per_class_agreement(full1),
    }
    dis = sorted(full1.index[full1.nunique(axis=1) > 1])
    info["round1"]["disputed"] = len(dis)
    if len(by_round["2"]) >= 2:  # the relabel of the disputed and thin-class maps, two annotators per map
        rr = vote_table(by_round["2"])
        on = rr.loc[[i for i in dis if i in rr.index]]
        info["round2"] = {
            "annotators": list(rr.columns),
            "maps": int(len(on)),
            "before": {"pairwise": pairwise(r1.loc[on.index]), "fleiss": fleiss(r1.loc[on.index])},
            "after": {
                "pairwise": pairwise(on, skip_disjoint=True),
                "fleiss": fleiss(on, by_count=True),
                "specific_agreement": per_class_agreement(on),
            },
        }
        thin = rr.loc[[i for i in rr.index if i not in r1.index]]
        if len(thin):
            info["round2"]["thin"] = {
                "maps": int(len(thin)),
                "pairwise": pairwise(thin, skip_disjoint=True),
                "fleiss": fleiss(thin, by_count=True),
            }
    if len(by_round["3"]) >= 2:  # full passes under the revised guidelines: before and after on the same maps
        r3 = vote_table(by_round["3"]).dropna()
        same = [i for i in r3.index if i in full1.index]
        dis3 = [i for i in dis if i in r3.index]
        info["round3"] = {
            "annotators": list(r3.columns),
            "maps": int(len(r3)),
            "all": {
                "pairwise": pairwise(r3),
                "fleiss": fleiss(r3),
                "specific_agreement": per_class_agreement(r3),
            },
            "round1_maps": {
                "maps": len(same),
                "before": {"fleiss": fleiss(full1.loc[same])},
                "after": {"fleiss": fleiss(r3.loc[same])},
            },
            "disputed": {
                "maps": len(dis3),
                "before": {"fleiss": fleiss(full1.loc[dis3])},
                "after": {"fleiss": fleiss(r3.loc[dis3])},
            },
        }
        everyone = vote_table({**rounds["1"], **rounds["2"]})
        info["all_pairs"] = pairwise(everyone, skip_disjoint=True)
    from attnpatterns.annotate.dataset import class_balance

    info["status"] = {
        s: sum(r["status"] == s for r in rows) for s in ("unanimous", "majority", "adjudicated", "tie-rule")
    }
    info["balance"] = class_balance(rows)
    info["by_state"] = {
        s: class_balance([r for r in rows if r["model_state"] == s]) for s in sorted({r["model_state"] for r in rows})
    }
    info["by_task"] = {t: class_balance([r for r in rows if r["task"] == t]) for t in sorted({r["task"] for r in rows})}
    info["intra_rater"] = intra_rater(kind)
    return rows, maps, info


def intra_rater(kind: str) -> dict:
    """agent-annotator-1 against their own blind second passes (kept: this is intra-rater, not agreement)."""
    from sklearn.metrics import cohen_kappa_score

    from attnpatterns.annotate.dataset import read_annotator
    from attnpatterns.patterns import PATTERN_VALUES

    a1 = {r["id"]: r for r in read_annotator(ANN / kind / "annotators" / "agent-annotator-1.tsv")}
    out = {}
    for fname, col in (("second_pass.tsv", "label"), ("second_pass_v1.tsv", "label_pass1")):
        second = read_tsv(ANN / kind / fname)
        a = [a1[r["id"]][col] for r in second]
        b = [r["label"] for r in second]
        out[fname.removesuffix(".tsv")] = {
            "n": len(a),
            "kappa": float(cohen_kappa_score(a, b, labels=list(PATTERN_VALUES))),
            "agreement": sum(x == y for x, y in zip(a, b)) / len(a),
        }
    return out


def markdown(report: dict) -> str:
    from attnpatterns.patterns import PATTERN_VALUES

    L = []
    L.append("| kind | round | annotators | maps | pairwise Cohen's kappa | Fleiss' kappa | unanimous |")
    L.append("|---|---|---|---|---|---|---|")
    for kind, info in report["kinds"].items():
        r = info["round1"]
        pk = ", ".join(f"{p['a'].split('-')[-1]}-{p['b'].split('-')[-1]} {p['kappa']:.2f}" for p in r["pairwise"])
        L.append(
            f"| {kind} | 1, all maps | {len(r['annotators'])} | {r['fleiss']['n']} | {pk} | "
            f"{r['fleiss']['kappa']:.3f} | {r['fleiss']['unanimous']:.0%} |"
        )
        if "round2" in info:
            r2 = info["round2"]
            for when in ("before", "after"):
                x = r2[when]
                pk = ", ".join(
                    f"{p['a'].split('-')[-1]}-{p['b'].split('-')[-1]} {p['kappa']:.2f}" for p in x["pairwise"]
                )
                tag = "1, disputed maps" if when == "before" else "2 (revised), same maps"
                L.append(
                    f"| {kind} | {tag} | {x['fleiss']['raters']} per map | {x['fleiss']['n']} | {pk} | "
                    f"{x['fleiss']['kappa']:.3f} | {x['fleiss']['unanimous']:.0%} |"
                )
            if "thin" in r2:
                t = r2["thin"]
                pk = ", ".join(
                    f"{p['a'].split('-')[-1]}-{p['b'].split('-')[-1]} {p['kappa']:.2f}" for p in t["pairwise"]
                )
                L.append(
                    f"| {kind} | 2 (revised), thin-class maps | {t['fleiss']['raters']} per map | {t['fleiss']['n']} "
                    f"| {pk} | {t['fleiss']['kappa']:.3f} | {t['fleiss']['unanimous']:.0%} |"
                )
        if "round3" in info:
            r3 = info["round3"]
            pk = ", ".join(
                f"{p['a'].split('-')[-1]}-{p['b'].split('-')[-1]} {p['kappa']:.2f}" for p in r3["all"]["pairwise"]
            )
            f3 = r3["all"]["fleiss"]
            L.append(
                f"| {kind} | 3 (revised), all maps | {f3['raters']} | {f3['n']} | {pk} | {f3['kappa']:.3f} | "
                f"{f3['unanimous']:.0%} |"
            )
            for part, tag in (("round1_maps", "round-1 maps"), ("disputed", "the disputed maps")):
                x = r3[part]["after"]["fleiss"]
                L.append(
                    f"| {kind} | 3 (revised), {tag} | {x['raters']} | {x['n']} | | {x['kappa']:.3f} | "
                    f"{x['unanimous']:.0%} |"
                )
    L.append("")
    L.append("| kind | round | " + " | ".join(PATTERN_VALUES) + " |")
    L.append("|---|---|" + "---|" * len(PATTERN_VALUES))
    for kind, info in report["kinds"].items():
        pc = info["round1"]["fleiss"]["per_class"]
        L.append(f"| {kind} | 1 | " + " | ".join(f"{pc[c]:.2f}" for c in PATTERN_VALUES) + " |")
        if "round2" in info:
            pc = info["round2"]["after"]["fleiss"]["per_class"]
            L.append(f"| {kind} | 2 (disputed maps) | " + " | ".join(f"{pc[c]:.2f}" for c in PATTERN_VALUES) + " |")
        if "round3" in info:
            pc = info["round3"]["all"]["fleiss"]["per_class"]
            L.append(f"| {kind} | 3 (all maps) | " + " | ".join(f"{pc[c]:.2f}" for c in PATTERN_VALUES) + " |")
    L.append("")
    L.append("| kind | maps | " + " | ".join(PATTERN_VALUES) + " | unanimous | majority | adjudicated | tie rule |")
    L.append("|---|---|" + "---|" * (len(PATTERN_VALUES) + 4))
    for kind, info in report["kinds"].items():
        b, st = info["balance"], info["status"]
        L.append(
            f"| {kind} | {info['n']} | "
            + " | ".join(str(b[c]) for c in PATTERN_VALUES)
            + " | "
            + " | ".join(str(st[s]) for s in ("unanimous", "majority", "adjudicated", "tie-rule"))
            + " |"
        )
    for kind, info in report["kinds"].items():
        pairs = [("1", p) for p in info["round1"]["pairwise"]]
        pairs += [("3", p) for p in info.get("round3", {}).get("all", {}).get("pairwise", [])]
        for rnd, p in pairs:
            L.append("")
            L.append(
                f"{kind}, round {rnd}: {p['a']} (rows) vs {p['b']} (columns), {p['n']} maps, kappa {p['kappa']:.3f}"
            )
            L.append("")
            L.append("| | " + " | ".join(SHORT[c] for c in PATTERN_VALUES) + " |")
            L.append("|---" * 6 + "|")
            for c, row in zip(PATTERN_VALUES, p["confusion"]):
                L.append(f"| {SHORT[c]} | " + " | ".join(str(x) for x in row) + " |")
    return "\n".join(L)


def main(argv=None) -> int:
    from attnpatterns.annotate.dataset import write_set
    from attnpatterns.io import write_json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, default=None, help="thin-class candidate pool (sample_thin.py)")
    ap.add_argument("--disputed", type=Path, help="write the round-1 disputed ids of each kind to FILE-<kind>.txt")
    ap.add_argument("--dry-run", action="store_true", help="print the agreement, write nothing")
    args = ap.parse_args(argv)
    report: dict = {"rule": "annotations/tools/consensus.py docstring; attnpatterns.annotate.agreement", "kinds": {}}
    built = {}
    for kind in KINDS:
        rows, maps, info = build(kind, args.pool)
        built[kind] = (rows, maps)
        report["kinds"][kind] = info
        if args.disputed:
            Path(f"{args.disputed}-{kind}.txt").write_text("\n".join(disputed_ids(kind)) + "\n")
    print(markdown(report))
    if not args.dry_run:
        for kind, (rows, maps) in built.items():
            write_set(ANN, kind, rows, maps)
        write_json(ANN / "agreement.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
