"""Low-rank multimodal fusion (LMF, Liu et al. 2018): tensor fusion with rank-r factors."""
from __future__ import annotations

from typing import Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion._parts import _check_min_inputs
from polymodal.fusion.base import FusionOutput, register_fusion

__all__ = ["LowRankFusion"]


@register_fusion("low_rank")
class LowRankFusion(nn.Module):
    """``fused = Σ_r λ_r · Π_m ([x_m, 1] W_m^(r)) + b``: the output of tensor fusion's layer
    with its weight tensor constrained to rank ``rank``, computed without ever forming the
    outer product, so it is linear in the number of inputs.

    ``x_m`` is the LayerNorm-ed pooled vector, or a learned missing vector when absent.
    """

    min_inputs = 2

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        rank: int = Field(4, ge=1, description="rank of the factorised fusion tensor")
        hidden: int = Field(128, ge=1, description="width of the fused vector")
        dropout: float = Field(0.1, ge=0.0, lt=1.0)

    def __init__(self, input_dims: Mapping[str, int], rank: int = 4, hidden: int = 128,
                 dropout: float = 0.1):
        super().__init__()
        _check_min_inputs("low_rank", input_dims, self.min_inputs)
        self.names = sorted(input_dims)
        self.norms = nn.ModuleDict({n: nn.LayerNorm(input_dims[n]) for n in self.names})
        self.missing = nn.ParameterDict({n: nn.Parameter(torch.zeros(input_dims[n])) for n in self.names})
        self.factors = nn.ParameterDict({
            n: nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, input_dims[n] + 1, hidden)))
            for n in self.names
        })  # each [R, D_m + 1, H]
        self.rank_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)))  # [1, R]
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.dropout = nn.Dropout(dropout)
        self.act = nn.GELU()
        self.out_dim = hidden

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        product = None
        for m, n in enumerate(self.names):
            x = self.norms[n](outputs[n].pooled)  # [B, D_m]
            x = torch.where(present[:, m : m + 1], x, self.missing[n].to(x.dtype))
            x = torch.cat([self.dropout(x), torch.ones_like(x[:, :1])], dim=-1)  # [B, D_m + 1]
            factor = torch.einsum("bd,rdh->brh", x, self.factors[n].to(x.dtype))  # [B, R, H]
            product = factor if product is None else product * factor
        fused = torch.einsum("or,brh->bh", self.rank_weights.to(product.dtype), product) + self.bias  # [B, H]
        return FusionOutput(fused=self.dropout(self.act(fused)))
