"""Decode one audio file with soundfile to mono float32 samples, with bounds on what a header may claim."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from polymodal.preprocessing import BadInput, OverLimit, check_file

__all__ = ["read_audio"]

# At most this many samples are decoded (all channels together) or produced by resampling
# (2**25: 128 MiB of float32, 11.6 minutes of 48 kHz mono), so a header that claims an
# enormous length, channel count or rate cannot exhaust memory.
_MAX_SAMPLES = 2**25
_RATES = (1_000, 1_000_000)  # sample rates (Hz) a file header may plausibly claim


def read_audio(source: Path | io.BytesIO, target_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode to ``(Float32[S] mono samples, sample_rate)``; longer files are cut at
    ``_MAX_SAMPLES`` (counted after resampling to ``target_rate``).

    Raises:
        BadInput: missing / empty file, unknown format, corrupt data, implausible header
            (sample rate, channels), no samples.
    """
    if isinstance(source, Path):
        check_file(source, "audio")
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


def check_audio_upload(blob: bytes, limits: Any) -> None:
    """An uploaded file's bytes must decode as a clip of at most ``limits.audio_seconds`` seconds.

    Raises:
        OverLimit: longer than the bound (from the header, then from the decoded samples).
        BadInput: not audio soundfile decodes.
    """
    try:
        info = sf.info(io.BytesIO(blob))
        seconds = info.frames / info.samplerate if info.samplerate > 0 else 0.0
    except Exception:  # noqa: BLE001 - undecodable content
        raise BadInput("the file is not audio this service can decode (WAV, FLAC, OGG, ...); "
                       "a browser recording must be converted to WAV") from None
    if seconds > limits.audio_seconds:
        raise OverLimit(f"the clip lasts {seconds:.1f} s, over the limit of {limits.audio_seconds:g} s")
    samples, rate = read_audio(io.BytesIO(blob))
    if len(samples) / rate > limits.audio_seconds:
        raise OverLimit(f"the clip lasts {len(samples) / rate:.1f} s, over the limit of {limits.audio_seconds:g} s")
