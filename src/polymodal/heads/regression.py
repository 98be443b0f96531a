"""Regression head (one value per example)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.heads.base import register_head

from polymodal.heads.classification import _mlp

__all__ = ["RegressionHead"]


@register_head("regression")
class RegressionHead(nn.Module):
    """Predicts a standardised target; ``target_mean``/``target_std`` map it back.

    Training on a standardised target keeps the loss scale sane whatever the unit of the
    label (prices in thousands, probabilities in [0, 1]).
    """

    def __init__(self, in_dim: int, hidden: int = 0, dropout: float = 0.1, loss: str = "mse",
                 target_mean: float = 0.0, target_std: float = 1.0):
        super().__init__()
        self.net = _mlp(in_dim, hidden, 1, dropout)
        self.loss_name = loss
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.net(fused).squeeze(-1)  # [B]

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        scaled = (target.float() - self.target_mean) / self.target_std
        if self.loss_name == "huber":
            return F.huber_loss(output.float(), scaled)
        return F.mse_loss(output.float(), scaled)

    def values(self, output: torch.Tensor) -> torch.Tensor:
        return output.float() * self.target_std + self.target_mean  # [B]
