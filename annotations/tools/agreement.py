"""Class balance of the annotated set and agreement of the blind second pass with the first.

Reads ``annotations/<kind>/labels.tsv`` (first pass) and ``annotations/<kind>/second_pass.tsv``
(blind pass under annotations/GUIDELINES.md, compared with the final labels) and
``second_pass_v1.tsv`` (blind pass made before the guidelines existed, compared with the pass-1
labels, column ``label_pass1``), and writes ``annotations/agreement.json``: per kind and pooled, the number of
maps, the class balance (overall and per model state / task), Cohen's kappa between the passes
(``sklearn.metrics.cohen_kappa_score``), the raw agreement and the confusion matrix (rows = first
pass, columns = second pass), and the same comparison between the heuristic hint shown on the
pass-1 sheets (``suggested_label``) and the label given by eye on those sheets (``label_pass1``). Prints the same as Markdown tables for the README.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("raw", "normed")


def read_tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def compare(first: list[str], second: list[str], labels: list[str]) -> dict:
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    return {
        "n": len(first),
        "kappa": float(cohen_kappa_score(first, second, labels=labels)),
        "agreement": float(sum(a == b for a, b in zip(first, second)) / len(first)),
        "labels": labels,
        "confusion": confusion_matrix(first, second, labels=labels).tolist(),
    }


def summarise(root: Path = ROOT / "annotations") -> dict:
    from attnpatterns.annotate.dataset import class_balance, load
    from attnpatterns.patterns import PATTERN_VALUES

    labels = list(PATTERN_VALUES)
    out: dict = {"kinds": {}}
    pooled_first, pooled_second = [], []
    for kind in KINDS:
        ds = load(root, kind, with_maps=False)
        rows = ds.rows
        info = {"n": len(rows), "balance": class_balance(rows), "by_state": {}, "by_task": {},
                "tasks": sorted({r["task"] for r in rows}), "layers_heads_covered": len({(r["layer"], r["head"]) for r in rows})}
        for key, name in (("model_state", "by_state"), ("task", "by_task")):
            for v in sorted({r.get(key, "") for r in rows}):
                info[name][v] = class_balance([r for r in rows if r.get(key, "") == v])
        # how far the labels follow the heuristic hint that was shown on the pass-1 sheets
        shown = [(r["suggested_label"], r.get("label_pass1") or r["label"]) for r in rows if r.get("suggested_label")]
        if shown:
            info["hint_vs_label"] = compare([a for a, _ in shown], [b for _, b in shown], labels)
        # second_pass.tsv: blind pass under GUIDELINES.md, against the final labels;
        # second_pass_v1.tsv: blind pass before the guidelines, against the pass-1 labels (label_pass1)
        for fname, key, col, pooled in (("second_pass.tsv", "second_pass", "label", True),
                                         ("second_pass_v1.tsv", "second_pass_v1", "label_pass1", False)):
            agree_path = root / kind / fname
            if not agree_path.exists():
                continue
            first = {r["id"]: r.get(col) or r["label"] for r in rows}
            second = read_tsv(agree_path)
            missing = [r["id"] for r in second if r["id"] not in first]
            if missing:
                raise SystemExit(f"{agree_path}: ids not in labels.tsv: {missing[:3]}")
            a = [first[r["id"]] for r in second]
            b = [r["label"] for r in second]
            info[key] = compare(a, b, labels)
            if pooled:
                pooled_first += a
                pooled_second += b
        reviewed = [r for r in rows if r.get("label_pass1")]
        info["changed_by_review"] = sum(r["label"] != r["label_pass1"] for r in reviewed)
        out["kinds"][kind] = info
    if pooled_first:
        out["pooled_second_pass"] = compare(pooled_first, pooled_second, labels)
    return out


def markdown(s: dict) -> str:
    lines = []
    labels = None
    lines.append("| kind | maps | vertical | diagonal | vertical+diagonal | block | heterogeneous |")
    lines.append("|---|---|---|---|---|---|---|")
    for kind, info in s["kinds"].items():
        for sub, bal in [("all", info["balance"])] + [(k, v) for k, v in info["by_state"].items()]:
            n = sum(bal.values())
            cells = " | ".join(f"{c} ({c / n:.0%})" for c in bal.values())
            lines.append(f"| {kind} ({sub}) | {n} | {cells} |")
    lines.append("")
    lines.append("| kind | maps annotated twice | Cohen's kappa | raw agreement |")
    lines.append("|---|---|---|---|")
    for key, what in (("second_pass", "under GUIDELINES.md, vs final labels"),
                      ("second_pass_v1", "before the guidelines, vs pass-1 labels")):
        for kind, info in s["kinds"].items():
            sp = info.get(key)
            if sp:
                labels = sp["labels"]
                lines.append(f"| {kind} ({what}) | {sp['n']} | {sp['kappa']:.3f} | {sp['agreement']:.1%} |")
    if "pooled_second_pass" in s:
        sp = s["pooled_second_pass"]
        lines.append(f"| pooled (under GUIDELINES.md) | {sp['n']} | {sp['kappa']:.3f} | {sp['agreement']:.1%} |")
    lines.append("")
    lines.append("| kind | heuristic hint vs label by eye: Cohen's kappa | agreement |")
    lines.append("|---|---|---|")
    for kind, info in s["kinds"].items():
        h = info.get("hint_vs_label")
        if h:
            lines.append(f"| {kind} | {h['kappa']:.3f} | {h['agreement']:.1%} |")
    for kind, info in list(s["kinds"].items()) + [("pooled", {"second_pass": s.get("pooled_second_pass")})]:
        sp = info.get("second_pass")
        if not sp:
            continue
        lines.append("")
        lines.append(f"Confusion, {kind} (rows: first pass, columns: blind second pass):")
        lines.append("")
        short = {"vertical": "V", "diagonal": "D", "vertical+diagonal": "VD", "block": "B", "heterogeneous": "H"}
        lines.append("| | " + " | ".join(short[l] for l in labels) + " |")
        lines.append("|---" * (len(labels) + 1) + "|")
        for l, row in zip(labels, sp["confusion"]):
            lines.append(f"| {short[l]} | " + " | ".join(str(x) for x in row) + " |")
    return "\n".join(lines)


def main() -> int:
    from attnpatterns.io import write_json

    s = summarise()
    write_json(ROOT / "annotations" / "agreement.json", s)
    print(markdown(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
