"""Audio column (file paths) → log-mel frames ``features Float[B, T, F]``, ``mask Bool[B, T]``.

``load`` decodes with soundfile, mixes to mono, resamples with soxr, trims leading and
trailing silence, keeps the first ``max_seconds``, normalises the level and computes a
log-mel spectrogram (``log_mel``) with per-utterance mean/variance normalisation. The
cached item holds only the real frames ``[T_real, F]``; ``collate`` pads to
``max_frames`` and marks real frames in ``mask``. ``augment`` is SpecAugment plus a
small circular time shift.
"""
from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from polymodal.modalities.audio.augment import perturb
from polymodal.preprocessing import BadInput, read_state, register_preprocessor, write_state
from polymodal.errors import ConfigError

__all__ = ["AudioPreprocessor", "log_mel", "frame_settings"]


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


def _source(value: Any, base_dir: Path) -> Path | io.BytesIO | None:
    """Where the audio is: a path (relative to ``base_dir``), raw bytes, or ``None``."""
    if isinstance(value, Mapping):  # Hugging Face datasets Audio feature: {bytes, path}
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return io.BytesIO(value) if value else None
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    path = Path(text)
    return path if path.is_absolute() else Path(base_dir) / path


# At most this many samples are decoded (all channels together) or produced by resampling
# (2**25: 128 MiB of float32, 11.6 minutes of 48 kHz mono), so a header that claims an
# enormous length, channel count or rate cannot exhaust memory.
_MAX_SAMPLES = 2**25
_RATES = (1_000, 1_000_000)  # sample rates (Hz) a file header may plausibly claim


def _read(source: Path | io.BytesIO, target_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode to ``(Float32[S] mono samples, sample_rate)``; longer files are cut at
    ``_MAX_SAMPLES`` (counted after resampling to ``target_rate``).

    Raises:
        BadInput: missing / empty file, unknown format, corrupt data, implausible header
            (sample rate, channels), no samples.
    """
    if isinstance(source, Path):
        try:
            if not source.exists():
                raise BadInput("file not found")
            if source.is_dir():
                raise BadInput("is a directory, not an audio file")
            if source.stat().st_size == 0:
                raise BadInput("zero-byte file")
        except OSError as exc:  # name too long, permission denied, I/O error, ...
            raise BadInput(f"cannot open the file: {exc.strerror or exc}") from None
    try:
        with sf.SoundFile(source) as fh:  # reads the header only
            rate, channels, frames = int(fh.samplerate), int(fh.channels), int(fh.frames)
            if not _RATES[0] <= rate <= _RATES[1]:
                raise BadInput(f"implausible sample rate {rate:,} Hz in the file header "
                               f"(expected {_RATES[0]:,} to {_RATES[1]:,})")
            if channels < 1:
                raise BadInput(f"implausible channel count {channels} in the file header")
            limit = max(1, min(_MAX_SAMPLES // channels,
                               int(_MAX_SAMPLES * rate / (target_rate or rate))))
            want = min(frames, limit) if frames > 0 else limit
            data = fh.read(frames=want, dtype="float32", always_2d=True)  # [S, channels]
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is bad file content
        reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        raise BadInput(f"cannot decode audio: {reason}") from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise BadInput("empty audio")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]  # [S]
    return np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0), int(rate)


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


@register_preprocessor("audio")
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
        try:
            self.options = self.Options(**options)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"audio input '{name}': invalid options: {problems}") from None
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
        source = _source(row.get(self.columns[0]), base_dir)
        if source is None:
            return None
        samples, rate = _read(source, self.options.sample_rate)
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
    def augment(self, item: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Speed and frequency-warp perturbation (``audio_augment``; off by default), then
        SpecAugment (time and mel-bin masks set to 0) and a circular time shift.

        Returns:
            ``Float32[T', n_mels]``: same shape as ``item`` unless ``speed_perturb`` is set.
        """
        o = self.options
        features = item.float().clone()  # [T, F]
        features = perturb(features, o.speed_perturb, o.freq_warp, generator)  # [T', F]
        if not o.spec_augment:
            return features
        frames, bins = features.shape

        def draw(high: int) -> int:  # uniform integer in [0, high]
            return int(torch.randint(0, max(high, 0) + 1, (1,), generator=generator))

        max_shift = int(o.time_shift * frames)
        if max_shift > 0:
            shift = draw(2 * max_shift) - max_shift
            features = torch.roll(features, shifts=shift, dims=0)
        for _ in range(o.time_masks):
            width = draw(int(o.time_mask_fraction * frames))
            start = draw(frames - width)
            features[start : start + width] = 0.0
        for _ in range(o.freq_masks):
            width = draw(min(o.freq_mask_bins, bins))
            start = draw(bins - width)
            features[:, start : start + width] = 0.0
        return features

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
