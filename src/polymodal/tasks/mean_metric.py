"""One number for several labels' metrics: their mean (``val_score`` of a multi-output model).

Imported where a metric is made (torchmetrics costs seconds at import; see ``tasks.metrics``).
"""
from __future__ import annotations

from typing import Mapping

import torch
import torchmetrics
from torch import nn

__all__ = ["MeanOfMetrics"]


class MeanOfMetrics(torchmetrics.Metric):
    """The mean of several torchmetrics metrics, each higher-is-better (accuracy, F1, R²).

    ``update`` is not used: each part is updated on its own (``parts[name].update(...)``); the
    parts compute (and synchronise across processes) themselves, and reset with this metric.

    Args:
        parts: ``{label: metric}``.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, parts: Mapping[str, torchmetrics.Metric]) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(dict(parts))

    def update(self) -> None:  # the parts are updated one by one
        pass

    def compute(self) -> torch.Tensor:
        values = [part.compute().float() for part in self.parts.values()]
        return torch.stack(values).mean()

    def values(self) -> dict[str, float]:
        """Each part's value now, ``{label: value}``."""
        return {name: float(part.compute()) for name, part in self.parts.items()}

    def reset(self) -> None:
        super().reset()
        for part in self.parts.values():
            part.reset()
