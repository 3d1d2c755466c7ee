"""What a Label Studio task holds, and the labeling config that shows it.

A task holds everything needed to rebuild the dataset row without this machine: the PNG as a ``data:`` URI (shown by
the Image tag; no file serving needed), the map itself (float32, zlib, base64), the tokens and the provenance.
Pre-annotations are Label Studio predictions from the trained pattern CNN when
``models/pattern-cnn-<kind>.safetensors`` exists, else from the heuristic scores of :mod:`attnpatterns.patterns`.
"""

from __future__ import annotations

import base64
import io
import logging
import xml.etree.ElementTree as ET
import zlib
from typing import Any, Sequence

import numpy as np

from attnpatterns.errors import UserError
from attnpatterns.patterns import PATTERN_VALUES

log = logging.getLogger("attnpatterns")

FROM_NAME, TO_NAME = "pattern", "map"

LABEL_CONFIG = f"""<View>
  <Header value="$title" size="5"/>
  <Image name="{TO_NAME}" value="$image" zoom="true" zoomControl="true"/>
  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true" required="true">
{chr(10).join(f'    <Choice value="{p}" hotkey="{i + 1}"/>' for i, p in enumerate(PATTERN_VALUES))}
  </Choices>
</View>"""


# ----------------------------------------------------------------------------- labeling config


def config_signature(xml: str) -> tuple:
    """What matters in a labeling config: the image tag, the choices tag and its ordered values."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        return ("unparseable", str(e))
    images = sorted((el.get("name"), el.get("value")) for el in root.iter("Image"))
    choices = sorted(
        (el.get("name"), el.get("toName"), el.get("choice", "single"), tuple(c.get("value") for c in el.iter("Choice")))
        for el in root.iter("Choices")
    )
    others = sorted({el.tag for el in root.iter()} - {"View", "Header", "Image", "Choices", "Choice"})
    return (tuple(images), tuple(choices), tuple(others))


def check_config(xml: str, project: str) -> None:
    want, got = config_signature(LABEL_CONFIG), config_signature(xml)
    if want != got:
        raise UserError(
            f"Label Studio project '{project}' has a different labeling config (expected an Image '{TO_NAME}' and "
            f"single Choices '{FROM_NAME}' with {', '.join(PATTERN_VALUES)}); pass another --project name or "
            "restore the config in the project's settings."
        )


# ----------------------------------------------------------------------------- maps in task data


def encode_map(attn: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(attn, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(zlib.compress(buf.getvalue(), 6)).decode("ascii")


def decode_map(text: str) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
    a = np.load(io.BytesIO(raw), allow_pickle=False)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"shape {a.shape}")
    return a.astype(np.float32, copy=False)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def suggest_labels(
    kind: str, maps: Sequence[np.ndarray], tokens: Sequence[Sequence[str]]
) -> list[tuple[str, float, str]]:
    """(label, score, by) per map: the trained CNN when its file exists and loads, else the heuristic."""
    from attnpatterns.patterns import suggest

    cnn = _cnn_suggestions(kind, maps)
    if cnn is not None:
        return cnn
    out = []
    for m, t in zip(maps, tokens):
        s = suggest(m, t)
        out.append((s.label.value, round(float(s.confidence), 4), "heuristic"))
    return out


def _cnn_suggestions(kind: str, maps: Sequence[np.ndarray]) -> list[tuple[str, float, str]] | None:
    try:
        from attnpatterns.classifier.card import default_path
        from attnpatterns.classifier.predict import classify_maps
    except ImportError:
        return None
    path = default_path(kind)
    if not path.is_file():
        return None
    try:
        labels, probs = classify_maps(list(maps), kind, path)
    except (UserError, ValueError, RuntimeError, OSError) as e:
        log.warning("pattern classifier %s not used (%s); pre-annotating with the heuristic", path.name, e)
        return None
    return [(str(lab), round(float(p.max()), 4), f"cnn:{path.name}") for lab, p in zip(labels, probs)]


def build_task(item, suggestion: tuple[str, float, str] | None) -> dict:
    """One Label Studio task (data + optional prediction) for a :class:`~attnpatterns.annotate.sample.MapItem`."""
    from attnpatterns.annotate.render import render_map_bytes, special_positions

    title = (
        f"{item.map_id}: {item.task} example {item.example}, layer {item.layer} head {item.head}, "
        f"{item.kind} map, {item.model_state} model"
    )
    data = {
        "image": png_data_uri(
            render_map_bytes(item.attn, item.tokens, title=f"L{item.layer} H{item.head} ({item.kind})")
        ),
        "title": title,
        "map_id": item.map_id,
        "kind": item.kind,
        "source_model": item.source_model,
        "model_state": item.model_state,
        "task": item.task,
        "example": item.example,
        "layer": int(item.layer),
        "head": int(item.head),
        "n_tokens": len(item.tokens),
        "tokens": " ".join(item.tokens),
        "special_positions": ",".join(str(i) for i in special_positions(item.tokens)),
        "map": encode_map(item.attn),
    }
    task: dict[str, Any] = {"data": data}
    if suggestion is not None:
        label, score, by = suggestion
        data["suggested_label"], data["suggested_by"] = label, by
        task["predictions"] = [
            {
                "model_version": by,
                "score": score,
                "result": [
                    {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [label]}}
                ],
            }
        ]
    return task
