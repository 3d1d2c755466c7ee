"""One small layout record per model family: where Q/K/V/O and the MLP live.

Adding a family is a few lines: give the dotted paths from a transformer layer to its
parts, and the ``model_type`` strings of the configs it covers.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnpatterns.errors import UserError


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    layers: str = "encoder.layer"  # from the base model to the ModuleList of layers
    query: str = "attention.self.query"
    key: str = "attention.self.key"
    value: str = "attention.self.value"
    attn_out_block: str = "attention.output"  # its forward input is the context (B, T, H*d)
    attn_out: str = "attention.output.dense"  # W_O, nn.Linear(H*d -> hidden)
    attn_layernorm: str = "attention.output.LayerNorm"
    mlp_in: str = "intermediate.dense"
    mlp_out: str = "output.dense"  # its output is the MLP's contribution before residual + LayerNorm
    mlp_layernorm: str = "output.LayerNorm"

    def prunable_linears(self) -> tuple[str, ...]:
        """The dense layers that m-pruning may touch, in layer order."""
        return (self.query, self.key, self.value, self.attn_out, self.mlp_in, self.mlp_out)


BERT = Family("bert", ("bert",))
ROBERTA = Family("roberta", ("roberta", "xlm-roberta", "camembert"))
ELECTRA = Family("electra", ("electra",))

FAMILIES: dict[str, Family] = {f.name: f for f in (BERT, ROBERTA, ELECTRA)}


def family_for(model_type: str) -> Family:
    for fam in FAMILIES.values():
        if model_type in fam.model_types:
            return fam
    known = sorted(t for f in FAMILIES.values() for t in f.model_types)
    raise UserError(
        f"model type '{model_type}' has no layout in attnpatterns.families (known: {', '.join(known)}); "
        "add a Family record for it."
    )


def get_submodule(root, dotted: str):
    mod = root
    for part in dotted.split("."):
        mod = getattr(mod, part)
    return mod


def base_model(model):
    """The encoder-bearing base model of a (possibly task-headed) model."""
    return getattr(model, "base_model", model)


def family_of(model) -> Family:
    return family_for(model.config.model_type)


def get_layers(model) -> list:
    fam = family_of(model)
    return list(get_submodule(base_model(model), fam.layers))


def layer_part(model, layer: int, part: str):
    """The module at ``getattr(Family, part)`` in transformer layer ``layer``."""
    fam = family_of(model)
    return get_submodule(get_layers(model)[layer], getattr(fam, part))


def shape_of(model) -> tuple[int, int, int]:
    """(layers, heads, head size) of a model."""
    cfg = model.config
    return cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
