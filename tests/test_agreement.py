"""Agreement between annotators (Cohen, Fleiss, per class) and the consensus rule, on hand-made vote tables."""

from __future__ import annotations

import numpy as np
import pytest

from attnpatterns.annotate import agreement as A
from attnpatterns.errors import UserError

V, D, VD, B, H = "vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous"


def _fixture():
    # 8 maps x 3 annotators
    return A.vote_table(
        {
            "ann1": {"m1": V, "m2": V, "m3": D, "m4": D, "m5": B, "m6": H, "m7": VD, "m8": H},
            "ann2": {"m1": V, "m2": H, "m3": D, "m4": VD, "m5": B, "m6": H, "m7": VD, "m8": V},
            "ann3": {"m1": V, "m2": V, "m3": D, "m4": VD, "m5": H, "m6": D, "m7": D, "m8": B},
        }
    )


def _fleiss_by_hand(table: np.ndarray) -> float:
    """Fleiss (1971): P_i = (sum_j n_ij^2 - n) / (n (n - 1)); P_e = sum_j p_j^2."""
    n = table.sum(axis=1)[0]
    p_j = table.sum(axis=0) / table.sum()
    p_i = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    return float((p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum()))


def test_fleiss_matches_statsmodels_and_the_formula():
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    v = _fixture()
    table, _ = aggregate_raters(v.to_numpy())
    expected = fleiss_kappa(table)
    got = A.fleiss(v)
    assert got["kappa"] == pytest.approx(expected)
    assert got["kappa"] == pytest.approx(_fleiss_by_hand(A.counts_matrix(v)))
    assert got["n"] == 8 and got["raters"] == 3
    assert got["unanimous"] == pytest.approx(2 / 8)  # m1 and m3
    # per class: the class against the rest, a 2-category Fleiss' kappa
    cm = A.counts_matrix(v)
    k = A.LABELS.index(V)
    binary = np.stack([cm[:, k], 3 - cm[:, k]], axis=1)
    assert got["per_class"][V] == pytest.approx(fleiss_kappa(binary))


def test_perfect_and_chance_agreement():
    same = A.vote_table({"a": {"1": V, "2": D, "3": B}, "b": {"1": V, "2": D, "3": B}})
    assert A.fleiss(same)["kappa"] == pytest.approx(1.0)
    assert A.pairwise(same)[0]["kappa"] == pytest.approx(1.0)
    assert A.per_class_agreement(same)[V] == pytest.approx(1.0)


def test_pairwise_is_sklearn_on_the_overlap_with_confusion():
    from sklearn.metrics import cohen_kappa_score

    v = A.vote_table({"a": {"1": V, "2": D, "3": H, "4": V}, "b": {"1": V, "2": H, "3": H, "5": D}})
    [p] = A.pairwise(v)
    assert p["n"] == 3  # maps 1, 2, 3
    assert p["kappa"] == pytest.approx(cohen_kappa_score([V, D, H], [V, H, H], labels=list(A.LABELS)))
    cm = np.array(p["confusion"])
    assert cm.sum() == 3 and cm[A.LABELS.index(D), A.LABELS.index(H)] == 1
    assert p["agreement"] == pytest.approx(2 / 3)


def test_consensus_rule_on_hand_made_votes():
    assert A.consensus_one([V, V, V]) == (V, "unanimous", "vertical=3")
    assert A.consensus_one([V, D, V]) == (V, "majority", "vertical=2 diagonal=1")
    # three different labels: GUIDELINES rule 10, heterogeneous first among the tied
    assert A.consensus_one([V, D, H])[:2] == (H, "tie-rule")
    # no heterogeneous among the tied: the conservative order block, vertical+diagonal, diagonal, vertical
    assert A.consensus_one([V, D, VD])[:2] == (VD, "tie-rule")
    assert A.consensus_one([V, D])[:2] == (D, "tie-rule")
    # an adjudicator decides a tie when they chose one of the tied labels
    assert A.consensus_one([V, D, H], adjudication=[V, V]) == (
        V,
        "adjudicated",
        "heterogeneous=1 diagonal=1 vertical=1",
    )
    # an adjudicator outside the tied labels does not decide
    assert A.consensus_one([V, D], adjudication=[B])[:2] == (D, "tie-rule")
    # split adjudicators do not decide either
    assert A.consensus_one([V, D], adjudication=[V, D])[:2] == (D, "tie-rule")


def test_consensus_table_contested_map_and_soft_labels():
    v = _fixture()
    c = A.consensus(v)
    assert c.loc["m1", "status"] == "unanimous" and c.loc["m1", "share"] == 1.0
    assert c.loc["m2", "label"] == V and c.loc["m2", "status"] == "majority"
    assert c.loc["m8", "status"] == "tie-rule" and c.loc["m8", "label"] == H  # H, V, B
    assert c.loc["m8", "share"] == pytest.approx(1 / 3)  # contested: a user can drop it
    soft = A.soft_labels(c["votes"].tolist())
    assert soft.shape == (8, 5)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
    assert soft[1, A.LABELS.index(V)] == pytest.approx(2 / 3)


def test_bad_input_is_one_line():
    with pytest.raises(UserError, match="at least two annotators"):
        A.vote_table({"a": {"1": V}})
    with pytest.raises(UserError, match="outside the five types"):
        A.vote_table({"a": {"1": "stripes"}, "b": {"1": V}})
    with pytest.raises(UserError, match="no map in common"):
        A.pairwise(A.vote_table({"a": {"1": V}, "b": {"2": V}}))
    with pytest.raises(UserError, match="labelled by every annotator"):
        A.fleiss(A.vote_table({"a": {"1": V}, "b": {"2": V}}))
    with pytest.raises(UserError, match="label=count"):
        A.parse_votes("vertical:2")


def test_consensus_of_two_rounds():
    """Round 2 (a blind relabel under revised guidelines) decides the maps it covers; its ties go to round 1."""
    r1 = A.vote_table(
        {"a": {"m1": V, "m2": D, "m3": H}, "b": {"m1": V, "m2": VD, "m3": H}, "c": {"m1": V, "m2": VD, "m3": V}}
    )
    r2 = A.vote_table({"d": {"m2": D, "m3": V, "m4": B}, "e": {"m2": D, "m3": H, "m4": B}})
    c = A.consensus_rounds(r1, r2)
    assert c.loc["m1", ["label", "status"]].tolist() == [V, "unanimous"]  # round 1 only
    assert c.loc["m2", ["label", "status"]].tolist() == [D, "unanimous"]  # the revision overrides round 1's VD
    assert c.loc["m3", ["label", "status"]].tolist() == [H, "adjudicated"]  # V/H tie, round 1 said H twice
    assert c.loc["m4", ["label", "status"]].tolist() == [B, "unanimous"]  # a new map, round 2 only
    assert c.loc["m3", "votes"] == "heterogeneous=1 vertical=1"


def test_cli_agreement_table_and_json(tmp_path):
    import json

    from typer.testing import CliRunner

    from attnpatterns.annotate.dataset import write_annotator
    from cli.main import app

    def rows(labels, who):
        return [
            {"id": f"m{i}", "label": lab, "confident": "yes", "annotator": f"{who} (test)", "round": "1"}
            for i, lab in enumerate(labels)
        ]

    write_annotator(tmp_path, "raw", "ann1", rows([V, V, D, B, H, H], "ann1"))
    write_annotator(tmp_path, "raw", "ann2", rows([V, H, D, B, H, V], "ann2"))
    r = CliRunner().invoke(
        app,
        ["annotate", "agreement", "--kind", "raw", "--data", str(tmp_path), "--out", str(tmp_path / "agreement.json")],
    )
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "agreement.json").read_text())
    [p] = rep["pairwise"]
    assert p["n"] == 6 and p["agreement"] == pytest.approx(4 / 6)
    assert "Cohen's kappa" in r.output and "Fleiss' kappa over the 6 maps all 2 labelled" in r.output
    # no annotators at all: one line, nothing written
    r = CliRunner().invoke(app, ["annotate", "agreement", "--kind", "normed", "--data", str(tmp_path)])
    assert r.exit_code != 0 and "no annotator" in r.output


def test_consensus_without_one_annotator_and_its_votes():
    """Leaving annotator 'e' out: round 2's remaining vote decides, and its deciding votes come out as soft labels."""
    from attnpatterns.classifier.crossannot import consensus_without

    r = {
        "1": {"a": {"m1": V, "m2": VD}, "b": {"m1": V, "m2": VD}},
        "2": {"d": {"m2": D}, "e": {"m1": H, "m2": VD}},
    }
    assert consensus_without(r, "e").to_dict() == {"m1": V, "m2": D}
    votes = consensus_without(r, "e", "votes")
    assert votes.to_dict() == {"m1": "vertical=2", "m2": "diagonal=1"}
    assert consensus_without(r, "d", "votes").to_dict() == {"m1": "heterogeneous=1", "m2": "vertical+diagonal=1"}
    soft = A.soft_labels(list(votes))
    assert soft.tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]]
