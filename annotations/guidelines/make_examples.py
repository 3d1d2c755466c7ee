"""Render the example images of annotations/GUIDELINES.md from the packaged MiniLM (pre-trained).

    ATTN_GLUE_DIR=../shared/glue .venv/bin/python annotations/guidelines/make_examples.py

The maps were picked by eye from contact sheets of 96 raw and 96 weight-normed MRPC dev maps
(``attnpatterns.annotate.sample.sample_maps`` with seed 1, 4 heads per example).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

# file name -> (kind, MRPC dev example id, layer, head, caption)
EXAMPLES = {
    "vertical-raw.png": ("raw", "99", 4, 4, "vertical (raw): nearly every row attends to [CLS]/[SEP]"),
    "vertical-normed.png": ("normed", "51", 5, 9, "vertical (normed): stripes on a few ordinary words"),
    "diagonal-normed.png": ("normed", "171", 1, 8, "diagonal (normed): each token to the previous one"),
    "diagonal-raw-faint-column.png": ("raw", "171", 1, 8, "diagonal (raw), borderline: a faint [CLS] column"),
    "vertical-diagonal-raw.png": ("raw", "270", 2, 11, "vertical+diagonal (raw): band and a bright [CLS] column"),
    "block-raw.png": ("raw", "265", 2, 10, "block (raw): each sentence attends within itself"),
    "heterogeneous-raw.png": ("raw", "15", 0, 4, "heterogeneous (raw): no dominant structure"),
    "heterogeneous-normed-alignment.png": (
        "normed",
        "282",
        0,
        8,
        "heterogeneous (normed): cross-sentence alignment lines",
    ),
    "borderline-broad-band-raw.png": ("raw", "35", 4, 7, "borderline (raw): a broad local band is not a block"),
}


def main() -> None:
    from attnpatterns.annotate.render import render_map
    from attnpatterns.data import get_task, load_task
    from attnpatterns.maps import extract_maps
    from attnpatterns.models import load_model

    spec = get_task("MRPC")
    examples = {e.id: e for e in load_task(spec, spec.dev_split)}
    model, tok = load_model(None)
    wanted = sorted({v[1] for v in EXAMPLES.values()})
    maps = {
        m.example_id: m
        for m in extract_maps(
            model, tok, [examples[i].text_a for i in wanted], [examples[i].text_b for i in wanted], ids=wanted
        )
    }
    for name, (kind, ex, layer, head, caption) in EXAMPLES.items():
        m = maps[ex]
        arr = (m.normed if kind == "normed" else m.raw)[layer, head]
        render_map(arr, HERE / name, m.tokens, title=f"MRPC dev {ex}, layer {layer} head {head}, {kind}", dpi=72)
        print(f"{name}: {caption}")


if __name__ == "__main__":
    main()
