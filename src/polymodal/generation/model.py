"""The generation models' common face.

Every generation model reads a whole batch (the conditioning inputs and the generated ones,
with the presence mask) and offers:

- ``loss(batch, beta) -> (loss, parts)`` (VAEs) or ``critic_loss`` / ``generator_loss`` (GAN);
- ``generate(batch, target, noise) -> decoded [B, ...]``: the ``target`` input made from the
  rest of each row, deterministic for given ``noise [B, latent_dim]``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from polymodal.errors import ConfigError
from polymodal.generation.parts import Conditions
from polymodal.modalities.base import get_modality

__all__ = ["GenerativeModel", "decoder_for", "decoding_of"]


class GenerativeModel(nn.Module):
    """Base of the generation models.

    Attributes:
        kind: ``vae`` | ``gan`` | ``mvae``.
        names: every input of the batch, sorted (the columns of ``present``).
        targets: the inputs it can generate.
        conditions: the ``Conditions`` encoder of the conditioning inputs.
        latent_dim: width of the noise ``generate`` takes.
    """

    kind = ""
    adversarial = False  # trained by alternating critic and generator updates
    head = None  # no prediction head: ``FittedModel.check_predicts`` refuses predict()
    aligner = None
    fusion = None

    conditions: Conditions  # set by each model (the GAN's lives in its generator)

    def __init__(self, names: list[str], targets: list[str], latent_dim: int, settings: Mapping[str, Any]) -> None:
        super().__init__()
        self.names = list(names)
        self.targets = list(targets)
        self.latent_dim = latent_dim
        self.settings = dict(settings)

    @property
    def encoders(self) -> nn.ModuleDict:
        """The conditioning encoders (the feature cache computes frozen backbones' features with them)."""
        return self.conditions.encoders

    def present(self, batch: Mapping[str, Any], name: str) -> torch.Tensor:
        """``[B]`` bool: rows where input ``name`` is present."""
        return batch["present"][:, self.names.index(name)]

    def generate(self, batch: Mapping[str, Any], target: str, noise: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def decoder_for(pre: Any, in_dim: int, width: int) -> nn.Module:
    """The decoder of a generated input, from its modality's ``Decoding``."""
    decoder = decoding_of(pre).decoder(in_dim, **pre.encoder_inputs(), width=width)
    floor = getattr(getattr(pre, "options", None), "log_floor", None)
    if floor is not None and hasattr(decoder, "silence"):  # audio: padded frames are silence
        decoder.silence = float(torch.log(torch.tensor(floor)))
    return decoder


def decoding_of(pre: Any) -> Any:
    """The ``Decoding`` of a preprocessor's modality.

    Raises:
        ConfigError: the modality has none, or this input cannot be generated (its reason).
    """
    decoding = get_modality(pre.modality).decoding
    if decoding is None:
        raise ConfigError(f"column(s) {', '.join(pre.columns)} ({pre.modality}) cannot be generated: "
                          f"{pre.modality} has no decoder; generate an image or audio column")
    reason = decoding.check(pre)
    if reason:
        raise ConfigError(reason)
    return decoding
