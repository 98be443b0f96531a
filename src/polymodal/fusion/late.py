"""Late fusion: one head per input, their outputs combined by averaging or learned weights."""
from __future__ import annotations

from typing import Literal, Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion._parts import _masked_softmax
from polymodal.fusion.base import FusionOutput, register_fusion

__all__ = ["LateFusion"]


@register_fusion("late")
class LateFusion(nn.Module):
    """Each input gets its own branch (LayerNorm → Linear → GELU) and, in the model, its own
    head; the heads' outputs (logits, or standardised values) are averaged with ``weights``.

    The fusion returns ``parts [B, M, hidden]`` (one vector per input, for its head) and
    ``weights [B, M]``: uniform over the inputs present (``combine: mean``), or a learned
    softmax over inputs restricted to those present (``combine: learned``). An absent input's
    head is left out of the average, which is how a late-fusion ensemble handles a missing
    member. ``fused`` (the weighted sum of the parts) is what an embedding would use.

    ``head_wrapper = "late"`` tells the model builder to give each input a copy of the head
    (the registered head ``late``: ``polymodal.heads.LateHead``).
    """

    min_inputs = 1
    head_wrapper = "late"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        hidden: int = Field(128, ge=1, description="width of each input's vector")
        combine: Literal["mean", "learned"] = "learned"
        dropout: float = Field(0.1, ge=0.0, lt=1.0)

    def __init__(self, input_dims: Mapping[str, int], hidden: int = 128,
                 combine: str = "learned", dropout: float = 0.1):
        super().__init__()
        self.names = sorted(input_dims)
        self.combine = combine
        self.branches = nn.ModuleDict({
            n: nn.Sequential(nn.LayerNorm(input_dims[n]), nn.Dropout(dropout), nn.Linear(input_dims[n], hidden),
                             nn.GELU(), nn.Dropout(dropout))
            for n in self.names
        })
        self.logits = nn.Parameter(torch.zeros(len(self.names)), requires_grad=combine == "learned")  # [M]
        self.out_dim = hidden

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        parts = torch.stack([self.branches[n](outputs[n].pooled) for n in self.names], dim=1)  # [B, M, H]
        # An absent input's vector is replaced by zeros: its head is out of the average anyway.
        parts = torch.where(present.unsqueeze(-1), parts, torch.zeros_like(parts))
        logits = self.logits.to(parts.dtype).expand(parts.shape[0], -1)  # [B, M]
        weights = _masked_softmax(logits, present)  # [B, M]
        fused = (weights.unsqueeze(-1) * parts).sum(dim=1)  # [B, H]
        return FusionOutput(fused=fused, weights=weights, parts=parts)
