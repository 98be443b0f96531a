"""The fusion contract and its registry.

A fusion module combines the encoders' outputs into one vector per example. It is built
as ``Cls(input_dims={name: D_i}, **options)`` and called with the encoder outputs and a
presence mask; inputs are always taken in sorted name order, so results never depend on
the order of the mapping.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

__all__ = ["FusionOutput", "FUSIONS", "register_fusion", "get_fusion"]


@dataclass
class FusionOutput:
    """``fused [B, D]``; ``weights [B, M]`` (per-example modality weights) when the fusion has them."""

    fused: torch.Tensor
    weights: torch.Tensor | None = None


FUSIONS: dict[str, type[nn.Module]] = {}


def register_fusion(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a fusion available as ``fusion: {name: <name>}``.

    The class defines a nested pydantic ``Options`` model, takes ``input_dims`` plus its
    options as keywords, exposes ``out_dim`` and implements
    ``forward(outputs: Mapping[str, EncoderOutput], present: Bool[B, M]) -> FusionOutput``.
    """

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        FUSIONS[name] = cls
        return cls

    return wrap


def get_fusion(name: str) -> type[nn.Module]:
    from polymodal.errors import ConfigError

    if name not in FUSIONS:
        raise ConfigError(f"unknown fusion {name!r}; known: {', '.join(sorted(FUSIONS))}")
    return FUSIONS[name]
