"""Log-mel features of a mono waveform: frame settings, the Slaney mel filter bank, the STFT."""
from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["log_mel", "frame_settings"]


def frame_settings(sample_rate: int) -> tuple[int, int, int]:
    """Default ``(n_fft, hop_length, win_length)``: 10 ms hop, 25 ms window.

    At 16 kHz this is ``(512, 160, 400)``; ``n_fft`` is the next power of two >= window.
    """
    hop, win = max(1, round(0.010 * sample_rate)), max(2, round(0.025 * sample_rate))
    return 1 << (win - 1).bit_length(), hop, win


@functools.lru_cache(maxsize=16)
def _mel_filters(
    n_fft: int, n_mels: int, f_min: float, f_max: float, sample_rate: int
) -> torch.Tensor:
    """Slaney mel filter bank ``Float[n_fft // 2 + 1, n_mels]`` (cached, read-only)."""
    from transformers.audio_utils import mel_filter_bank

    filters = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=f_min,
        max_frequency=f_max,
        sampling_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(filters.astype(np.float32))


@functools.lru_cache(maxsize=16)
def _hann(win_length: int) -> torch.Tensor:
    return torch.hann_window(win_length)


def log_mel(
    waveform: torch.Tensor,
    sample_rate: int,
    *,
    n_mels: int = 64,
    n_fft: int | None = None,
    hop_length: int | None = None,
    win_length: int | None = None,
    f_min: float = 20.0,
    f_max: float | None = None,
    log_floor: float = 1e-6,
) -> torch.Tensor:
    """Log-mel spectrogram of a mono waveform.

    Args:
        waveform: ``Float[S]`` samples in about -1..1.
        sample_rate: samples per second of ``waveform``.
        n_fft, hop_length, win_length: STFT settings; ``None`` → ``frame_settings``.
        f_min, f_max: mel band edges in Hz (``f_max=None`` → Nyquist).
        log_floor: power floor before the log.

    Returns:
        ``Float[T, n_mels]`` with ``T = 1 + S // hop_length`` (centred frames).
    """
    default_fft, default_hop, default_win = frame_settings(sample_rate)
    n_fft = n_fft or default_fft
    hop_length = hop_length or default_hop
    win_length = win_length or min(default_win, n_fft)
    f_max = sample_rate / 2 if f_max is None else f_max
    spectrum = torch.stft(
        waveform.float(),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=_hann(win_length),
        center=True,
        pad_mode="constant",  # works for clips shorter than n_fft / 2 too
        return_complex=True,
    )  # [n_fft // 2 + 1, T]
    power = spectrum.abs().pow(2)  # [n_freq, T]
    filters = _mel_filters(n_fft, n_mels, float(f_min), float(f_max), int(sample_rate))
    mel = filters.T @ power  # [n_mels, T]
    return mel.clamp_min(log_floor).log().T.contiguous()  # [T, n_mels]
