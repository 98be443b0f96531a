"""Train-time audio perturbations on log-mel frames: speed (time stretch) and frequency warp.

Both act on the cached ``[T, F]`` log-mel item, so no waveform is decoded again per epoch.
Resampling a waveform by a factor ``a`` (speed perturbation) shortens it by ``1/a`` and
scales every frequency by ``a``; on a mel axis the frequency scaling is close to a shift of
the bins, which also imitates a longer or shorter vocal tract (VTLP). A gain change would
be a constant in the log domain, which per-utterance CMVN removes, so there is none here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["stretch_time", "warp_frequency", "perturb"]


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def stretch_time(features: torch.Tensor, factor: float) -> torch.Tensor:
    """``[T, F]`` → ``[round(T / factor), F]`` by linear interpolation (``factor > 1`` = faster)."""
    frames = max(1, round(features.shape[0] / factor))
    if frames == features.shape[0]:
        return features
    x = features.T.unsqueeze(0)  # [1, F, T]
    return F.interpolate(x, size=frames, mode="linear", align_corners=True)[0].T.contiguous()  # [T', F]


def warp_frequency(features: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale the mel axis: output bin ``f`` reads input bin ``f / factor`` (linear interpolation;
    bins past the top repeat the last one). ``[T, F]`` → ``[T, F]``."""
    bins = features.shape[1]
    if factor == 1.0 or bins < 2:
        return features
    source = (torch.arange(bins, dtype=torch.float32) / factor).clamp(0, bins - 1)  # [F]
    low = source.floor().long()  # [F]
    high = (low + 1).clamp(max=bins - 1)
    frac = (source - low.float()).to(features.dtype)  # [F]
    return features[:, low] * (1 - frac) + features[:, high] * frac  # [T, F]


def perturb(features: torch.Tensor, speed: float, warp: float, generator: torch.Generator) -> torch.Tensor:
    """Random time stretch by a factor in ``1 ± speed`` and frequency warp in ``1 ± warp``."""
    if speed > 0:
        features = stretch_time(features, _uniform(1 - speed, 1 + speed, generator))
    if warp > 0:
        features = warp_frequency(features, _uniform(1 - warp, 1 + warp, generator))
    return features
