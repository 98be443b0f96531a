"""Multi-class classification head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.heads.base import register_head

__all__ = ["ClassificationHead"]


def _mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Module:
    if hidden <= 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
        nn.Linear(hidden, out_dim),
    )


@register_head("classification")
class ClassificationHead(nn.Module):
    """Logits over ``num_classes``; softmax cross-entropy with optional class weights.

    Args:
        in_dim: width of the fused vector.
        num_classes: K.
        hidden: width of an optional hidden layer (0 = a single linear layer).
        class_weights: ``[K]`` loss weight per class, or None.
    """

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 0, dropout: float = 0.1,
                 class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.net = _mlp(in_dim, hidden, num_classes, dropout)
        self.label_smoothing = label_smoothing
        weights = class_weights if class_weights is not None else torch.ones(num_classes)
        self.register_buffer("class_weights", weights.float())

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.net(fused)  # [B, K]

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target, weight=self.class_weights,
                               label_smoothing=self.label_smoothing)

    @staticmethod
    def probabilities(logits: torch.Tensor) -> torch.Tensor:
        return logits.float().softmax(dim=-1)  # [B, K]
