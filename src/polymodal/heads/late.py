"""A head per input for late fusion, combined into one output with the fusion's weights."""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from polymodal.heads.base import register_head

__all__ = ["LateHead"]


@register_head("late")
class LateHead(nn.Module):
    """One copy of a task head per input; the output is ``Σ_m w_m · head_m(part_m)``.

    For classification that is a weighted average of the per-input logits (a weighted
    product of their probabilities, renormalised); for regression, of the standardised
    values. Loss, probabilities and values are computed as by the template head (every copy
    has its settings), so training and prediction treat this like any other head.

    Args:
        template: a freshly built head (``ClassificationHead`` / ``RegressionHead``).
        names: the inputs, in sorted order.
    """

    def __init__(self, template: nn.Module, names: Sequence[str]):
        super().__init__()
        self.names = sorted(names)
        self.heads = nn.ModuleDict()
        for name in self.names:
            head = copy.deepcopy(template)
            for module in head.modules():  # each copy starts from its own random weights
                if module is not head and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            self.heads[name] = head

    @property
    def _first(self) -> nn.Module:
        # Every copy holds the same loss settings and buffers (class weights, target scale).
        return self.heads[self.names[0]]

    def forward(self, parts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """
        Args:
            parts: ``[B, M, D]`` one vector per input.
            weights: ``[B, M]`` rows summing to 1.

        Returns:
            ``[B, K]`` logits (classification) or ``[B]`` values (regression).
        """
        outs = torch.stack([self.heads[n](parts[:, m]) for m, n in enumerate(self.names)], dim=1)  # [B, M, ...]
        w = weights.to(outs.dtype).view(*weights.shape, *([1] * (outs.dim() - 2)))  # [B, M, 1...]
        return (w * outs).sum(dim=1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._first.loss(output, target)

    def probabilities(self, output: torch.Tensor) -> torch.Tensor:
        return self._first.probabilities(output)

    def values(self, output: torch.Tensor) -> torch.Tensor:
        return self._first.values(output)
