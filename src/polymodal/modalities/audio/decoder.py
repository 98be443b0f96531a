"""Audio generation parts: a decoder ``z → log-mel frames``, a spectrally normalised critic, and
the writers that turn a decoded row into sound (a 16-bit WAV) or a picture (a spectrogram).

Decoded rows live in the space of ``AudioPreprocessor.collate`` with ``cmvn`` off: natural-log
mel power ``[T = max_frames, F = n_mels]``, padded frames at the silence level
``log(log_floor)``. ``write_audio`` inverts them with ``invert.mel_to_waveform``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from polymodal.modalities.audio.invert import mel_to_waveform
from polymodal.modalities.audio.preprocess import AudioPreprocessor

__all__ = ["AudioDecoder", "AudioCritic", "write_audio", "preview_audio", "check_audio"]

_START_FRAMES = 8  # the decoder's first sequence has at most this many frames


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 when they divide ``channels``, else the largest divisor below 8."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class AudioDecoder(nn.Module):
    """``z Float[B, in_dim]`` → log-mel ``Float[B, max_frames, n_mels]``.

    A 1-D decoder over time with the mel bins as channels: a linear layer makes a short
    sequence (at most 8 frames), blocks of nearest upsampling ×2 → conv1d (kernel 5) →
    GroupNorm → SiLU double it until it covers ``max_frames``, a linear resize makes it exactly
    ``max_frames`` long, and a final conv1d gives ``n_mels`` values per frame, with no
    activation (log-mel is unbounded).

    Attributes:
        silence: the log-mel level of padded frames in ``target``, ``log(1e-6)`` by default;
            set it to ``log(pre.options.log_floor)`` when the preprocessor uses another floor.

    Args:
        in_dim: width of the latent / conditioning vector ``z``.
        n_mels: F, mel bins per frame.
        max_frames: T, frames per row (as ``AudioPreprocessor.encoder_inputs()`` gives).
        width: half the number of channels of the hidden sequence.
    """

    def __init__(self, in_dim: int, *, n_mels: int, max_frames: int, width: int = 64) -> None:
        super().__init__()
        self.n_mels, self.max_frames = n_mels, max_frames
        self.silence = math.log(1e-6)
        doublings = max(0, math.ceil(math.log2(max_frames / _START_FRAMES)))
        self.start = math.ceil(max_frames / 2**doublings)  # T0 <= 8, T0 * 2^doublings >= T
        channels = 2 * width
        self.project = nn.Linear(in_dim, channels * self.start)
        self.stem = nn.Sequential(nn.GroupNorm(_groups(channels), channels), nn.SiLU())
        self.blocks = nn.Sequential(*[
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(channels, channels, 5, padding=2, bias=False),
                nn.GroupNorm(_groups(channels), channels),
                nn.SiLU(),
            )
            for _ in range(doublings)
        ])
        self.resize = self.start * 2**doublings != max_frames
        self.out = nn.Conv1d(channels, n_mels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        seq = self.project(z).view(z.shape[0], -1, self.start)  # [B, D, T0]
        seq = self.blocks(self.stem(seq))  # [B, D, T0 * 2^k]
        if self.resize:
            seq = F.interpolate(seq, size=self.max_frames, mode="linear", align_corners=False)  # [B, D, T]
        return self.out(seq).transpose(1, 2)  # [B, T, F]

    def target(self, collated: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The collated ``features [B, T, F]`` with padded frames (``mask`` False) set to ``silence``,
        so that the decoder learns that a clip ends in silence (rows absent altogether are
        all silence)."""
        features, mask = collated["features"], collated["mask"]  # [B, T, F], [B, T]
        silence = torch.full_like(features, self.silence)
        return torch.where(mask[:, :, None], features, silence)  # [B, T, F]

    @staticmethod
    def reconstruction(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-row sum of squared errors over T, F: ``Float[B]``.

        The per-row mean squared error times the elements per row, i.e. twice the negative
        log-likelihood of ``target`` under a unit-variance Gaussian centred on ``output``, up to
        a constant (a sum, to keep its scale right against a VAE's KL term).
        """
        return (output - target).pow(2).flatten(1).sum(dim=1)  # [B]


class AudioCritic(nn.Module):
    """A GAN discriminator body over the log-mel frames: ``Float[B, T, F]`` → ``Float[B, out_dim]``.

    A 1-D network over time with the mel bins as channels, as the decoder writes them:
    spectrally normalised conv1d blocks (kernel 4, stride 2) with LeakyReLU(0.2) halve the
    frames while at least 4 would remain (8 blocks at most), a kernel-3 conv1d follows, then
    the mean over time. Four blocks over 101 frames see about 0.8 s of a clip, enough for a
    spoken word, for far fewer multiply-adds than 2-D convolutions over the log-mel picture.
    No BatchNorm: each row is scored on its own.

    Args:
        n_mels: F.
        max_frames: T.
        width: half the channels of the first block; the next ones have twice as many, up to
            four times ``width``.
    """

    def __init__(self, *, n_mels: int, max_frames: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        frames, c_in, c_out = max_frames, n_mels, 2 * width
        while not layers or (frames // 2 >= 4 and len(layers) < 16):
            layers += [spectral_norm(nn.Conv1d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            frames, c_in, c_out = frames // 2, c_out, min(2 * c_out, 4 * width)
        layers += [spectral_norm(nn.Conv1d(c_in, c_in, 3, padding=1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.out_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.transpose(1, 2)).mean(dim=2)  # [B, T, F] → [B, F, T] → [B, out_dim, t] → [B, out_dim]


def _sounding_frames(row: torch.Tensor, silence: float, top_db: float) -> int:
    """How many leading frames to keep: up to the last one above the silence level.

    A frame is silent when its loudest mel bin is within 1 nat (4.3 dB) of ``silence`` or more
    than ``top_db`` below the row's loudest bin (the rule training clips were trimmed by).
    """
    level = row.amax(dim=1)  # [T]
    threshold = max(silence + 1.0, float(level.max()) - top_db * math.log(10) / 10)
    loud = torch.nonzero(level > threshold).squeeze(1)
    last = int(loud[-1]) + 1 if loud.numel() else 0
    return min(row.shape[0], max(2, last))


def write_audio(pre: AudioPreprocessor, row: torch.Tensor, stem: Path | str, *, seed: int = 0) -> Path:
    """Write one decoded row as ``stem + ".wav"`` (16-bit PCM, mono) and return its path.

    Trailing silent frames are dropped, the rest inverted (``mel_to_waveform``, with the
    preprocessor's STFT and mel settings) and peak-normalised to 0.9.

    Args:
        pre: the column's preprocessor (``cmvn`` off: see ``check_audio``).
        row: ``Float[T, F]`` natural-log mel power.
        stem: the file's path without the extension (its folder is created if missing).
        seed: seed of the inversion's initial phase.
    """
    o = pre.options
    features = row.detach().float().cpu()  # [T, F]
    features = features[: _sounding_frames(features, math.log(o.log_floor), o.top_db)]  # [T', F]
    wave = mel_to_waveform(
        features, sample_rate=o.sample_rate, n_fft=pre.n_fft, hop_length=pre.hop_length,
        win_length=pre.win_length, f_min=o.f_min, f_max=o.f_max, seed=seed,
    )  # [S]
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 0:
        wave = wave * (0.9 / peak)
    stem = Path(stem)
    path = stem.with_name(stem.name + ".wav")  # appended: a dot inside the stem stays
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, o.sample_rate, subtype="PCM_16")
    return path


def preview_audio(pre: AudioPreprocessor, row: torch.Tensor) -> np.ndarray:
    """A spectrogram picture of one decoded ``[T, F]`` row: ``uint8 [F, T]``, low bins at the
    bottom, 0..255 spanning the row's own range (a flat row is black)."""
    picture = row.detach().float().cpu().T.flip(0)  # [F, T], row 0 = highest mel bin
    low, high = float(picture.min()), float(picture.max())
    if high <= low:
        return np.zeros(tuple(picture.shape), dtype=np.uint8)
    scaled = ((picture - low) * (255.0 / (high - low))).round().clamp(0, 255)
    return scaled.to(torch.uint8).numpy()


def check_audio(pre: Any) -> str | None:
    """Why this audio input cannot be generated (None when it can)."""
    column = (getattr(pre, "columns", None) or [getattr(pre, "name", "?")])[0]
    if not isinstance(pre, AudioPreprocessor):
        backbone = getattr(pre, "backbone", None)
        named = f" ({backbone})" if backbone else ""
        return (f"audio column '{column}': a column with a pretrained backbone{named} cannot be "
                f"generated; remove audio.backbone (or column_overrides.{column}.backbone) for the "
                "generated column")
    if pre.options.cmvn:
        return (f"audio column '{column}': per-utterance normalisation (cmvn) discards the loudness "
                "a generated clip needs; set audio.preprocess.cmvn: false (or column_overrides."
                f"{column}.preprocess.cmvn: false for this column)")
    return None
