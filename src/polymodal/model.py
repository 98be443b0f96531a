"""MultimodalModel = one encoder per input + a fusion module + a task head."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.encoders.presence import encode_present
from polymodal.fusion.base import FusionOutput

__all__ = ["MultimodalModel"]


class MultimodalModel(nn.Module):
    """Encoders → fusion → head.

    Args:
        encoders: one encoder per input name.
        fusion: combines ``{name: EncoderOutput}`` and a presence mask ``[B, M]``
            (None for an alignment-only model).
        head: maps ``fused [B, D]`` to the task output (None for an alignment-only model).
        aligner: an ``AlignmentHead`` over some inputs' pooled vectors, or None.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], fusion: nn.Module | None,
                 head: nn.Module | None, aligner: nn.Module | None = None):
        super().__init__()
        self.encoders = nn.ModuleDict(dict(encoders))
        self.names = sorted(encoders)
        self.fusion = fusion
        self.head = head
        self.aligner = aligner

    def encode(self, inputs: Mapping[str, Mapping[str, torch.Tensor]],
               present: torch.Tensor | None = None) -> dict[str, EncoderOutput]:
        """Encoder outputs per input; with ``present [B, M]``, each encoder runs only on the
        rows where its input is present (see ``encode_present``)."""
        if present is None:
            return {n: self.encoders[n](inputs[n]) for n in self.names}
        return {n: encode_present(self.encoders[n], inputs[n], present[:, m]) for m, n in enumerate(self.names)}

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, FusionOutput]:
        """Returns the head output (logits ``[B, K]`` or values ``[B]``) and the fusion output."""
        fusion_out = self.fusion(self.encode(batch["inputs"], batch["present"]), batch["present"])
        return self.read_out(fusion_out), fusion_out

    def forward_aligned(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor | None, Any]:
        """One encoder pass → the head output (None without a head) and the aligner's
        ``AlignedBatch`` (see ``heads.alignment``)."""
        encoded = self.encode(batch["inputs"], batch["present"])
        output = None
        if self.fusion is not None:
            output = self.read_out(self.fusion(encoded, batch["present"]))
        return output, self.align(encoded, batch["present"])

    def align(self, encoded: Mapping[str, EncoderOutput], present: torch.Tensor) -> Any:
        """The aligner's ``AlignedBatch`` for encoder outputs and ``present [B, M]``."""
        names = self.aligner.names
        return self.aligner({n: encoded[n].pooled for n in names},
                            {n: present[:, self.names.index(n)] for n in names})

    def read_out(self, fusion_out: FusionOutput) -> torch.Tensor:
        """The head's output for a fusion output: ``head(fused)``, or for late fusion (which
        returns ``parts``) each input's head combined with the fusion's weights."""
        if fusion_out.parts is not None:
            return self.head(fusion_out.parts, fusion_out.weights)
        return self.head(fusion_out.fused)
