"""Learned weighted fusion: a softmax weight per input, per example, from a small gate."""
from __future__ import annotations

from typing import Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion._parts import _masked_softmax, _ModalityVectors
from polymodal.fusion.base import FusionOutput, register_fusion

__all__ = ["WeightedFusion"]


@register_fusion("weighted")
class WeightedFusion(nn.Module):
    """Project every input to ``hidden``, weigh them by a per-example softmax, sum, and mix.

    The gate reads all inputs (concatenated) and scores each one, so how much the image counts
    can depend on what the audio says. Absent inputs get weight 0; ``weights [B, M]`` are
    returned for inspection.
    """

    min_inputs = 1

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        hidden: int = Field(256, ge=1, description="width of the fused vector")
        gate_hidden: int = Field(64, ge=1, description="width of the gate's hidden layer")
        dropout: float = Field(0.1, ge=0.0, lt=1.0)

    def __init__(self, input_dims: Mapping[str, int], hidden: int = 256, gate_hidden: int = 64,
                 dropout: float = 0.1):
        super().__init__()
        self.names = sorted(input_dims)
        m = len(self.names)
        self.vectors = _ModalityVectors(input_dims, hidden)
        self.gate = nn.Sequential(nn.Linear(m * hidden, gate_hidden), nn.GELU(), nn.Linear(gate_hidden, m))
        self.mix = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Dropout(dropout))
        self.out_dim = hidden

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        vectors = self.vectors(outputs, present)  # [B, M, hidden]
        weights = _masked_softmax(self.gate(vectors.flatten(1)), present)  # [B, M]
        pooled = (weights.unsqueeze(-1) * vectors).sum(dim=1)  # [B, hidden]
        return FusionOutput(fused=self.mix(pooled), weights=weights)
