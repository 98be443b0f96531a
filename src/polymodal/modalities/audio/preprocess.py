"""Audio column (file paths) → log-mel frames ``features Float[B, T, F]``, ``mask Bool[B, T]``.

``load`` decodes with soundfile, mixes to mono, resamples with soxr, trims leading and
trailing silence, keeps the first ``max_seconds``, normalises the level and computes a
log-mel spectrogram (``log_mel``) with per-utterance mean/variance normalisation. The
cached item holds only the real frames ``[T_real, F]``; ``collate`` pads to
``max_frames`` and marks real frames in ``mask``. ``augment`` is SpecAugment plus a
small circular time shift.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
import soxr
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from polymodal.modalities.audio.augment import perturb
from polymodal.modalities.audio.decode import read_audio
from polymodal.modalities.audio.features import frame_settings, log_mel
from polymodal.preprocessing import BadInput, file_source, read_state, write_state
from polymodal.options import parse_options
from polymodal.errors import ConfigError

__all__ = ["AudioPreprocessor"]


def _trim_silence(samples: torch.Tensor, top_db: float, frame: int, hop: int) -> torch.Tensor:
    """Drop leading / trailing frames whose RMS is ``top_db`` below the loudest frame."""
    if samples.numel() <= frame:
        return samples
    frames = samples.unfold(0, frame, hop)  # [n_frames, frame]
    rms = frames.pow(2).mean(dim=1).sqrt()  # [n_frames]
    peak = rms.max()
    if peak <= 0:
        return samples  # digital silence: nothing to measure against
    loud = torch.nonzero(rms >= peak * 10 ** (-top_db / 20)).squeeze(1)
    start, end = int(loud[0]) * hop, int(loud[-1]) * hop + frame
    return samples[start:end]


class AudioPreprocessor:
    """One audio-path column → ``features Float[B, max_frames, n_mels]``, ``mask Bool[B, T]``."""

    modality: ClassVar[str] = "audio"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        sample_rate: int = Field(16000, ge=1000, le=384000)
        max_seconds: float = Field(2.0, gt=0.0, le=600.0)  # keep the first max_seconds
        trim_silence: bool = True
        top_db: float = Field(40.0, gt=0.0)  # silence: frame RMS this far below the peak
        normalize: Literal["peak", "rms", "none"] = "peak"
        n_mels: int = Field(64, ge=1, le=512)
        n_fft: int | None = Field(None, ge=8)  # None: frame_settings(sample_rate)
        hop_length: int | None = Field(None, ge=1)
        win_length: int | None = Field(None, ge=2)
        f_min: float = Field(20.0, ge=0.0)
        f_max: float | None = None  # None: sample_rate / 2
        log_floor: float = Field(1e-6, gt=0.0)
        cmvn: bool = True  # per utterance: each mel bin to zero mean, unit variance
        store_float16: bool = True  # cached items in float16 (half the memory)
        spec_augment: bool = True
        time_masks: int = Field(2, ge=0)
        time_mask_fraction: float = Field(0.1, ge=0.0, le=1.0)  # of the item's frames
        freq_masks: int = Field(2, ge=0)
        freq_mask_bins: int = Field(8, ge=0)
        time_shift: float = Field(0.1, ge=0.0, le=1.0)  # circular roll, fraction of frames
        speed_perturb: float = Field(0.0, ge=0.0, lt=1.0)  # time stretch by 1 ± this (audio_augment)
        freq_warp: float = Field(0.0, ge=0.0, lt=1.0)  # mel-axis warp by 1 ± this (audio_augment)

        @model_validator(mode="after")
        def _consistent(self) -> "AudioPreprocessor.Options":
            n_fft, _, win = self.frames()
            if win > n_fft:
                raise ValueError(f"win_length ({win}) must be <= n_fft ({n_fft})")
            nyquist = self.sample_rate / 2
            f_max = nyquist if self.f_max is None else self.f_max
            if not self.f_min < f_max <= nyquist:
                raise ValueError(f"need f_min < f_max <= sample_rate / 2, got {self.f_min}, {f_max}")
            return self

        def frames(self) -> tuple[int, int, int]:
            """Effective ``(n_fft, hop_length, win_length)``."""
            n_fft, hop, win = frame_settings(self.sample_rate)
            n_fft = self.n_fft or n_fft
            return n_fft, self.hop_length or hop, self.win_length or min(win, n_fft)

    def __init__(self, name: str, columns: list[str], **options: Any) -> None:
        if len(columns) != 1:
            raise ConfigError(f"audio input '{name}' reads one column, got {list(columns)}")
        self.options = parse_options(self.Options, options, f"audio input '{name}'")
        self.name = name
        self.columns = list(columns)
        o = self.options
        self.n_fft, self.hop_length, self.win_length = o.frames()
        self.max_samples = round(o.max_seconds * o.sample_rate)
        self.max_frames = 1 + self.max_samples // self.hop_length

    # ------------------------------------------------------------------ fit / load
    def fit(self, frame: Any, base_dir: Path) -> "AudioPreprocessor":
        """Nothing is learned from data (normalisation is per utterance); returns self."""
        return self

    def waveform(self, row: Mapping[str, Any], base_dir: Path) -> torch.Tensor | None:
        """The row's processed mono waveform ``Float[S]`` (S <= max_samples), or ``None``."""
        source = file_source(row.get(self.columns[0]), base_dir)
        if source is None:
            return None
        samples, rate = read_audio(source, self.options.sample_rate)
        o = self.options
        if rate != o.sample_rate:
            samples = soxr.resample(samples, rate, o.sample_rate)  # [S']
        wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))  # [S]
        if wave.numel() == 0:
            raise BadInput("empty audio")
        if o.trim_silence:
            wave = _trim_silence(wave, o.top_db, self.win_length, self.hop_length)
        wave = wave[: self.max_samples]
        if o.normalize == "peak":
            peak = wave.abs().max()
            wave = wave / peak if peak > 0 else wave
        elif o.normalize == "rms":
            rms = wave.pow(2).mean().sqrt()
            wave = wave * (0.1 / rms) if rms > 0 else wave  # -20 dBFS
        return wave

    def load(self, row: Mapping[str, Any], base_dir: Path) -> torch.Tensor | None:
        """Log-mel frames ``[T_real, n_mels]`` (1 <= T_real <= max_frames), or ``None``.

        Raises:
            BadInput: missing, empty or undecodable file.
        """
        wave = self.waveform(row, base_dir)
        if wave is None:
            return None
        o = self.options
        features = log_mel(
            wave,
            o.sample_rate,
            n_mels=o.n_mels,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            f_min=o.f_min,
            f_max=o.f_max,
            log_floor=o.log_floor,
        )  # [T, F]
        if o.cmvn:
            mean = features.mean(dim=0, keepdim=True)  # [1, F]
            std = features.std(dim=0, unbiased=False, keepdim=True)  # [1, F]
            features = (features - mean) / (std + 1e-5)
        features = features[: self.max_frames]
        return features.half() if o.store_float16 else features

    # ------------------------------------------------------------------ train / batch
    def _spec_draws(self, frames: int, bins: int,
                    generator: torch.Generator) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """SpecAugment's draws for a ``frames``-long item: the circular time shift and the
        ``(start, width)`` of each time and mel-bin mask."""
        o = self.options
        u = iter(torch.rand(1 + 2 * (o.time_masks + o.freq_masks), generator=generator).tolist())

        def draw(high: int) -> int:  # uniform integer in [0, high]
            high = max(high, 0)
            return min(int(next(u) * (high + 1)), high)

        max_shift = int(o.time_shift * frames)
        shift = draw(2 * max_shift) - max_shift
        spans = []
        for _ in range(o.time_masks):
            width = draw(int(o.time_mask_fraction * frames))
            spans.append((draw(frames - width), width))
        bands = []
        for _ in range(o.freq_masks):
            width = draw(min(o.freq_mask_bins, bins))
            bands.append((draw(bins - width), width))
        return shift, spans, bands

    def augment(self, item: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Speed and frequency-warp perturbation (``audio_augment``; off by default), then
        SpecAugment (time and mel-bin masks set to 0) and a circular time shift. Training
        batches take ``augment_batch`` instead: the same draws, applied to the whole batch.

        Returns:
            ``Float32[T', n_mels]``: same shape as ``item`` unless ``speed_perturb`` is set.
        """
        o = self.options
        features = item.float().clone()  # [T, F]
        features = perturb(features, o.speed_perturb, o.freq_warp, generator)  # [T', F]
        if not o.spec_augment:
            return features
        shift, spans, bands = self._spec_draws(*features.shape, generator)
        if shift:
            features = torch.roll(features, shifts=shift, dims=0)
        for start, width in spans:
            features[start : start + width] = 0.0
        for start, width in bands:
            features[:, start : start + width] = 0.0
        return features

    def augment_batch(self, batch: dict[str, torch.Tensor],
                      generators: list[torch.Generator | None]) -> dict[str, torch.Tensor]:
        """``augment`` on a collated batch: row ``i`` with the draws of ``generators[i]``
        (None: the row as it is); the shift wraps within each row's own frames."""
        o = self.options
        rows = [i for i, g in enumerate(generators) if g is not None]
        if not rows or not (o.spec_augment or o.speed_perturb or o.freq_warp):
            return batch
        features, mask = batch["features"].clone(), batch["mask"].clone()  # [B, T, F], [B, T]
        frames, bins = features.shape[1], features.shape[2]
        lengths = mask.sum(dim=1)  # [B]
        if o.speed_perturb or o.freq_warp:  # lengths change (and the draws with them): row by row
            for i in rows:
                moved = self.augment(features[i, : int(lengths[i])], generators[i])
                n = min(moved.shape[0], frames)
                features[i], mask[i] = 0.0, False
                features[i, :n], mask[i, :n] = moved[:n], True
            return {**batch, "features": features, "mask": mask}
        draws = [self._spec_draws(int(lengths[i]), bins, generators[i]) for i in rows]
        index = torch.tensor(rows)
        t = torch.arange(frames)[None, :]  # [1, T]
        n = lengths[index].clamp_min(1)[:, None]  # [R, 1]
        shift = torch.tensor([d[0] for d in draws])[:, None]  # [R, 1]
        source = torch.where(t < n, (t - shift) % n, t)  # [R, T]: torch.roll within the row
        part = features[index].gather(1, source[:, :, None].expand(-1, -1, bins))  # [R, T, F]
        f = torch.arange(bins)[None, :]  # [1, F]
        hidden_t = torch.zeros((len(rows), frames), dtype=torch.bool)
        hidden_f = torch.zeros((len(rows), bins), dtype=torch.bool)
        for k in range(o.time_masks):
            start, width = (torch.tensor([d[1][k][j] for d in draws])[:, None] for j in (0, 1))
            hidden_t |= (t >= start) & (t < start + width)
        for k in range(o.freq_masks):
            start, width = (torch.tensor([d[2][k][j] for d in draws])[:, None] for j in (0, 1))
            hidden_f |= (f >= start) & (f < start + width)
        part = part.masked_fill(hidden_t[:, :, None] | hidden_f[:, None, :], 0.0)
        features[index] = part
        return {**batch, "features": features, "mask": mask}

    def collate(self, items: list[torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """Pad to ``max_frames``: ``features Float[B, T, F]`` (0 = pad), ``mask Bool[B, T]``."""
        batch, frames = len(items), self.max_frames
        features = torch.zeros((batch, frames, self.options.n_mels))  # [B, T, F]
        mask = torch.zeros((batch, frames), dtype=torch.bool)  # [B, T]
        for i, item in enumerate(items):
            if item is None:
                continue
            n = min(item.shape[0], frames)
            features[i, :n] = torch.as_tensor(item[:n]).float()
            mask[i, :n] = True
        return {"features": features, "mask": mask}

    def encoder_inputs(self) -> dict[str, Any]:
        return {"n_mels": self.options.n_mels, "max_frames": self.max_frames}

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write ``state.json`` (the options; nothing else is learned)."""
        write_state(
            Path(directory),
            {
                "modality": self.modality,
                "name": self.name,
                "columns": self.columns,
                "options": self.options.model_dump(),
            },
        )

    @classmethod
    def load_from(cls, directory: Path) -> "AudioPreprocessor":
        """Rebuild the preprocessor from ``save``'s ``state.json``."""
        state = read_state(Path(directory))
        return cls(state["name"], state["columns"], **state["options"])
