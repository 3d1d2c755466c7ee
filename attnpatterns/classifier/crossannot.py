"""Judge a classifier recipe by how well it agrees with annotators it was not trained on.

Two protocols on the same stratified folds over the maps (stratified by the consensus label):

- **leave one annotator out** (``loao``): for each annotator X who labelled every map, the recipe is
  trained on the training folds' maps with the consensus of the OTHER annotators' votes (X's votes
  removed, the project's two-round consensus rule), and its predictions on the held-out fold are compared with X's own
  labels. Over the folds every map is predicted once, by a model that saw neither the map nor X.
- **consensus** (``consensus``): trained on the consensus labels of the training folds, scored on the
  held-out maps against each annotator (on the maps that annotator labelled; round-2 annotators relabelled
  only the hard maps) and against the consensus.

Reported per recipe: weighted F1 and Cohen's kappa against each held-out annotator (pooled over the
folds), their mean, and the split-to-split noise (std over folds of the per-fold weighted F1), so that a
difference between two recipes can be read against it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Sequence

import numpy as np

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")


def _votes(root, kind: str):
    from attnpatterns.annotate.agreement import vote_table
    from attnpatterns.annotate.dataset import read_annotators

    return vote_table(read_annotators(root, kind))


def _rounds(root, kind: str) -> dict:
    from attnpatterns.annotate.dataset import read_by_guidelines

    return read_by_guidelines(root, kind)


def consensus_without(r: dict[str, dict[str, dict[str, str]]], who: str, column: str = "label"):
    """The consensus labels by the project's two-round rule with annotator ``who``'s votes removed (``column``
    "votes": their deciding votes); ``r`` is ``{round: {annotator: {map id: label}}}`` as :func:`_rounds` reads
    it."""
    from attnpatterns.annotate.agreement import consensus_rounds, vote_table

    tables = [
        vote_table({k: v for k, v in r[key].items() if k != who}, min_annotators=1)
        if any(k != who for k in r[key])
        else None
        for key in ("1", "2")
    ]
    return consensus_rounds(tables[0], tables[1])[column]


def full_annotators(votes, coverage: float = 0.5) -> list[str]:
    """Annotators who labelled at least ``coverage`` of the maps (a full pass, not a relabel of a few)."""
    return [c for c in votes.columns if votes[c].notna().mean() >= coverage]


def full_revised_annotators(root, kind: str, full: Sequence[str]) -> list[str]:
    """Of the full-pass annotators ``full``, those whose labels were made under the revised guidelines (round 3)."""
    from attnpatterns.annotate.dataset import read_annotators

    third = read_annotators(root, kind, rounds=["3"])
    return [x for x in full if x in third]


def evaluate_recipes(
    kind: str,
    recipes: Sequence,
    root="annotations",
    folds: int = 5,
    seed: int = 0,
    protocols: Sequence[str] = ("loao", "consensus"),
    threads: int = 1,
    annotators: Sequence[str] | None = None,
) -> dict:
    """Out-of-fold predictions of every recipe under each protocol, scored against held-out annotators."""
    from sklearn.metrics import cohen_kappa_score

    from attnpatterns.classifier.data import load_data, stratified_folds, stratified_split
    from attnpatterns.classifier.fit import fit
    from attnpatterns.classifier.labels import LABEL_INDEX, LABELS
    from attnpatterns.classifier.recipes import TrainConfig
    from attnpatterns.classifier.scoring import predict_prepared, scores

    data = load_data(root, kind)
    votes = _votes(root, kind).reindex(data.ids)
    heldout = list(annotators) if annotators else full_annotators(votes)  # left out in turn (loao)
    everyone = list(votes.columns)  # scored against under the consensus protocol
    revised = full_revised_annotators(root, kind, heldout)
    if not heldout:
        raise UserError(f"{root}/{kind}: no annotator labelled every map; leave-one-annotator-out needs one.")
    parts = stratified_folds(data.y, folds, seed)
    cfg = TrainConfig(kind=kind, data=str(root), seed=seed, threads=threads)
    targets: dict[str, np.ndarray] = {"consensus": data.y}
    soft: dict[str, np.ndarray | None] = {"consensus": data.soft}
    if "loao" in protocols:
        rounds = _rounds(root, kind)
        for x in heldout:
            lab = consensus_without(rounds, x).reindex(data.ids)
            if lab.isna().any():
                raise UserError(
                    f"{kind}: some maps have no vote once '{x}' is left out; every map needs two annotators."
                )
            targets[f"without:{x}"] = np.array([LABEL_INDEX[v] for v in lab], dtype=np.int64)
            if any(r.soft for r in recipes):
                from attnpatterns.annotate.agreement import soft_labels

                soft[f"without:{x}"] = soft_labels(list(consensus_without(rounds, x, "votes").reindex(data.ids)))
    out: dict = {
        "kind": kind,
        "folds": folds,
        "seed": seed,
        "maps": len(data),
        "annotators": everyone,
        "left_out": heldout,
        "revised_full_passes": revised,
        "protocols": list(protocols),
        "recipes": {},
    }
    for r in recipes:
        res: dict = {}
        for proto in protocols:
            train_keys = [f"without:{x}" for x in heldout] if proto == "loao" else ["consensus"]
            preds = {k: np.full(len(data), -1, dtype=np.int64) for k in train_keys}
            for k in train_keys:
                y_all = targets[k]
                for f_i, test_idx in enumerate(parts):
                    rest_idx = np.setdiff1d(np.arange(len(data)), test_idx)
                    part = data.subset(rest_idx)
                    part.y = y_all[rest_idx]
                    s_all = soft.get(k)
                    part.soft = s_all[rest_idx] if s_all is not None else None
                    tr, va = stratified_split(part.y, cfg.val_fraction, seed + 1 + f_i)
                    fr = fit(part.subset(tr), part.subset(va), r, replace(cfg, seed=seed + f_i))
                    test = data.subset(test_idx)
                    preds[k][test_idx] = predict_prepared(fr.model, test.maps, fr.preprocess)
            per_ann = {}
            for x in heldout if proto == "loao" else everyone:
                p = preds[f"without:{x}"] if proto == "loao" else preds["consensus"]
                has = votes[x].notna().to_numpy()
                truth = np.array([LABEL_INDEX[v] if isinstance(v, str) else -1 for v in votes[x]], dtype=np.int64)
                sc = scores(truth[has], p[has])
                per_fold = [scores(truth[t][has[t]], p[t][has[t]])["weighted_f1"] for t in parts if has[t].any()]
                truth, p = truth[has], p[has]
                per_ann[x] = {
                    "weighted_f1": sc["weighted_f1"],
                    "macro_f1": sc["macro_f1"],
                    "kappa": float(cohen_kappa_score(truth, p, labels=list(range(len(LABELS))))),
                    "fold_std": float(np.std(per_fold)),
                    "per_fold": per_fold,
                    "per_class_f1": {c: v["f1"] for c, v in sc["per_class"].items()},
                }
            full = [x for x in per_ann if x in heldout]  # the means: over the full passes
            entry = {
                "per_annotator": per_ann,
                "weighted_f1_mean": float(np.mean([per_ann[x]["weighted_f1"] for x in full])),
                "kappa_mean": float(np.mean([per_ann[x]["kappa"] for x in full])),
                "noise": float(np.mean([per_ann[x]["fold_std"] for x in full])),
            }
            rev = [x for x in full if x in revised]
            if rev:  # the full passes made under the revised guidelines, the conventions the consensus follows
                entry["revised"] = {
                    "annotators": rev,
                    "weighted_f1_mean": float(np.mean([per_ann[x]["weighted_f1"] for x in rev])),
                    "kappa_mean": float(np.mean([per_ann[x]["kappa"] for x in rev])),
                    "noise": float(np.mean([per_ann[x]["fold_std"] for x in rev])),
                }
            if proto == "consensus":
                sc = scores(data.y, preds["consensus"])
                entry["vs_consensus"] = {
                    "weighted_f1": sc["weighted_f1"],
                    "kappa": float(cohen_kappa_score(data.y, preds["consensus"], labels=list(range(len(LABELS))))),
                }
            res[proto] = entry
            log.info(
                "%s %s %s: F1 %.3f kappa %.3f", kind, r.name, proto, entry["weighted_f1_mean"], entry["kappa_mean"]
            )
        out["recipes"][r.name] = res
    return out


def annotator_kappas(root, kind: str) -> dict:
    """Every pair of annotators' Cohen's kappa on the maps both labelled (the human range a model is held to)."""
    from attnpatterns.annotate.agreement import pairwise

    votes = _votes(root, kind)
    pairs = pairwise(votes, skip_disjoint=True)
    return {
        "pairs": [{"a": p["a"], "b": p["b"], "kappa": p["kappa"], "n": p["n"]} for p in pairs],
        "min": float(min(p["kappa"] for p in pairs)) if pairs else float("nan"),
        "max": float(max(p["kappa"] for p in pairs)) if pairs else float("nan"),
    }


def annotators_vs_others(root, kind: str) -> dict:
    """Each annotator against the consensus of the others (the target a left-out model is scored on, the other way
    round): weighted F1 and Cohen's kappa on the maps the annotator labelled. A model that agrees with a left-out
    annotator as well as the others' consensus does is at human parity."""
    from sklearn.metrics import cohen_kappa_score, f1_score

    from attnpatterns.classifier.labels import LABELS

    votes = _votes(root, kind)
    rounds = _rounds(root, kind)
    out = {}
    for x in votes.columns:
        others = consensus_without(rounds, x)
        mine = votes[x].dropna()
        common = [i for i in mine.index if i in others.index]
        a, b = [others[i] for i in common], [mine[i] for i in common]
        out[x] = {
            "n": len(common),
            "weighted_f1": float(f1_score(b, a, labels=list(LABELS), average="weighted", zero_division=0)),
            "kappa": float(cohen_kappa_score(a, b, labels=list(LABELS))),
        }
    return out
