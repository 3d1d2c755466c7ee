"""The ML backend's prediction time for a batch of Label Studio tasks, against classifying the same maps in process.

Baseline: ``classify_maps`` on the decoded maps, model loaded (the work itself). Ours: ``POST /predict`` with the
tasks as Label Studio sends them (maps in the task data, base64 + zlib) to ``attn annotate backend`` served by
uvicorn on 127.0.0.1, over a real socket: decoding, classifying, JSON both ways. Goal: 100 tasks in under 2 s.

    .venv/bin/python bench/bench_backend.py --tasks 100 --reps 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--kind", default="raw")
    args = ap.parse_args()

    import shutil

    import requests
    import torch

    from attnpatterns.annotate import dataset as ds
    from attnpatterns.annotate.backend import PatternBackend, make_app, serve_in_thread
    from attnpatterns.annotate.labelstudio import encode_map
    from attnpatterns.classifier.predict import classify_maps

    torch.set_num_threads(2)
    s = ds.load(ROOT / "annotations", args.kind)
    rows = (s.rows * (args.tasks // len(s.rows) + 1))[: args.tasks]
    maps = [s.maps[r["id"]] for r in rows]
    tasks = [
        {"id": i, "data": {"map_id": r["id"], "kind": args.kind, "map": encode_map(m), "n_tokens": m.shape[0]}}
        for i, (r, m) in enumerate(zip(rows, maps))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        for p in (ROOT / "models").glob(f"pattern-cnn-{args.kind}.*"):
            shutil.copyfile(p, models / p.name)
        t0 = time.perf_counter()
        be = PatternBackend(models, data=None)
        t_start = time.perf_counter() - t0
        running = serve_in_thread(make_app(be))
        path = models / f"pattern-cnn-{args.kind}.safetensors"
        try:
            http = requests.Session()
            t0 = time.perf_counter()
            r = http.post(running.url + "/predict", json={"tasks": tasks}, timeout=120)
            t_first = time.perf_counter() - t0
            assert r.status_code == 200 and len(r.json()["results"]) == len(tasks), r.text[:300]
            base, ours = [], []
            for _ in range(args.reps):  # interleaved, so load from other jobs hits both alike
                t0 = time.perf_counter()
                classify_maps(maps, args.kind, path)
                base.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                r = http.post(running.url + "/predict", json={"tasks": tasks}, timeout=120)
                ours.append(time.perf_counter() - t0)
                assert r.status_code == 200
        finally:
            running.stop()
    b, o = statistics.median(base), statistics.median(ours)
    sizes = sorted(m.shape[0] for m in maps)
    print(
        f"{args.tasks} {args.kind} tasks (maps of {sizes[0]}-{sizes[-1]} tokens, median {sizes[len(sizes) // 2]}), "
        f"median of {args.reps}"
    )
    print(f"  in-process classify_maps (baseline): {b * 1000:.0f} ms")
    print(
        f"  POST /predict to the backend:         {o * 1000:.0f} ms  ({o / b:.2f}x the baseline; goal < 2000 ms: "
        f"{'met' if o < 2 else 'NOT met'})"
    )
    print(
        f"  first request after start: {t_first * 1000:.0f} ms; backend start (load + warm the model): "
        f"{t_start * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
