"""Agreement between independent annotators, and consensus labels from their votes.

A vote table is a :class:`pandas.DataFrame` indexed by map id with one column per annotator and the
label each gave (missing where an annotator did not label the map). From it:

- :func:`pairwise` : Cohen's kappa (``sklearn.metrics.cohen_kappa_score``), raw agreement and the
  confusion matrix for every pair of annotators, on the maps both labelled;
- :func:`fleiss` : Fleiss' kappa (``statsmodels.stats.inter_rater.fleiss_kappa``) over the maps that
  every annotator labelled, overall and per class (the class against the rest);
- :func:`consensus` : one label per map by the documented rule below, with its votes.

Consensus rule (``majority``): the label with more than half of the map's votes wins (``status``
``unanimous`` or ``majority``). Otherwise the map is a tie between the labels with the most votes; it is
adjudicated (``status`` ``adjudicated``) by the adjudicators' votes when given (the tied label most of
them chose), else by GUIDELINES.md rule 10 (``status`` ``tie-rule``): ``heterogeneous`` when it is among
the tied labels, else the first tied label in the order heterogeneous, block, vertical+diagonal,
diagonal, vertical (the more conservative reading first). The votes ship with the label (``votes`` =
``label=count`` pairs, most votes first), so a user can train on soft labels or drop contested maps.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Mapping, Sequence

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.patterns import PATTERN_VALUES

LABELS: tuple[str, ...] = PATTERN_VALUES
TIE_ORDER: tuple[str, ...] = ("heterogeneous", "block", "vertical+diagonal", "diagonal", "vertical")


def vote_table(labels: Mapping[str, Mapping[str, str]], min_annotators: int = 2):
    """``{annotator: {map id: label}}`` -> the vote table (maps sorted by id, annotators in the given order)."""
    import pandas as pd

    if len(labels) < min_annotators:
        raise UserError(f"agreement needs at least two annotators, got {len(labels)}; add another annotator's labels.")
    for who, lab in labels.items():
        bad = sorted({v for v in lab.values() if v not in LABELS})
        if bad:
            raise UserError(
                f"annotator '{who}' uses labels outside the five types ({', '.join(bad)}); use {', '.join(LABELS)}."
            )
    return pd.DataFrame({who: pd.Series(dict(lab), dtype=object) for who, lab in labels.items()}).sort_index()


def pairwise(votes, skip_disjoint: bool = False) -> list[dict]:
    """Every pair of annotators on the maps both labelled: n, Cohen's kappa, raw agreement, confusion
    (rows: the first annotator, columns: the second, in :data:`LABELS` order). Pairs without a common map
    are an error, or left out with ``skip_disjoint`` (annotators who split a set between them)."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    out = []
    for a, b in combinations(votes.columns, 2):
        both = votes[[a, b]].dropna()
        if len(both) == 0 and skip_disjoint:
            continue
        if len(both) == 0:
            raise UserError(f"annotators '{a}' and '{b}' labelled no map in common; give them overlapping maps.")
        x, y = both[a].tolist(), both[b].tolist()
        out.append(
            {
                "a": a,
                "b": b,
                "n": len(both),
                "kappa": float(cohen_kappa_score(x, y, labels=list(LABELS))),
                "agreement": float(np.mean([i == j for i, j in zip(x, y)])),
                "confusion": confusion_matrix(x, y, labels=list(LABELS)).tolist(),
            }
        )
    return out


def _label_counts(votes) -> np.ndarray:
    """(maps, 5) how many votes each map got for each label, in :data:`LABELS` order."""
    return np.stack([(votes == lab).sum(axis=1).to_numpy() for lab in LABELS], axis=1).astype(np.int64)


def counts_matrix(votes) -> np.ndarray:
    """(maps, 5) how many annotators gave each label, over the maps every annotator labelled."""
    return _label_counts(votes.dropna())


def fleiss(votes, by_count: bool = False) -> dict:
    """Fleiss' kappa over the maps every annotator labelled, overall and per class (class vs rest).

    With ``by_count`` the raters may differ from map to map (Fleiss' own setting): every map with the
    most common number of votes counts, whoever gave them."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    if by_count:
        table = _label_counts(votes)
        n = table.sum(axis=1)
        table = table[n == np.bincount(n).argmax()] if len(n) else table
    else:
        table = counts_matrix(votes)
    if len(table) == 0:
        raise UserError("no map was labelled by every annotator; Fleiss' kappa needs maps they all labelled.")
    raters = int(table[0].sum())
    per_class = {}
    for k, lab in enumerate(LABELS):
        binary = np.stack([table[:, k], raters - table[:, k]], axis=1)
        per_class[lab] = float(fleiss_kappa(binary)) if 0 < table[:, k].sum() < raters * len(table) else float("nan")
    return {
        "n": int(len(table)),
        "raters": raters,
        "kappa": float(fleiss_kappa(table)),
        "per_class": per_class,
        "unanimous": float(np.mean(table.max(axis=1) == raters)),
    }


def per_class_agreement(votes) -> dict:
    """Per class, the proportion of specific agreement over all annotator pairs: of the pairwise judgements
    in which at least one annotator chose the class, the share in which both did (2 x both / (a + b))."""
    both = {lab: 0 for lab in LABELS}
    either = {lab: 0 for lab in LABELS}
    for a, b in combinations(votes.columns, 2):
        p = votes[[a, b]].dropna()
        for lab in LABELS:
            x, y = (p[a] == lab).to_numpy(), (p[b] == lab).to_numpy()
            both[lab] += int(2 * (x & y).sum())
            either[lab] += int(x.sum() + y.sum())
    return {lab: (both[lab] / either[lab] if either[lab] else float("nan")) for lab in LABELS}


def consensus_one(votes: Sequence[str], adjudication: Sequence[str] = ()) -> tuple[str, str, str]:
    """(label, status, votes) for one map's votes by the rule of this module's docstring."""
    votes = [v for v in votes if isinstance(v, str)]
    if not votes:
        raise UserError("a map has no votes; every map needs at least one annotator's label.")
    counts = {lab: votes.count(lab) for lab in LABELS if lab in votes}
    order = sorted(counts, key=lambda lab: (-counts[lab], TIE_ORDER.index(lab)))
    text = " ".join(f"{lab}={counts[lab]}" for lab in order)
    top = counts[order[0]]
    if top * 2 > len(votes):
        return order[0], ("unanimous" if top == len(votes) else "majority"), text
    tied = [lab for lab in order if counts[lab] == top]
    adj = [v for v in adjudication if v in tied]
    if adj:
        best = max(tied, key=lambda lab: (adj.count(lab), -TIE_ORDER.index(lab)))
        if adj.count(best) * 2 > len(adj) or len(set(adj)) == 1:
            return best, "adjudicated", text
    for lab in TIE_ORDER:
        if lab in tied:
            return lab, "tie-rule", text
    raise AssertionError("unreachable")


def consensus(votes, adjudication=None):
    """The consensus of a vote table: a DataFrame (index map id) with ``label``, ``status``, ``votes``,
    ``n_votes`` and ``share`` (the winning label's share of the votes). ``adjudication`` is a vote table of
    adjudicators (same index or a subset) consulted for ties only."""
    import pandas as pd

    rows = {mid: _consensus_row(_votes_of(votes, mid), _votes_of(adjudication, mid)) for mid in votes.index}
    return pd.DataFrame.from_dict(rows, orient="index")


def _votes_of(table, mid) -> list[str]:
    """The labels a vote table (or None) holds for one map; [] when the map is not in it."""
    if table is None or mid not in table.index:
        return []
    return [v for v in table.loc[mid].tolist() if isinstance(v, str)]


def _consensus_row(deciding: list[str], adjudication: list[str]) -> dict:
    label, status, text = consensus_one(deciding, adjudication)
    return {
        "label": label,
        "status": status,
        "votes": text,
        "n_votes": len(deciding),
        "share": deciding.count(label) / len(deciding),
    }


def consensus_rounds(first, second=None) -> Any:
    """The consensus of two rounds (the project's rule, ``annotations/README.md``): a map with votes in the
    second round (a relabel under revised guidelines) takes their majority, ties adjudicated by its first-round
    votes; any other map takes its first-round consensus. ``first`` and ``second`` are vote tables."""
    import pandas as pd

    ids = sorted(set(first.index) | (set(second.index) if second is not None else set()))
    rows = {}
    for mid in ids:
        v1, v2 = _votes_of(first, mid), _votes_of(second, mid)
        if v2:
            rows[mid] = _consensus_row(v2, v1)
        elif v1:
            rows[mid] = _consensus_row(v1, [])
    return pd.DataFrame.from_dict(rows, orient="index")


def parse_votes(text: str) -> dict[str, int]:
    """``'vertical=2 diagonal=1'`` -> ``{'vertical': 2, 'diagonal': 1}`` (the ``votes`` column)."""
    out: dict[str, int] = {}
    for part in str(text).split():
        lab, _, n = part.partition("=")
        if lab not in LABELS or not n.isdigit():
            raise UserError(f"votes '{text}' are not 'label=count' pairs of the five types.")
        out[lab] = int(n)
    return out


def soft_labels(votes_column: Sequence[str]) -> np.ndarray:
    """(maps, 5) vote shares from a ``votes`` column, in :data:`LABELS` order (for training on soft labels)."""
    out = np.zeros((len(votes_column), len(LABELS)), dtype=np.float32)
    for i, text in enumerate(votes_column):
        c = parse_votes(text)
        total = sum(c.values())
        for lab, n in c.items():
            out[i, LABELS.index(lab)] = n / total
    return out


def report(votes) -> dict:
    """Everything above for one vote table, as plain JSON-ready data: pairwise figures for every pair with maps
    in common, Fleiss' kappa over the maps everyone labelled (None when there are none)."""
    pairs = pairwise(votes, skip_disjoint=True)
    if not pairs:
        raise UserError("no two annotators labelled a map in common; give them overlapping maps.")
    return {
        "annotators": list(votes.columns),
        "maps": int(len(votes)),
        "pairwise": pairs,
        "fleiss": fleiss(votes) if len(votes.dropna()) else None,
        "specific_agreement": per_class_agreement(votes),
        "labels": list(LABELS),
    }
