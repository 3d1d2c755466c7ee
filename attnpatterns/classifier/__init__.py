"""The pattern classifier: the CNN of the original study, its training, evaluation, card and prediction.

Library entry points (no printing, no CLI):

- :func:`classify_maps` (maps, kind) -> (labels, probabilities)
- :func:`classify_heads` (task, heads, ...) -> :class:`HeadClassification` (per-head counts, pooled distribution)
- :func:`train`, :func:`compare`, :func:`cross_validate`, :func:`evaluate`
"""

from attnpatterns.classifier.labels import KINDS, LABELS  # noqa: F401


def __getattr__(name):  # light on import: torch loads only when a function is used
    import importlib

    where = {
        "PatternCNN": "model",
        "Preprocess": "model",
        "prepare": "model",
        "classify_maps": "predict",
        "predict_files": "predict",
        "get_classifier": "predict",
        "read_npy": "predict",
        "classify_heads": "heads",
        "HeadClassification": "heads",
        "write_outputs": "heads",
        "train": "train",
        "compare": "train",
        "cross_validate": "train",
        "TrainConfig": "train",
        "Recipe": "train",
        "load_data": "train",
        "evaluate": "evaluate",
        "scores": "evaluate",
        "synthetic_map": "synthetic",
        "synthetic_set": "synthetic",
        "save": "card",
        "load": "card",
        "default_path": "card",
    }
    if name in where:
        return getattr(importlib.import_module(f"attnpatterns.classifier.{where[name]}"), name)
    raise AttributeError(name)
