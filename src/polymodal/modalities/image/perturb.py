"""Image noise for the robustness report: Gaussian noise on the pixels, clipped to their range.

σ is a fraction of the 0–255 range, added to the model-size image: the plain preprocessor's
``[C, H, W]`` pixels, or a backbone's normalised ``pixel_values`` (σ and the clip range
mapped through its rescale and normalisation). Noisy backbone items carry no store key, so
their features are computed, never cached; a frozen cached column's images are decoded again
first (its loaded items hold only features).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from polymodal.backbones.feature_store import BackboneItem
from polymodal.modalities.base import Noise, noise_generator
from polymodal.modalities.image.backbone import BackboneImagePreprocessor

__all__ = ["NOISE"]


def _applies(pre: Any) -> str | None:
    if isinstance(pre, BackboneImagePreprocessor) and pre.pixel_scale() is None:
        return f"backbone {pre.backbone!r}: its image processor does not say how it normalises pixels"
    return None


def _perturb(pre: Any, items: list, level: float, seed: int, reload: Callable[[Any], list]) -> list:
    if isinstance(pre, BackboneImagePreprocessor):
        return _noisy_backbone_items(pre, items, level, seed, reload)
    out = []
    for i, item in enumerate(items):
        if item is None:
            out.append(None)
            continue
        pixels = torch.as_tensor(item).float()  # [C, H, W], 0..255
        noise = torch.randn(pixels.shape, generator=noise_generator(seed, i, level)) * (level * 255.0)
        out.append((pixels + noise).clamp(0, 255))
    return out


def _noisy_backbone_items(pre: BackboneImagePreprocessor, items: list, level: float, seed: int,
                          reload: Callable[[Any], list]) -> list:
    if any(item is not None and item.value is None for item in items):
        items = reload(pre.without_store())  # cached features only: decode the images again
    scale, offset = (t[:, None, None] for t in pre.pixel_scale())  # [3, 1, 1] each
    out = []
    for i, item in enumerate(items):
        if item is None:
            out.append(None)
            continue
        pixels = item.value.float()  # [3, H, W], normalised
        noise = torch.randn(pixels.shape, generator=noise_generator(seed, i, level)) * (level * 255.0 * scale)
        noisy = torch.clamp(pixels + noise, min=offset, max=255.0 * scale + offset)  # [3, H, W]
        out.append(BackboneItem(value=noisy.to(item.value.dtype), truncated=item.truncated))
    return out


NOISE = Noise(meaning="Gaussian pixel noise σ (fraction of 255)", levels=(0.05, 0.1, 0.2, 0.4),
              perturb=_perturb, applies=_applies)
