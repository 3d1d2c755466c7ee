"""Targeted sampling for the thin classes: more candidate maps of the rare types, to be labelled blind.

The annotated set is thin in raw block and in weight-normed vertical+diagonal (and block). This script
draws NEW dev examples (none already in ``annotations/``) of the pre-trained packaged MiniLM from the
sentence-pair tasks (block needs a pair) and the single-sentence ones, extracts raw and normed maps of
all 72 heads, and ranks every map by the shipped classifier's probability of the wanted type. It keeps
the top maps of each wanted type with at most 2 maps per (layer, head) and 3 per example, so that the
extra maps spread over heads and inputs. The probability only picks candidates; the labels are given by
eye on blind sheets (``blind_sheets.py --pool``), like every other label.

Writes ``runs/thin_pool/<kind>.npz`` (one map per id) and ``<kind>.tsv`` (id, source_model, task, layer,
head, example, model_state, kind, n_tokens, candidate, candidate_p), deterministically for a seed.

    ATTN_GLUE_DIR=/work/shared/glue .venv/bin/python annotations/tools/sample_thin.py \
        --want raw:block=40 --want raw:vertical+diagonal=20 --want normed:vertical+diagonal=40 \
        --want normed:block=20
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
POOL = ROOT / "runs" / "thin_pool"
TASKS = ("MRPC", "RTE", "STS-B", "QNLI", "CoLA", "SST-2")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--want", action="append", required=True, help="KIND:TYPE=N, e.g. raw:block=40")
    ap.add_argument("--examples", type=int, default=30, help="new dev examples per task")
    ap.add_argument("--seed", type=int, default=2027)
    ap.add_argument("--glue-dir", default=None)
    args = ap.parse_args(argv)

    import torch

    from attnpatterns.annotate.dataset import load, make_id
    from attnpatterns.classifier.predict import classify_maps
    from attnpatterns.data import get_task, load_task
    from attnpatterns.maps import extract_maps
    from attnpatterns.models import load_model

    torch.manual_seed(0)
    wants: dict[str, dict[str, int]] = {}
    for w in args.want:
        kind, _, rest = w.partition(":")
        typ, _, n = rest.partition("=")
        wants.setdefault(kind, {})[typ] = int(n)
    used = {
        (r["task"], r["example"])
        for k in ("raw", "normed")
        for r in load(ROOT / "annotations", k, with_maps=False).rows
    }
    model, tok = load_model(None)
    cands = {k: [] for k in wants}
    rng = np.random.default_rng(args.seed)
    for task in TASKS:
        spec = get_task(task)
        dev = [e for e in load_task(spec, "dev", args.glue_dir) if (task, str(e.id)) not in used]
        dev = [e for e in dev if 8 <= len(tok(e.text_a, e.text_b if spec.text_b else None)["input_ids"]) <= 64]
        pick = [dev[i] for i in sorted(rng.choice(len(dev), size=min(args.examples, len(dev)), replace=False))]
        ems = extract_maps(
            model,
            tok,
            [e.text_a for e in pick],
            [e.text_b for e in pick] if spec.text_b else None,
            ids=[str(e.id) for e in pick],
        )
        for em in ems:
            L, H = em.raw.shape[:2]
            for kind in wants:
                arr = em.raw if kind == "raw" else em.normed
                for layer in range(L):
                    for head in range(H):
                        cands[kind].append(
                            {
                                "task": task,
                                "example": em.example_id,
                                "layer": layer,
                                "head": head,
                                "map": np.ascontiguousarray(arr[layer, head], dtype=np.float32),
                            }
                        )
    POOL.mkdir(parents=True, exist_ok=True)
    for kind, types in wants.items():
        cs = cands[kind]
        labels, probs = classify_maps([c["map"] for c in cs], kind)
        from attnpatterns.classifier.labels import LABEL_INDEX

        chosen, per_head, per_ex, taken = [], {}, {}, set()
        for typ, n in types.items():
            order = np.argsort(-probs[:, LABEL_INDEX[typ]], kind="stable")
            got = 0
            for i in order:
                c = cs[i]
                if got >= n:
                    break
                hk, ek = (c["layer"], c["head"]), (c["task"], c["example"])
                if i in taken or per_head.get(hk, 0) >= 2 or per_ex.get(ek, 0) >= 3:
                    continue
                if typ == "block" and get_task(c["task"]).text_b is None:
                    continue
                taken.add(i)
                per_head[hk] = per_head.get(hk, 0) + 1
                per_ex[ek] = per_ex.get(ek, 0) + 1
                chosen.append((c, typ, float(probs[i, LABEL_INDEX[typ]])))
                got += 1
        rows, arrays = [], {}
        for c, typ, p in chosen:
            mid = make_id(c["task"], c["example"], c["layer"], c["head"], "pre", kind=kind[0])
            arrays[mid] = c["map"]
            rows.append(
                {
                    "id": mid,
                    "source_model": MODEL,
                    "task": c["task"],
                    "layer": c["layer"],
                    "head": c["head"],
                    "example": c["example"],
                    "model_state": "pretrained",
                    "kind": kind,
                    "n_tokens": c["map"].shape[0],
                    "candidate": typ,
                    "candidate_p": f"{p:.3f}",
                }
            )
        np.savez(POOL / f"{kind}.npz", **arrays)
        with open(POOL / f"{kind}.tsv", "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        print(kind, len(rows), {t: sum(1 for _, tt, _ in chosen if tt == t) for t in types})
    return 0


if __name__ == "__main__":
    sys.exit(main())
