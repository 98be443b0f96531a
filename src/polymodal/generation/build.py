"""Building a generation model from a config's ``generate:`` section."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from torch import nn

from polymodal.generation.gan import ConditionalGAN
from polymodal.generation.model import GenerativeModel, decoding_of
from polymodal.generation.mvae import MultimodalVAE
from polymodal.generation.parts import Conditions
from polymodal.generation.vae import ConditionalVAE

__all__ = ["build_generative_model"]


def build_generative_model(settings: Any, preprocessors: Mapping[str, Any], encoders: Mapping[str, nn.Module],
                           make_encoder: Callable[[str], nn.Module],
                           make_fusion: Callable[[dict[str, int]], nn.Module],
                           labels: Mapping[str, Any]) -> GenerativeModel:
    """The model ``settings`` (the ``generate:`` section) describes.

    Args:
        preprocessors, encoders: every fitted input and its (configured) encoder.
        make_encoder: a fresh encoder of an input (the GAN's critic reads the conditions
            through its own).
        make_fusion: the config's fusion over ``{input: width}``.
        labels: ``labels.json`` (``targets``; ``classes`` for an auxiliary discriminator and the mvae's label likelihood).
    """
    names = sorted(preprocessors)
    targets = list(labels["targets"])
    for t in targets:
        decoding_of(preprocessors[t])
    condition_names = [n for n in names if n not in targets]
    conditions = Conditions({n: encoders[n] for n in condition_names}, make_fusion, names)
    opts = settings.model_dump() if hasattr(settings, "model_dump") else dict(settings)
    if opts["model"] == "vae":
        return ConditionalVAE(names, targets[0], preprocessors[targets[0]], encoders[targets[0]], conditions, opts)
    if opts["model"] == "gan":
        critic_conditions = Conditions({n: make_encoder(n) for n in condition_names}, make_fusion, names)
        return ConditionalGAN(names, targets[0], preprocessors[targets[0]], conditions, critic_conditions,
                              len(labels.get("classes") or []), opts)
    return MultimodalVAE(names, targets, {t: preprocessors[t] for t in targets},
                         {t: encoders[t] for t in targets}, conditions, opts, len(labels.get("classes") or []))
