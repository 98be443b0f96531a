"""MultimodalModel = one encoder per input + a fusion module + a task head."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion.base import FusionOutput

__all__ = ["MultimodalModel"]


class MultimodalModel(nn.Module):
    """Encoders → fusion → head.

    Args:
        encoders: one encoder per input name.
        fusion: combines ``{name: EncoderOutput}`` and a presence mask ``[B, M]``.
        head: maps ``fused [B, D]`` to the task output.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], fusion: nn.Module, head: nn.Module):
        super().__init__()
        self.encoders = nn.ModuleDict(dict(encoders))
        self.names = sorted(encoders)
        self.fusion = fusion
        self.head = head

    def encode(self, inputs: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, EncoderOutput]:
        return {n: self.encoders[n](inputs[n]) for n in self.names}

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, FusionOutput]:
        """Returns the head output (logits ``[B, K]`` or values ``[B]``) and the fusion output."""
        fusion_out = self.fusion(self.encode(batch["inputs"]), batch["present"])
        return self.head(fusion_out.fused), fusion_out
