"""Log-mel spectrogram → waveform: mel inversion (non-negative least squares), then fast Griffin-Lim.

The inverse of ``features.log_mel`` (with ``cmvn`` off): the mel powers are mapped back to a
linear power spectrogram by non-negative least squares against the same Slaney filter bank,
and a phase is found for its magnitude by fast Griffin-Lim (Perraudin et al., 2013) with the
same STFT (hann window of ``win_length``, ``hop_length``, centred frames).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from polymodal.modalities.audio.features import _mel_filters

__all__ = ["mel_to_waveform"]

_NNLS_STEPS = 100  # multiplicative updates: mel error ~0.01 nat after 100 (0.1 from the pseudo-inverse alone)


def _mel_to_power(log_mel: torch.Tensor, filters: torch.Tensor, steps: int = _NNLS_STEPS) -> torch.Tensor:
    """Non-negative power spectrogram ``P [n_freq, T]`` with ``filters.T @ P ≈ exp(log_mel).T``.

    Starts from the clamped pseudo-inverse and refines it with the multiplicative updates of
    Lee & Seung, which keep ``P >= 0`` and decrease the squared mel error at every step.

    Args:
        log_mel: ``Float[T, F]`` natural-log mel powers.
        filters: ``Float[n_freq, F]`` mel filter bank.
        steps: number of multiplicative updates.
    """
    basis = filters.double()  # [n_freq, F]
    mel = log_mel.double().clamp(-60.0, 30.0).exp().T  # [F, T]; the clamp keeps exp finite
    power = (torch.linalg.pinv(basis.T) @ mel).clamp_min(0.0)  # [n_freq, T]
    power = power + 1e-10 * mel.mean()  # a zero never grows back under multiplicative updates
    numerator = basis @ mel  # [n_freq, T]
    for _ in range(steps):
        power = power * numerator / (basis @ (basis.T @ power) + 1e-30)  # [n_freq, T]
    return power.float()


def mel_to_waveform(
    log_mel: torch.Tensor | np.ndarray,
    *,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    win_length: int,
    f_min: float,
    f_max: float | None,
    n_iter: int = 48,
    seed: int = 0,
    momentum: float = 0.99,
) -> np.ndarray:
    """A waveform whose log-mel spectrogram is close to ``log_mel``.

    Deterministic for a given ``seed`` (the initial phase comes from a seeded generator).

    Args:
        log_mel: ``Float[T, F]`` natural log of mel power, as ``log_mel`` gives without cmvn.
        sample_rate, n_fft, hop_length, win_length, f_min, f_max: the settings the features
            were computed with (``f_max=None`` → Nyquist).
        n_iter: Griffin-Lim iterations.
        seed: seed of the initial random phase.
        momentum: fast Griffin-Lim momentum (0 → plain Griffin-Lim).

    Returns:
        ``float32 [(T - 1) * hop_length]`` samples, at the scale of the analysed waveform, so
        that ``log_mel`` of it gives ``T`` frames again.

    Raises:
        ValueError: ``log_mel`` is not ``[T, F]`` with ``T >= 2``.
    """
    features = torch.as_tensor(log_mel, dtype=torch.float32).detach().cpu()  # [T, F]
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"mel_to_waveform needs log-mel frames [T, F] with T >= 2, "
                         f"got {tuple(features.shape)}")
    frames, bins = features.shape
    f_max = sample_rate / 2 if f_max is None else f_max
    filters = _mel_filters(n_fft, bins, float(f_min), float(f_max), int(sample_rate))  # [n_freq, F]
    magnitude = _mel_to_power(features, filters).sqrt()  # [n_freq, T]
    window = torch.hann_window(win_length)
    length = (frames - 1) * hop_length
    stft = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window, center=True)
    generator = torch.Generator().manual_seed(seed)
    phase = torch.rand(magnitude.shape, generator=generator) * (2 * math.pi)  # [n_freq, T]
    angles = torch.polar(torch.ones_like(phase), phase)  # [n_freq, T] unit complex
    previous = torch.zeros_like(angles)
    step = momentum / (1 + momentum)
    for _ in range(n_iter):
        wave = torch.istft(magnitude * angles, length=length, **stft)  # [L]
        rebuilt = torch.stft(wave, pad_mode="constant", return_complex=True, **stft)  # [n_freq, T]
        angles = rebuilt - step * previous
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    wave = torch.istft(magnitude * angles, length=length, **stft)  # [L]
    return wave.numpy().astype(np.float32, copy=False)
