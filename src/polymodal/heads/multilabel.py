"""Multi-label head: one logit per label, sigmoid binary cross-entropy."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.heads.base import register_head
from polymodal.heads.classification import _mlp

__all__ = ["MultiLabelHead"]


@register_head("multilabel")
class MultiLabelHead(nn.Module):
    """Logits over ``num_labels`` independent labels; binary cross-entropy per label.

    Args:
        in_dim: width of the fused vector.
        num_labels: K.
        hidden: width of an optional hidden layer (0 = a single linear layer).
        pos_weight: ``[K]`` weight of each label's positives in the loss (rare labels: > 1), or None.
    """

    def __init__(self, in_dim: int, num_labels: int, hidden: int = 0, dropout: float = 0.1,
                 pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.net = _mlp(in_dim, hidden, num_labels, dropout)
        weights = pos_weight if pos_weight is not None else torch.ones(num_labels)
        self.register_buffer("pos_weight", weights.float())

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.net(fused)  # [B, K]

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), target.float(), pos_weight=self.pos_weight)

    @staticmethod
    def probabilities(logits: torch.Tensor) -> torch.Tensor:
        return logits.float().sigmoid()  # [B, K], each label on its own
