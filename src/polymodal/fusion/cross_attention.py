"""Cross-attention fusion: each input attends to the others."""
from __future__ import annotations

from typing import Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion._block import _Block
from polymodal.fusion._parts import _check_min_inputs, _ModalitySequence
from polymodal.fusion.base import FusionOutput, register_fusion

__all__ = ["CrossAttentionFusion"]


@register_fusion("cross_attention")
class CrossAttentionFusion(nn.Module):
    """Input m's summary token queries the other inputs' positions (their summary tokens, and
    with ``tokens: true`` their token sequences) through ``num_layers`` cross-attention blocks;
    the M updated summaries are concatenated and mixed to ``d_model``.

    An input never attends to itself here, so each output summary mixes what the others said
    about it. An absent input is its learned missing token, on both the query and key side.
    ``weights [B, M]`` is the attention each input receives in the last block, averaged over
    the querying inputs.
    """

    min_inputs = 2

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        d_model: int = Field(128, ge=1, description="width of the tokens and of the fused vector")
        num_layers: int = Field(1, ge=1)
        num_heads: int = Field(4, ge=1)
        ff_dim: int = Field(256, ge=1)
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        tokens: bool = Field(True, description="attend over the other encoders' token sequences")

        @model_validator(mode="after")
        def _heads_divide(self) -> "CrossAttentionFusion.Options":
            if self.d_model % self.num_heads:
                raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads "
                                 f"({self.num_heads}); change one of them")
            return self

    def __init__(self, input_dims: Mapping[str, int], d_model: int = 128, num_layers: int = 1,
                 num_heads: int = 4, ff_dim: int = 256, dropout: float = 0.1, tokens: bool = True):
        super().__init__()
        _check_min_inputs("cross_attention", input_dims, self.min_inputs)
        self.Options(d_model=d_model, num_heads=num_heads)
        self.names = sorted(input_dims)
        self.sequence = _ModalitySequence(input_dims, d_model, tokens)
        self.blocks = nn.ModuleList(_Block(d_model, num_heads, ff_dim, dropout) for _ in range(num_layers))
        m = len(self.names)
        self.mix = nn.Sequential(nn.LayerNorm(m * d_model), nn.Linear(m * d_model, d_model), nn.GELU(),
                                 nn.Dropout(dropout))
        self.out_dim = d_model

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        seq, valid, owner = self.sequence(outputs, present)  # [B, S, D], [B, S], [S]
        b, m = seq.shape[0], len(self.names)
        queries = seq[:, :m]  # [B, M, D]: the summary tokens come first
        others = owner.unsqueeze(0) != torch.arange(m, device=seq.device).unsqueeze(1)  # [M, S]
        # Fold the query input into the batch so each one gets its own key mask.
        context = seq.repeat_interleave(m, dim=0)  # [B*M, S, D]
        keys_ok = (valid.unsqueeze(1) & others.unsqueeze(0)).reshape(b * m, -1)  # [B*M, S]
        x = queries.reshape(b * m, 1, -1)  # [B*M, 1, D]
        for block in self.blocks:
            x, attn = block(x, keys_ok, context)  # [B*M, 1, D], [B*M, 1, S]
        received = torch.zeros(b * m, m, dtype=attn.dtype, device=seq.device)
        received.index_add_(1, owner, attn[:, 0])  # [B*M, M]
        weights = received.view(b, m, m).mean(dim=1)  # [B, M]
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
        fused = self.mix(x.reshape(b, -1))  # [B, M*D] → [B, D]
        return FusionOutput(fused=fused, weights=weights)
