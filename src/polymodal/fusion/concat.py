"""Concatenation (early) fusion."""
from __future__ import annotations

from typing import Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion.base import FusionOutput, register_fusion

__all__ = ["ConcatFusion"]


@register_fusion("concat")
class ConcatFusion(nn.Module):
    """Normalise each input's pooled vector, concatenate, and mix with an MLP.

    An input absent for a row (presence False) is replaced by a learned "missing" vector,
    so the model sees a consistent signal for "no image" rather than zeros that look like
    a real (if odd) image.
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        hidden: int = Field(256, ge=1, description="width of the fused vector")
        dropout: float = Field(0.1, ge=0.0, lt=1.0)

    def __init__(self, input_dims: Mapping[str, int], hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.names = sorted(input_dims)
        self.norms = nn.ModuleDict({n: nn.LayerNorm(input_dims[n]) for n in self.names})
        self.missing = nn.ParameterDict(
            {n: nn.Parameter(torch.zeros(input_dims[n])) for n in self.names}
        )
        total = sum(input_dims[n] for n in self.names)
        self.mix = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(total, hidden), nn.GELU(), nn.Dropout(dropout)
        )
        self.out_dim = hidden

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        parts = []
        for m, name in enumerate(self.names):
            pooled = self.norms[name](outputs[name].pooled)  # [B, D_m]
            keep = present[:, m : m + 1].to(pooled.dtype)  # [B, 1]
            parts.append(keep * pooled + (1 - keep) * self.missing[name].to(pooled.dtype))
        return FusionOutput(fused=self.mix(torch.cat(parts, dim=-1)))  # [B, hidden]
