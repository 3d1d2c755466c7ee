"""Choose the shipped classifier by agreement with annotators it was not trained on.

For each recipe and kind: leave-one-annotator-out and consensus-trained scores over 5 stratified folds
(``attnpatterns.classifier.crossannot``), beside the annotators' own pairwise kappas. Writes
``results/classifier/crossannot-<kind>.json``.

    .venv/bin/python results/classifier/crossannot.py --kind raw [--recipes features,improved,improved8]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def recipes_by_name():
    from attnpatterns.classifier.train import CNN8, FEATURES, IMPROVED, ORIGINAL

    return {"features": FEATURES, "improved": IMPROVED, "original": ORIGINAL, "cnn8": CNN8}


def main(argv=None) -> int:
    from attnpatterns.classifier.crossannot import annotator_kappas, annotators_vs_others, evaluate_recipes
    from attnpatterns.io import write_json

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kind", required=True, choices=("raw", "normed"))
    ap.add_argument("--recipes", default="features,cnn8")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocols", default="loao,consensus")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "classifier")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rb = recipes_by_name()
    res = evaluate_recipes(args.kind, [rb[r] for r in args.recipes.split(",")], ROOT / "annotations", args.folds,
                           args.seed, args.protocols.split(","), args.threads)
    res["annotator_kappas"] = annotator_kappas(ROOT / "annotations", args.kind)
    res["annotators_vs_others"] = annotators_vs_others(ROOT / "annotations", args.kind)
    path = args.out / f"crossannot-{args.kind}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    if old.get("recipes") and old.get("maps") == res["maps"]:
        old["recipes"].update(res["recipes"])
        res["recipes"] = old["recipes"]
    write_json(path, res)
    for name, r in res["recipes"].items():
        for proto, e in r.items():
            print(f"{args.kind} {name:10s} {proto:9s} F1 {e['weighted_f1_mean']:.3f} kappa {e['kappa_mean']:.3f} noise {e['noise']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
