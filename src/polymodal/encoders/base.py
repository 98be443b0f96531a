"""The one contract every encoder keeps, and the registry that resolves encoder names."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

__all__ = ["EncoderOutput", "register_encoder", "get_encoder", "encoder_names", "ENCODERS"]


@dataclass
class EncoderOutput:
    """What an encoder returns for one input column.

    Attributes:
        tokens: ``[B, T, D]`` sequence of features (T=1 for encoders with no sequence).
        pooled: ``[B, D]`` one vector per example.
        mask: ``[B, T]`` bool, True where ``tokens`` holds a real position.
    """

    tokens: torch.Tensor
    pooled: torch.Tensor
    mask: torch.Tensor


# (modality, name) -> class. Filled by @register_encoder in the defining files.
ENCODERS: dict[tuple[str, str], type[nn.Module]] = {}


def register_encoder(modality: str, name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make an encoder available as ``encoder: {name: <name>}`` for ``modality``.

    The class must define a nested pydantic ``Options`` model (``extra="forbid"``) with its
    tunable options and defaults, take ``**encoder_inputs, **options`` as keyword arguments,
    and expose ``out_dim`` (the D of its ``EncoderOutput``).
    """

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        key = (modality, name)
        if key in ENCODERS:
            raise RuntimeError(f"encoder {key} registered twice")
        ENCODERS[key] = cls
        return cls

    return wrap


def encoder_names(modality: str) -> list[str]:
    """Registered encoder names for one modality."""
    return sorted(n for (m, n) in ENCODERS if m == modality)


def get_encoder(modality: str, name: str) -> type[nn.Module]:
    """Return the encoder class registered as ``name`` for ``modality``."""
    from polymodal.errors import ConfigError

    if (modality, name) not in ENCODERS:
        raise ConfigError(
            f"unknown {modality} encoder {name!r}; known: {', '.join(encoder_names(modality)) or 'none'}"
        )
    return ENCODERS[(modality, name)]
