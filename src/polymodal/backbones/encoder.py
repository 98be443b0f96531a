"""Build a ``PretrainedEncoder`` around a backbone tower (loaded now, or lazily when cached)."""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from polymodal.backbones.towers import load_tower, tower_spec
from polymodal.encoders.pretrained import PretrainedEncoder

__all__ = ["build_pretrained_encoder"]


def build_pretrained_encoder(encoder_inputs: Mapping[str, Any], tuning: Mapping[str, Any]) -> PretrainedEncoder:
    """The encoder for a backbone preprocessor's ``encoder_inputs`` and the ``tuning`` options.

    ``encoder_inputs["lazy"]`` (a frozen backbone whose features are cached) defers loading
    the backbone until a feature has to be computed.
    """
    folder, modality = encoder_inputs["folder"], encoder_inputs["modality"]
    family = encoder_inputs.get("family", "hf")
    spec = tower_spec(folder, modality, family)

    def load() -> nn.Module:
        return load_tower(folder, modality, weights=encoder_inputs["weights"], family=family)

    options = {k: v for k, v in tuning.items() if k in ("mode", "last_n", "layer_lr_decay", "learning_rate", "pooling",
                                                         "embeddings")}
    return PretrainedEncoder(load if encoder_inputs.get("lazy") else load(), modality=modality,
                             token_mask=encoder_inputs.get("token_mask", False), out_dim=spec.out_dim,
                             summary=spec.summary, name=spec.model_type, **options)
