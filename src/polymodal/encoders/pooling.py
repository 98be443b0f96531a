"""Masked pooling over token sequences, shared by the encoders of every modality."""
from __future__ import annotations

import torch

__all__ = ["masked_mean", "masked_max", "mask_from_lengths"]


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``tokens [B, T, D]`` over positions where ``mask [B, T]`` is True → ``[B, D]``.

    Rows with no real position give zeros. Summed in float32 so bf16 stays accurate.
    """
    weights = mask.unsqueeze(-1).float()  # [B, T, 1]
    total = (tokens.float() * weights).sum(dim=1)  # [B, D]
    count = weights.sum(dim=1).clamp(min=1.0)  # [B, 1]
    return (total / count).to(tokens.dtype)


def masked_max(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max of ``tokens [B, T, D]`` over real positions → ``[B, D]``; rows with none give zeros."""
    fill = torch.finfo(tokens.dtype).min
    best = tokens.masked_fill(~mask.unsqueeze(-1), fill).amax(dim=1)  # [B, D]
    return torch.where(mask.any(dim=1, keepdim=True), best, torch.zeros_like(best))


def mask_from_lengths(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """``lengths [B]`` → bool ``[B, length]``, True on the first ``lengths[b]`` positions."""
    return torch.arange(length, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)  # [B, length]
