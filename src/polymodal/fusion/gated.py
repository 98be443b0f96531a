"""The gated multimodal unit (GMU) of Arevalo et al. 2017, for two or more inputs."""
from __future__ import annotations

from typing import Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion._parts import _check_min_inputs, _masked_softmax
from polymodal.fusion.base import FusionOutput, register_fusion

__all__ = ["GatedFusion"]


@register_fusion("gated")
class GatedFusion(nn.Module):
    """``h_m = tanh(W_m x_m)``, gates ``z = softmax_m(W_z [x_1, ..., x_M])`` per feature,
    ``fused = Σ_m z_m ⊙ h_m``.

    With two inputs this is the paper's bimodal GMU (``z`` and ``1 - z``); with more, the
    per-feature gates are a softmax over inputs. ``x_m`` is the LayerNorm-ed pooled vector, or
    a learned missing vector when the input is absent (whose gate is then 0).
    ``weights [B, M]`` is each input's gate averaged over features.
    """

    min_inputs = 2

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        hidden: int = Field(256, ge=1, description="width of the fused vector")
        dropout: float = Field(0.1, ge=0.0, lt=1.0)

    def __init__(self, input_dims: Mapping[str, int], hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        _check_min_inputs("gated", input_dims, self.min_inputs)
        self.names = sorted(input_dims)
        self.norms = nn.ModuleDict({n: nn.LayerNorm(input_dims[n]) for n in self.names})
        self.missing = nn.ParameterDict({n: nn.Parameter(torch.zeros(input_dims[n])) for n in self.names})
        self.hidden = nn.ModuleDict({n: nn.Linear(input_dims[n], hidden) for n in self.names})
        total = sum(input_dims[n] for n in self.names)
        self.gate = nn.Linear(total, len(self.names) * hidden)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = hidden

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        xs = []
        for m, n in enumerate(self.names):
            x = self.norms[n](outputs[n].pooled)  # [B, D_m]
            xs.append(torch.where(present[:, m : m + 1], x, self.missing[n].to(x.dtype)))
        h = torch.stack([torch.tanh(self.hidden[n](x)) for n, x in zip(self.names, xs)], dim=1)  # [B, M, H]
        logits = self.gate(self.dropout(torch.cat(xs, dim=-1)))  # [B, M*H]
        z = _masked_softmax(logits.view(h.shape), present)  # [B, M, H]
        fused = self.dropout((z * h).sum(dim=1))  # [B, H]
        return FusionOutput(fused=fused, weights=z.mean(dim=-1))
