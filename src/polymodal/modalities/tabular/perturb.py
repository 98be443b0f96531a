"""Tabular noise for the robustness report: Gaussian noise on the standardised numbers.

Missing numbers stay missing and categories are left as they are; an input with no numeric
column is refused (nothing to add noise to).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from polymodal.modalities.base import Noise, noise_generator

__all__ = ["NOISE"]


def _applies(pre: Any) -> str | None:
    if not pre.numeric:
        return "only categorical columns: the noise is on numbers"
    return None


def _perturb(pre: Any, items: list, level: float, seed: int, reload: Callable[[Any], list]) -> list:
    out = []
    for i, item in enumerate(items):
        if item is None or not len(item["numeric"]):
            out.append(item)
            continue
        noise = torch.randn(len(item["numeric"]), generator=noise_generator(seed, i, level)).numpy() * level  # [N]
        numeric = np.where(item["numeric_missing"] > 0, item["numeric"], item["numeric"] + noise)
        out.append({**item, "numeric": numeric.astype(np.float32)})
    return out


NOISE = Noise(meaning="Gaussian noise σ on standardised numbers", levels=(0.25, 0.5, 1.0, 2.0),
              perturb=_perturb, applies=_applies)
