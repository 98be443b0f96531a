"""Modality dropout: hide whole inputs of training rows, so the model learns to do without."""
from __future__ import annotations

import torch

__all__ = ["drop_modalities"]


def drop_modalities(present: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mark each present input of each row absent with probability ``p``, never all of a row's.

    A row whose every present input was drawn for dropping keeps one of them, chosen
    uniformly, so no training row is left with nothing to learn from.

    Args:
        present: ``[B, M]`` bool, True = the input is there.
        p: probability of dropping one present input, in [0, 1).
        generator: random source (the global one when None).

    Returns:
        ``[B, M]`` bool, a subset of ``present``.
    """
    if p <= 0 or present.shape[1] < 2:
        return present
    drop = torch.rand(present.shape, generator=generator, device=present.device) < p  # [B, M]
    kept = present & ~drop  # [B, M]
    emptied = present.any(dim=1) & ~kept.any(dim=1)  # [B]
    if emptied.any():
        # Keep one of the row's present inputs: the one with the highest random score.
        score = torch.rand(present.shape, generator=generator, device=present.device)  # [B, M]
        score = score.masked_fill(~present, -1.0)
        rescue = torch.zeros_like(present).scatter_(1, score.argmax(dim=1, keepdim=True), True)
        kept = kept | (rescue & emptied.unsqueeze(1))
    return kept
