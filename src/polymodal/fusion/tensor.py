"""Tensor fusion (TFN, Zadeh et al. 2017): the outer product of the inputs, each with a 1."""
from __future__ import annotations

from typing import Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion._parts import _check_min_inputs, _ModalityVectors
from polymodal.fusion.base import FusionOutput, register_fusion

__all__ = ["TensorFusion", "tensor_fusion_size"]


def tensor_fusion_size(n_inputs: int, proj_dim: int, hidden: int) -> tuple[int, int]:
    """``(elements of the outer product per example, weights of the layer that reads it)``."""
    elements = (proj_dim + 1) ** n_inputs
    return elements, elements * hidden


# float32 copies of each weight a training step holds: the weight, its gradient and AdamW's two
# moment estimates (training/module.py builds torch.optim.AdamW).
_TRAINING_COPIES = 4


def _mib(count: int) -> str:
    size = count * 4 / 2**20
    return f"{size / 1024:,.1f} GiB" if size >= 1024 else f"{size:,.1f} MiB"


@register_fusion("tensor")
class TensorFusion(nn.Module):
    """Each input → ``proj_dim`` (LayerNorm, Linear; a learned missing vector when absent),
    append a constant 1, take the outer product of all M vectors (``(proj_dim + 1)^M``
    elements, holding every unimodal, bimodal, ... M-modal product), then a Linear → ``hidden``.

    The outer product grows exponentially with the number of inputs; building refuses when
    training the layer reading it would take more than ``max_mib``: its float32 weights, their
    gradients and AdamW's two moment estimates (4 floats per weight).
    """

    min_inputs = 2

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        proj_dim: int = Field(16, ge=1, description="width of each input before the outer product")
        hidden: int = Field(128, ge=1, description="width of the fused vector")
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        max_mib: float = Field(256.0, gt=0.0, description="refuse when training the output layer (weights, "
                                "gradients, 2 AdamW states) would need more memory")

    def __init__(self, input_dims: Mapping[str, int], proj_dim: int = 16, hidden: int = 128,
                 dropout: float = 0.1, max_mib: float = 256.0):
        super().__init__()
        from polymodal.errors import ConfigError

        _check_min_inputs("tensor", input_dims, self.min_inputs)
        m = len(input_dims)
        elements, weights = tensor_fusion_size(m, proj_dim, hidden)
        training = weights * _TRAINING_COPIES
        if training * 4 > max_mib * 2**20:
            raise ConfigError(
                f"fusion 'tensor': the outer product of {m} inputs at proj_dim={proj_dim} has "
                f"({proj_dim}+1)^{m} = {elements:,} elements per example, and the layer reading it "
                f"would hold {weights:,} weights ({_mib(weights)}); training it needs "
                f"{_mib(training)} (weights, gradients and 2 AdamW states), over max_mib={max_mib:g}. "
                f"Lower proj_dim or hidden, raise max_mib, or use fusion: low_rank"
            )
        self.names = sorted(input_dims)
        self.vectors = _ModalityVectors(input_dims, proj_dim)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(elements, hidden)
        self.act = nn.GELU()
        self.out_dim = hidden

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        z = self.vectors(outputs, present)  # [B, M, P]
        z = torch.cat([z, torch.ones_like(z[..., :1])], dim=-1)  # [B, M, P+1]
        product = z[:, 0]  # [B, P+1]
        for m in range(1, z.shape[1]):
            product = torch.einsum("bi,bj->bij", product, z[:, m]).flatten(1)  # [B, (P+1)^(m+1)]
        return FusionOutput(fused=self.dropout(self.act(self.out(self.dropout(product)))))

