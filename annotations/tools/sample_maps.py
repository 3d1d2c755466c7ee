"""Sample the attention maps to annotate: a deterministic pool per kind (raw, normed).

For each source (a model state x a GLUE task) the script draws dev examples of 8-64 tokens with a
seeded RNG, extracts raw and weight-normed maps with :func:`attnpatterns.maps.extract_maps`, scores
every (example, layer, head) map with the heuristic ``suggest`` (a frozen copy of
``attnpatterns.patterns`` in ``sampling_heuristic.py``; used for sampling only, never as a label), and picks a quota of
maps per kind so that

* every (layer, head) of the 6 x 12 MiniLM is drawn about equally often (least-used head first), and
* the heuristic's candidate types are drawn in equal turns, which oversamples the rare ones
  (block, diagonal) against their natural share.

The pool goes to ``runs/annotation_pool/<kind>/<source>.npz`` + ``<source>.tsv`` (ignored by git; the
script re-creates it exactly). Labels are given by eye on contact sheets (``make_sheets.py``) and
written into ``annotations/<kind>/`` by ``apply_labels.py``.

Usage (from the repository root)::

    ATTN_GLUE_DIR=/work/shared/glue .venv/bin/python annotations/tools/sample_maps.py \
        --source pre:CoLA --source pre:MRPC --source ft:RTE=runs/minilm/RTE/seed_42/finetuned
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
POOL = ROOT / "runs" / "annotation_pool"
KINDS = ("raw", "normed")


def source_seed(seed: int, name: str) -> int:
    """A per-source seed that does not depend on the order of sources."""
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:8], 16)


def candidate_type(m: np.ndarray, tokens: list[str], heuristic: str = "v1") -> str:
    """The heuristic's type of a map, used to spread the sample over candidate types; never a label.

    The heuristics are frozen copies of ``attnpatterns.patterns``: ``v1`` = ``sampling_heuristic.py``
    (commit 229fedf, round 1), ``v2`` = ``sampling_heuristic_v2.py`` (commit 2796339, round 2), so the
    sample does not move when the package's thresholds are re-tuned.
    """
    if heuristic == "v1":
        from sampling_heuristic import suggest
    else:
        from sampling_heuristic_v2 import suggest

    return suggest(m, tokens).label.value


def pick(
    cands: list[dict],
    quota: int,
    rng: np.random.Generator,
    n_layers: int,
    n_heads: int,
    per_head: int = 2,
    per_example: int = 6,
) -> list[dict]:
    """``quota`` candidates: candidate types in equal turns, least-used (layer, head) first, at most
    ``per_head`` maps of one (layer, head) and ``per_example`` maps of one example (a rare type that
    only one head shows is not drawn twenty times from that head)."""
    by_type: dict[str, list[dict]] = {}
    for c in cands:
        by_type.setdefault(c["quick"], []).append(c)
    for lst in by_type.values():
        rng.shuffle(lst)
    used = np.zeros((n_layers, n_heads), dtype=int)
    n_ex: dict[str, int] = {}
    chosen: list[dict] = []
    types = sorted(by_type)
    t = 0
    while len(chosen) < quota and any(by_type.values()):
        typ = types[t % len(types)]
        t += 1
        lst = [
            c
            for c in by_type[typ]
            if used[c["layer"], c["head"]] < per_head and n_ex.get(c["example"], 0) < per_example
        ]
        by_type[typ] = lst
        if not lst:
            continue
        # least-used head, then least-used example, then the shuffled order
        k = min(
            range(len(lst)), key=lambda i: (used[lst[i]["layer"], lst[i]["head"]], n_ex.get(lst[i]["example"], 0), i)
        )
        c = lst.pop(k)
        used[c["layer"], c["head"]] += 1
        n_ex[c["example"]] = n_ex.get(c["example"], 0) + 1
        chosen.append(c)
    return chosen


def parse_source(spec: str) -> tuple[str, str, str | None]:
    """``pre:TASK`` or ``ft:TASK=PATH`` -> (state, task, path)."""
    state, _, rest = spec.partition(":")
    if state not in ("pre", "ft") or not rest:
        raise SystemExit(f"bad --source '{spec}'; use pre:TASK or ft:TASK=PATH")
    task, _, path = rest.partition("=")
    if state == "ft" and not path:
        raise SystemExit(f"--source '{spec}': a fine-tuned source needs =PATH")
    return state, task, (path or None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", action="append", required=True, help="pre:TASK or ft:TASK=PATH (repeat)")
    ap.add_argument("--examples", type=int, default=24, help="dev examples per source")
    ap.add_argument("--quota", type=int, default=60, help="maps per source and kind")
    ap.add_argument("--min-tokens", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=POOL)
    ap.add_argument(
        "--round",
        type=int,
        default=1,
        help="sampling round; from 2 on the source seed and the pool file name carry the round, and "
        "maps already pooled in any round are skipped",
    )
    ap.add_argument(
        "--types", help="comma-separated candidate types to keep (e.g. block,vertical+diagonal); default all"
    )
    ap.add_argument("--heuristic", choices=("v1", "v2"), default="v1", help="frozen heuristic for candidate types")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    try:
        from attnpatterns.annotate.dataset import make_id
    except ImportError:  # dataset.py needs attnpatterns.patterns; same id scheme
        import re

        def make_id(task, example, layer, head, model_state="pre", kind=None):
            parts = ([kind] if kind else []) + [model_state, task, str(example), f"L{int(layer)}H{int(head)}"]
            return re.sub(r"[^A-Za-z0-9._+=-]", "_", "-".join(parts))

    from attnpatterns.data import get_task, load_task
    from attnpatterns.maps import extract_maps
    from attnpatterns.models import load_model, model_id

    for spec in args.source:
        state, task, path = parse_source(spec)
        tspec = get_task(task)
        # a fine-tuned source is named by its run's seed folder (seed_1337 -> ft1337), so that several
        # seeds of one task give distinct sources and map ids
        tag = state
        if path is not None:
            seed_dir = next((p.name for p in Path(path).resolve().parents if p.name.startswith("seed_")), None)
            tag = f"ft{seed_dir[5:]}" if seed_dir else "ft"
        name = f"{tag}-{tspec.name}"
        if args.round > 1:
            name = f"{name}-r{args.round}"
        seed = source_seed(args.seed, name)
        rng = np.random.default_rng(seed)
        if state == "pre":
            model, tok = load_model(None)
            src_model = model_id(None)
        else:
            model, tok = load_model(path, num_labels=tspec.num_labels)
            src_model = (
                str(Path(path).resolve().relative_to(ROOT)) if Path(path).resolve().is_relative_to(ROOT) else path
            )
        n_layers = model.config.num_hidden_layers
        n_heads = model.config.num_attention_heads
        examples = load_task(tspec, "dev")
        order = rng.permutation(len(examples))
        picked = []
        for i in order:
            e = examples[int(i)]
            n = len(tok(e.text_a, e.text_b, truncation=False)["input_ids"])
            if args.min_tokens <= n <= args.max_tokens:
                picked.append(e)
            if len(picked) == args.examples:
                break
        ems = extract_maps(
            model,
            tok,
            [e.text_a for e in picked],
            [e.text_b for e in picked] if tspec.text_b else None,
            ids=[e.id for e in picked],
            normed=True,
            batch_size=8,
        )
        types = set(args.types.split(",")) if args.types else None
        for ki, kind in enumerate(KINDS):
            pooled = set()
            for other in (args.out / kind).glob("*.tsv"):
                if other.stem != name:
                    with open(other, encoding="utf-8", newline="") as fh:
                        pooled.update(r["id"] for r in csv.DictReader(fh, delimiter="\t"))
            cands = []
            for em in ems:
                arr = em.raw if kind == "raw" else em.normed
                for layer in range(n_layers):
                    for head in range(n_heads):
                        mid = make_id(tspec.name, em.example_id, layer, head, model_state=tag, kind=kind[0])
                        if mid in pooled:
                            continue
                        typ = candidate_type(arr[layer, head], em.tokens, args.heuristic)
                        if types is not None and typ not in types:
                            continue
                        cands.append(
                            {
                                "example": em.example_id,
                                "layer": layer,
                                "head": head,
                                "tokens": em.tokens,
                                "map": arr[layer, head],
                                "quick": typ,
                            }
                        )
            chosen = pick(cands, args.quota, np.random.default_rng(seed + 1 + ki), n_layers, n_heads)
            d = args.out / kind
            d.mkdir(parents=True, exist_ok=True)
            arrays = {}
            rows = []
            for c in chosen:
                mid = make_id(tspec.name, c["example"], c["layer"], c["head"], model_state=tag, kind=kind[0])
                arrays[mid] = c["map"].astype(np.float32)
                rows.append(
                    {
                        "id": mid,
                        "source_model": src_model,
                        "model_state": "pretrained" if state == "pre" else "finetuned",
                        "task": tspec.name,
                        "layer": c["layer"],
                        "head": c["head"],
                        "example": c["example"],
                        "n_tokens": len(c["tokens"]),
                        "quick": c["quick"],
                        "tokens": json.dumps(c["tokens"]),
                    }
                )
            np.savez(d / f"{name}.npz", **arrays)
            with open(d / f"{name}.tsv", "w", encoding="utf-8", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
                w.writeheader()
                w.writerows(rows)
            counts = {}
            for r in rows:
                counts[r["quick"]] = counts.get(r["quick"], 0) + 1
            print(f"{kind} {name}: {len(rows)} maps, quick types {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
