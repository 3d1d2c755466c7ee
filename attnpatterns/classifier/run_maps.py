"""The classify stage's computation: every head's raw and weight-normed maps of a fine-tuned run, classified, and the
pattern distributions of all heads against the super-survivors (``attn run``'s classify stage, the ``results/``
scripts)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")
KINDS = ("raw", "normed")


def classify_run_maps(
    ft_dir: Path,
    task: str,
    seed: int,
    out: Path,
    n_examples: int = 100,
    max_length: int = 128,
    data_dir: str | None = None,
    device: str = "cpu",
    examples_per_type: int = 6,
    chunk: int = 16,
    show_progress: bool = True,
    classifiers: dict | None = None,
) -> dict:
    """Classify the raw and normed map of every head on the first ``n_examples`` dev examples of ``task``, with the
    fine-tuned model in ``ft_dir``, by the shipped classifiers (``classifier.predict.classify_maps``; another
    classifier per kind with ``classifiers``, e.g. one trained on a single annotator's labels).

    Writes ``out/heads.json`` (per-head counts (L, H, types) per kind, and ``labels``: the type index of every
    (example, layer, head) map, for intervals over examples), ``out/examples.npz`` (up to
    ``examples_per_type`` maps per kind and predicted type, drawn at random under ``seed``, keys
    ``<kind>__<type>__<i>``) and ``out/examples.json`` (their captions). Maps are made ``chunk`` examples at a time,
    so memory stays bounded whatever the model.
    """
    import numpy as np

    from attnpatterns.classifier.predict import classify_maps, get_classifier
    from attnpatterns.data import get_task, load_task
    from attnpatterns.finetune_runs import load_finetuned
    from attnpatterns.io import save_npz, write_json
    from attnpatterns.maps import extract_example_maps
    from attnpatterns.patterns import PATTERN_VALUES
    from attnpatterns.progress import progress_iter

    spec = get_task(task)
    model, tok, rec = load_finetuned(ft_dir, device=device)
    # the first n dev examples with at least the classifiers' minimum number of real tokens (docs/method.md, Statistics)
    clf_paths = {k: (classifiers or {}).get(k) for k in KINDS}
    min_tokens = max(int(get_classifier(k, clf_paths[k]).min_tokens) for k in KINDS)
    examples = []
    for e in load_task(spec, "dev", data_dir):
        enc = (
            tok(e.text_a, e.text_b, truncation=True, max_length=max_length)
            if spec.text_b
            else tok(e.text_a, truncation=True, max_length=max_length)
        )
        if len(enc["input_ids"]) >= min_tokens:
            examples.append(e)
            if len(examples) == n_examples:
                break
    if not examples:
        raise UserError(
            f"{task}: no dev example has the classifiers' minimum of {min_tokens} tokens at max length "
            f"{max_length}; raise the max length."
        )
    types = list(PATTERN_VALUES)
    L = H = 0  # set by the first chunk of maps
    counts: dict[str, np.ndarray] = {}
    per_map: dict[str, list] = {k: [] for k in KINDS}
    # reservoir of candidate examples per (kind, type): (random key, caption, map); the smallest keys are kept
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7])
    pool: dict[tuple[str, str], list] = {}
    probs_sum = {k: 0.0 for k in KINDS}
    n_maps = 0
    starts = list(range(0, len(examples), chunk))
    for s0 in progress_iter(starts, len(starts), f"classify maps {task} seed {seed}", show_progress):
        part = examples[s0 : s0 + chunk]
        exs = extract_example_maps(
            model,
            tok,
            part,
            bool(spec.text_b),
            normed=True,
            max_length=max_length,
            batch_size=chunk,
        )
        L, H = exs[0].raw.shape[:2]
        for kind in KINDS:
            if kind not in counts:
                counts[kind] = np.zeros((L, H, len(types)), dtype=np.int64)
            flat = [getattr(ex, kind)[l, h] for ex in exs for l in range(L) for h in range(H)]
            labels, probs = classify_maps(flat, kind, clf_paths[kind])
            probs_sum[kind] += float(probs.max(axis=1).sum())
            per_map[kind].append(np.array([types.index(x) for x in labels], dtype=np.int64).reshape(len(exs), L, H))
            for i, lab in enumerate(labels):
                e, rem = divmod(i, L * H)
                l, h = divmod(rem, H)
                counts[kind][l, h, types.index(lab)] += 1
                key = (kind, lab)
                r = float(rng.random())
                bucket = pool.setdefault(key, [])
                if len(bucket) < examples_per_type or r < bucket[-1][0]:
                    bucket.append((r, f"L{l}H{h} ex {exs[e].example_id} p={probs[i].max():.2f}", flat[i]))
                    bucket.sort(key=lambda x: x[0])
                    del bucket[examples_per_type:]
        n_maps += len(exs) * L * H
    arrays, captions = {}, {}
    for (kind, lab), bucket in sorted(pool.items()):
        for i, (_, cap, m) in enumerate(bucket):
            k = f"{kind}__{lab}__{i}"
            arrays[k] = np.asarray(m, dtype=np.float32)
            captions[k] = cap
    from attnpatterns.classifier.card import default_path, sha256_file

    result = {
        "task": spec.name,
        "seed": int(seed),
        "model": rec.get("config", {}).get("model"),
        "finetuned": str(ft_dir),
        "num_layers": int(L),
        "num_heads": int(H),
        "n_examples": len(examples),
        "max_length": max_length,
        "min_tokens": min_tokens,
        "types": types,
        "maps_per_kind": n_maps,
        "classifier": {
            k: {
                "file": Path(clf_paths[k] or default_path(k)).name,
                "sha256": sha256_file(clf_paths[k] or default_path(k)),
            }
            for k in KINDS
        },
        "mean_confidence": {k: probs_sum[k] / max(n_maps, 1) for k in KINDS},
        "counts": {k: counts[k].tolist() for k in KINDS},
        "example_ids": [str(e.id) for e in examples],
        "labels": {k: np.concatenate(per_map[k]).tolist() for k in KINDS},
    }
    save_npz(out / "examples.npz", **arrays)
    write_json(out / "examples.json", captions)
    write_json(out / "heads.json", result)  # last: the unit's marker
    return result


def write_distribution(heads_files: Sequence[Path], super_path: Path | None, out: Path, task: str) -> dict:
    """Pool the per-head counts of every seed: all heads, the super-survivors and the other heads, per kind."""
    import numpy as np

    from attnpatterns.io import read_json, write_json
    from attnpatterns.prune.head_set import read_head_set
    from attnpatterns.report.distributions import head_mask_of, pooled_counts

    per_seed = [read_json(p) for p in heads_files]
    types = per_seed[0]["types"]
    L, H = per_seed[0]["num_layers"], per_seed[0]["num_heads"]
    for r, p in zip(per_seed, heads_files):
        if r["types"] != types or (r["num_layers"], r["num_heads"]) != (L, H):
            raise UserError(f"{p}: another model shape or label set than {heads_files[0]}; rerun the classify stage.")
    heads: list = []
    if super_path is not None:
        hs = read_head_set(super_path, num_layers=L, num_heads=H)
        heads = [list(x) for x in hs.heads]
    smask = head_mask_of(heads, (L, H))
    out_d: dict[str, Any] = {
        "task": task,
        "seeds": [r["seed"] for r in per_seed],
        "types": types,
        "num_layers": L,
        "num_heads": H,
        "num_heads_total": L * H,
        "super_heads": heads,
        "super_source": str(super_path) if super_path is not None else None,
        "n_examples_per_seed": per_seed[0]["n_examples"],
    }
    for kind in KINDS:
        c = np.sum([np.asarray(r["counts"][kind], dtype=np.int64) for r in per_seed], axis=0)  # (L, H, types)
        groups = {"all": pooled_counts(c), "super": pooled_counts(c, smask), "other": pooled_counts(c, ~smask)}
        out_d[kind] = {
            g: {"counts": v.tolist(), "fractions": (v / v.sum() if v.sum() else v * 0.0).tolist()}
            for g, v in groups.items()
        }
        out_d[kind]["per_head"] = c.tolist()
        if all("labels" in r for r in per_seed):  # 95% intervals: two-stage bootstrap over seeds, then examples
            from attnpatterns.bootstrap import bootstrap_fractions

            labs = [np.asarray(r["labels"][kind], dtype=np.int64) for r in per_seed]  # (examples, L, H) per seed
            seeds = np.concatenate([[j] * len(x) for j, x in enumerate(labs)])
            for g, m in (("all", np.ones((L, H), dtype=bool)), ("super", smask), ("other", ~smask)):
                if not m.any():
                    continue
                unit = np.concatenate(
                    [np.stack([np.bincount(row[m], minlength=len(types)) for row in x]) for x in labs]
                )
                _, lo, hi = bootstrap_fractions(unit, clusters=seeds if len(labs) > 1 else None, seed=0)
                out_d[kind][g]["ci_low"], out_d[kind][g]["ci_high"] = lo.tolist(), hi.tolist()
            out_d["interval"] = (
                "95% percentile bootstrap: seeds resampled, then examples within each seed"
                if len(labs) > 1
                else "95% percentile bootstrap over examples"
            )
    write_json(out, out_d)
    return out_d
