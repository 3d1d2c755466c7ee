"""Choose the shipped classifier by agreement with annotators it was not trained on.

For each recipe and kind: leave-one-annotator-out and consensus-trained scores over 5 stratified folds
(``attnpatterns.classifier.crossannot``), beside the annotators' own pairwise kappas. Writes
``results/classifier/crossannot-<kind>.json``.

    .venv/bin/python results/classifier/crossannot.py --kind raw [--recipes features,cnn8,cnn8wide,improved]
    .venv/bin/python results/classifier/crossannot.py --table      # crossannot.md from both JSON files
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def recipes_by_name():
    from attnpatterns.classifier.recipes import RECIPES

    return RECIPES


def table(out: Path) -> str:
    """Markdown of both kinds' results (``--table``): per recipe and protocol, F1 and kappa against each annotator."""
    lines = []
    for kind in ("raw", "normed"):
        path = out / f"crossannot-{kind}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        if "annotators_vs_others" not in d:
            from attnpatterns.classifier.crossannot import annotators_vs_others
            from attnpatterns.io import write_json

            d["annotators_vs_others"] = annotators_vs_others(ROOT / "annotations", kind)
            write_json(path, d)
        lines += [
            f"### {kind} ({d['maps']} maps, {d['folds']} folds, seed {d['seed']})",
            "",
            "| recipe | protocol | weighted F1 (mean over full passes) | Cohen's kappa (mean) | fold-to-fold std | "
            "weighted F1 / kappa, full passes under the revised guidelines | kappa with each annotator |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in d["recipes"].items():
            for proto, e in r.items():
                each = ", ".join(f"{a.split('-')[-1]} {v['kappa']:.2f}" for a, v in e["per_annotator"].items())
                rv = e.get("revised")
                rev = (
                    f"{rv['weighted_f1_mean']:.3f} / {rv['kappa_mean']:.3f} "
                    f"({', '.join(a.split('-')[-1] for a in rv['annotators'])})"
                    if rv
                    else "-"
                )
                lines.append(
                    f"| {name} | {proto} | {e['weighted_f1_mean']:.3f} | {e['kappa_mean']:.3f} | "
                    f"{e['noise']:.3f} | {rev} | {each} |"
                )
        hv = d.get("annotators_vs_others", {})
        if hv:
            lines += [
                "",
                "Each annotator against the consensus of the others (the human reference): "
                + ", ".join(
                    f"{a.split('-')[-1]} F1 {v['weighted_f1']:.2f} / kappa {v['kappa']:.2f} ({v['n']} maps)"
                    for a, v in hv.items()
                )
                + ".",
            ]
        ak = d.get("annotator_kappas", {})
        if ak.get("pairs"):
            lines += [
                "",
                "Annotators' pairwise Cohen's kappa: "
                + ", ".join(f"{p['a'].split('-')[-1]}-{p['b'].split('-')[-1]} {p['kappa']:.2f}" for p in ak["pairs"])
                + ".",
            ]
        lines.append("")
    text = "\n".join(lines)
    (out / "crossannot.md").write_text(text + "\n")
    return text


def main(argv=None) -> int:
    from attnpatterns.classifier.crossannot import annotator_kappas, annotators_vs_others, evaluate_recipes
    from attnpatterns.io import write_json

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kind", choices=("raw", "normed"))
    ap.add_argument("--table", action="store_true", help="only write crossannot.md from the JSON files")
    ap.add_argument("--recipes", default="features,cnn8,cnn8wide")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocols", default="loao,consensus")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "classifier")
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.out))
        return 0
    if not args.kind:
        ap.error("--kind is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rb = recipes_by_name()
    res = evaluate_recipes(
        args.kind,
        [rb[r] for r in args.recipes.split(",")],
        ROOT / "annotations",
        args.folds,
        args.seed,
        args.protocols.split(","),
        args.threads,
    )
    res["annotator_kappas"] = annotator_kappas(ROOT / "annotations", args.kind)
    res["annotators_vs_others"] = annotators_vs_others(ROOT / "annotations", args.kind)
    path = args.out / f"crossannot-{args.kind}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    if old.get("recipes") and old.get("maps") == res["maps"] and old.get("annotators") == res["annotators"]:
        old["recipes"].update(res["recipes"])
        res["recipes"] = old["recipes"]
    write_json(path, res)
    for name, r in res["recipes"].items():
        for proto, e in r.items():
            print(
                f"{args.kind} {name:10s} {proto:9s} F1 {e['weighted_f1_mean']:.3f} kappa {e['kappa_mean']:.3f} noise "
                f"{e['noise']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
