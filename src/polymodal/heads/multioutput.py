"""Several heads over one fused vector: one per label column, their losses weighted and summed."""
from __future__ import annotations

import torch
from torch import nn

from polymodal.heads.base import register_head

__all__ = ["MultiOutputHead"]


@register_head("multioutput")
class MultiOutputHead(nn.Module):
    """One sub-head per target; the outputs side by side, ``[B, sum of the heads' widths]``.

    Args:
        heads: ``{target: head}``, each with ``forward`` and ``loss``; their output widths are
            ``out_widths`` and their slices of the batch target ``target_widths`` (columns of a
            float ``[B, W]`` target; ``as_target[i]`` turns a slice back into what head ``i``'s loss takes).
        weights: the loss weight of each target; kinds: each target's task name.
    """

    def __init__(self, heads: dict[str, nn.Module], out_widths: list[int], target_widths: list[int],
                 as_target: list, weights: list[float], kinds: list[str]):
        super().__init__()
        self.heads = nn.ModuleDict(heads)
        self.names, self.kinds = list(heads), list(kinds)  # kinds: each target's task name
        self.out_widths, self.target_widths, self.as_target = out_widths, target_widths, as_target
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.heads[n](fused).reshape(len(fused), -1) for n in self.names], dim=1)

    def split(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{target: its head's output}`` (a regression head's ``[B]``, a classifier's ``[B, K]``)."""
        parts = torch.split(output, self.out_widths, dim=1)
        # a head that reads out values (regression) gives one number per row, [B]; the others [B, K]
        return {n: p.squeeze(1) if hasattr(self.heads[n], "values") else p for n, p in zip(self.names, parts)}

    def split_target(self, target: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(target, self.target_widths, dim=1)
        return {n: convert(p.squeeze(1) if w == 1 else p)
                for n, p, w, convert in zip(self.names, parts, self.target_widths, self.as_target)}

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        outputs, targets = self.split(output), self.split_target(target)
        losses = torch.stack([self.heads[n].loss(outputs[n], targets[n]) for n in self.names])
        return (losses * self.weights).sum() / self.weights.sum()
