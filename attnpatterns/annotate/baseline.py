"""The heuristic pre-annotation (:func:`attnpatterns.patterns.suggest`) scored against an annotated set: the baseline
a trained classifier has to beat (``attn annotate baseline``)."""

from __future__ import annotations

import os

from attnpatterns.errors import UserError


def score_heuristic(data: str | os.PathLike, kind: str, retokenize: bool = True, data_dir=None) -> dict:
    """Accuracy, weighted F1 and the confusion (rows = label, columns = heuristic, in the five types' order) of the
    heuristic on ``<data>/<kind>``. Tokens come from the set's tokens column, else (``retokenize``) from the GLUE dev
    example a row names, kept only when their number matches the map's size."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    from attnpatterns.annotate.dataset import load
    from attnpatterns.patterns import PATTERN_VALUES, suggest

    ds = load(data, kind)
    tokens = row_tokens(ds, retokenize, data_dir)
    y = [r["label"] for r in ds.rows]
    p = [suggest(ds.maps[r["id"]], tokens.get(r["id"])).label.value for r in ds.rows]
    return {
        "n": len(y),
        "with_tokens": len(tokens),
        "accuracy": float(accuracy_score(y, p)),
        "weighted_f1": float(f1_score(y, p, average="weighted", zero_division=0)),
        "confusion": confusion_matrix(y, p, labels=list(PATTERN_VALUES)).tolist(),
    }


def row_tokens(ds, retokenize: bool, data_dir) -> dict:
    """id -> tokens whose count matches the map (from the tokens column, else re-tokenized GLUE examples)."""
    out, todo = {}, []
    for r in ds.rows:
        n = ds.maps[r["id"]].shape[0]
        toks = str(r.get("tokens", "")).split()
        if len(toks) == n:
            out[r["id"]] = toks
        elif retokenize:
            todo.append(r)
    if not todo:
        return out
    from attnpatterns.data import get_task, load_task
    from attnpatterns.models import load_tokenizer

    tok = load_tokenizer(None)
    examples: dict = {}
    for r in todo:
        task = r["task"]
        if task not in examples:
            try:
                spec = get_task(task)
                # the maps come from dev examples ('attn annotate push' and the annotated set both sample dev)
                examples[task] = (spec, {e.id: e for e in _safe_load(load_task, spec, data_dir)})
            except UserError:
                examples[task] = (None, {})
        spec, by_id = examples[task]
        e = by_id.get(str(r["example"]))
        if e is None:
            continue
        ids = tok(e.text_a, e.text_b if spec.text_b else None, truncation=True, max_length=128)["input_ids"]
        toks = tok.convert_ids_to_tokens(ids)
        if len(toks) == ds.maps[r["id"]].shape[0]:
            out[r["id"]] = toks
    return out


def _safe_load(load_task, spec, data_dir):
    try:
        return load_task(spec, spec.dev_split, data_dir)
    except UserError:
        return []
