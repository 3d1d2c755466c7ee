"""Label Studio timings: venv install, first start on a fresh database vs from the migrated template, push/pull.

    .venv/bin/python bench/bench_labelstudio.py [--install] [--maps 40]

--install also times creating the venv from scratch (in a temporary cache; needs the package index,
takes minutes). The baseline of the start ratio is a first start that runs all migrations itself,
measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed_start(data_dir: Path, use_template: bool):
    from attnpatterns.annotate import server as srv

    cfg = srv.ServerConfig(
        data_dir=data_dir,
        port=srv.free_port(),
        username="bench@localhost.localdomain",
        password=secrets.token_urlsafe(10),
        token=secrets.token_hex(20),
    )
    t0 = time.perf_counter()
    server = srv.start(cfg, use_template=use_template)
    return server, cfg, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--install", action="store_true", help="also time a fresh venv install (minutes)")
    ap.add_argument("--maps", type=int, default=40, help="maps to push and pull")
    args = ap.parse_args()

    import numpy as np

    from attnpatterns.annotate import server as srv

    if args.install:
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            srv.ensure_venv(Path(cache) / "labelstudio-venv")
            print(
                f"venv install (label-studio {srv.installed_version(Path(cache) / 'labelstudio-venv')}): "
                f"{time.perf_counter() - t0:.0f} s"
            )
    exe = srv.ensure_venv()
    t0 = time.perf_counter()
    srv.template_db(exe)
    print(f"template database (cached after the first time): {time.perf_counter() - t0:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        server, _, fresh = timed_start(Path(tmp) / "fresh", use_template=False)
        server.stop()
        server, cfg, templ = timed_start(Path(tmp) / "templ", use_template=True)
        print(f"first start, migrations at start (baseline): {fresh:.1f} s")
        print(f"first start from the template: {templ:.1f} s  (ratio {fresh / templ:.1f}x faster)")
        try:
            os.environ["LABEL_STUDIO_URL"], os.environ["LABEL_STUDIO_API_KEY"] = server.url, cfg.token
            from attnpatterns.annotate import labelstudio as lsc
            from attnpatterns.annotate import pull as lsp
            from attnpatterns.annotate.sample import MapItem

            rng = np.random.default_rng(0)
            items = []
            for i in range(args.maps):
                n = 48
                a = rng.random((n, n)).astype(np.float32)
                a /= a.sum(1, keepdims=True)
                toks = ["[CLS]"] + [f"w{j}" for j in range(n - 2)] + ["[SEP]"]
                items.append(MapItem(f"raw-pre-BENCH-{i}-L0H0", "raw", a, toks, "bench", "pre", "BENCH", str(i), 0, 0))
            conn = lsc.connect()
            t0 = time.perf_counter()
            res = lsc.push(items, "bench", conn=conn)
            t_push = time.perf_counter() - t0
            for t in list(conn.sdk.tasks.list(project=res.project_id, fields="all")):
                conn.sdk.annotations.create(
                    id=t.id,
                    result=[
                        {
                            "from_name": "pattern",
                            "to_name": "map",
                            "type": "choices",
                            "value": {"choices": ["heterogeneous"]},
                        }
                    ],
                )
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                lsp.pull("bench", out, conn=conn)
                t_pull = time.perf_counter() - t0
            print(
                f"push {args.maps} maps of 48x48 (render + import + predictions): {t_push:.1f} s "
                f"({t_push / args.maps * 1000:.0f} ms per map)"
            )
            print(f"pull {args.maps} annotated maps (export + dataset write): {t_pull:.1f} s")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
