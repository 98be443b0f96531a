"""Audio noise for the robustness report: white noise added to the waveform at a signal-to-noise
ratio (dB), before the same deterministic front end as always (the plain preprocessor's
log-mel, or a backbone's feature extractor).

The table is decoded again through a noisy copy of the preprocessor. A backbone's copy
keeps no store: its items carry no key, so noisy features are computed, never cached.
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from polymodal.modalities.audio.backbone import BackboneAudioPreprocessor
from polymodal.modalities.base import Noise, noise_generator

__all__ = ["NOISE"]


def _with_noise(wave: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """``wave [S]`` plus white noise ``snr_db`` below its RMS."""
    rms = wave.pow(2).mean().sqrt()
    return wave + torch.randn(wave.shape, generator=generator) * (rms / 10 ** (snr_db / 20))


def _perturb(pre: Any, items: list, level: float, seed: int, reload: Callable[[Any], list]) -> list:
    if isinstance(pre, BackboneAudioPreprocessor):
        return reload(_noisy_backbone(pre, level, seed))
    return reload(_noisy_plain(pre, level, seed))


def _noisy_plain(pre: Any, snr_db: float, seed: int) -> Any:
    """A copy of the audio preprocessor whose waveform gets white noise at ``snr_db``.

    ``AudioPreprocessor.load`` reads the waveform through ``self.waveform``, so the copy
    computes its log-mel features from the noisy samples with the very same front end.
    """
    noisy = copy.copy(pre)
    column = pre.columns[0]

    def waveform(row: Mapping[str, Any], base_dir: Path) -> torch.Tensor | None:
        wave = pre.waveform(row, base_dir)  # [S]
        return None if wave is None else _with_noise(wave, snr_db, noise_generator(seed, str(row.get(column)), snr_db))

    noisy.waveform = waveform
    return noisy


def _noisy_backbone(pre: BackboneAudioPreprocessor, snr_db: float, seed: int) -> BackboneAudioPreprocessor:
    """A storeless copy whose clips get white noise at ``snr_db`` before the feature extractor
    (``_decode`` reads the clip through ``self.samples``); seeded by the file's content."""
    noisy = pre.without_store()

    def samples(content: bytes) -> Any:
        wave = torch.from_numpy(pre.samples(content))  # [S]
        key = hashlib.sha256(content).hexdigest()
        return _with_noise(wave, snr_db, noise_generator(seed, key, snr_db)).numpy()

    noisy.samples = samples
    return noisy


NOISE = Noise(meaning="white noise, SNR in dB", levels=(20.0, 10.0, 5.0, 0.0), perturb=_perturb)
