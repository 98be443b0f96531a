"""Attention fusion: a transformer over modality tokens with modality-type embeddings."""
from __future__ import annotations

from typing import Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion._block import _Block
from polymodal.fusion._parts import _ModalitySequence
from polymodal.fusion.base import FusionOutput, register_fusion

__all__ = ["AttentionFusion"]


@register_fusion("attention")
class AttentionFusion(nn.Module):
    """A learned [FUSE] token and one token per input (its pooled vector; ``tokens: true`` adds
    the encoders' whole token sequences) go through ``num_layers`` transformer blocks; the
    [FUSE] token's output is the fused vector.

    Each position carries its input's type embedding; there are no positions within the set,
    so the result does not depend on the order of the inputs. An absent input is one learned
    missing token (its sequence is masked out). ``weights [B, M]`` is the last block's
    attention from [FUSE] summed over each input's positions.
    """

    min_inputs = 1

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        d_model: int = Field(128, ge=1, description="width of the tokens and of the fused vector")
        num_layers: int = Field(2, ge=1)
        num_heads: int = Field(4, ge=1)
        ff_dim: int = Field(256, ge=1)
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        tokens: bool = Field(False, description="attend over the encoders' token sequences too")

        @model_validator(mode="after")
        def _heads_divide(self) -> "AttentionFusion.Options":
            if self.d_model % self.num_heads:
                raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads "
                                 f"({self.num_heads}); change one of them")
            return self

    def __init__(self, input_dims: Mapping[str, int], d_model: int = 128, num_layers: int = 2,
                 num_heads: int = 4, ff_dim: int = 256, dropout: float = 0.1, tokens: bool = False):
        super().__init__()
        self.Options(d_model=d_model, num_heads=num_heads)  # the divisibility check, for direct use
        self.names = sorted(input_dims)
        self.sequence = _ModalitySequence(input_dims, d_model, tokens)
        self.fuse = nn.Parameter(torch.zeros(1, 1, d_model))  # the [FUSE] token
        nn.init.normal_(self.fuse, std=0.02)
        self.blocks = nn.ModuleList(_Block(d_model, num_heads, ff_dim, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.out_dim = d_model

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        seq, valid, owner = self.sequence(outputs, present)  # [B, S, D], [B, S], [S]
        b = seq.shape[0]
        x = torch.cat([self.fuse.expand(b, -1, -1).to(seq.dtype), seq], dim=1)  # [B, 1+S, D]
        valid = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)  # [B, 1+S]
        for block in self.blocks:
            x, attn = block(x, valid)  # [B, 1+S, D], [B, 1+S, 1+S]
        from_fuse = attn[:, 0, 1:]  # [B, S]: what [FUSE] read from each position
        per_input = torch.zeros(b, len(self.names), dtype=from_fuse.dtype, device=seq.device)
        per_input.index_add_(1, owner, from_fuse)  # [B, M]
        weights = per_input / per_input.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return FusionOutput(fused=self.norm(x[:, 0]), weights=weights)
