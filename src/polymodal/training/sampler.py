"""A shuffling sampler whose order depends only on (seed, epoch).

``DataLoader(shuffle=True, generator=g)`` advances one generator across epochs, so the
order of epoch k depends on every epoch before it, and a run resumed at epoch k would
see a different order than an uninterrupted one. Here each epoch draws its permutation
from a generator seeded by (seed, epoch) alone.
"""
from __future__ import annotations

from typing import Iterator

import torch

__all__ = ["EpochSampler"]


class EpochSampler(torch.utils.data.Sampler[int]):
    """Yields ``range(n)`` in an order fixed by ``(seed, epoch)``; call ``set_epoch`` per epoch.

    Lightning also calls ``set_epoch`` on samplers that have it, with the same epoch number.
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % (2**63 - 1))
        return iter(torch.randperm(self.n, generator=generator).tolist())
