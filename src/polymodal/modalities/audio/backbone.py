"""Audio column with a pretrained backbone → its feature extractor's input.

Files are decoded (any soundfile format, mixed to mono), resampled to the backbone's rate
and cut to ``max_seconds``; the backbone's feature extractor then gives raw normalised
samples (Wav2Vec2, HuBERT: ``input_values [S]``), a fixed-size filterbank (AST:
``input_values [T, F]``) or a log-mel (Whisper: ``input_features [F, T]``). ``lengths``
counts each clip's real positions along the model input's time axis.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import soxr
import torch
from pydantic import BaseModel, ConfigDict, Field

from polymodal.backbones import quiet_transformers
from polymodal.backbones.collate import padded_stack
from polymodal.backbones.preprocessor import (
    BackbonePreprocessor,
    file_bytes,
    override_note,
)
from polymodal.errors import ConfigError
from polymodal.modalities.audio.decode import read_audio
from polymodal.preprocessing import file_source

__all__ = ["BackboneAudioPreprocessor"]


class BackboneAudioPreprocessor(BackbonePreprocessor):
    """One audio-path column → the backbone's input tensor ``[B, ...]`` and ``lengths Long[B]``."""

    modality = "audio"
    feature_batch = 16

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        sample_rate: int | None = Field(None, ge=1000, le=384000, description="override the backbone's rate")
        max_seconds: float = Field(10.0, gt=0.0, le=600.0)  # keep the first max_seconds

    def _use_processor(self, folder: Path, fitting: bool) -> None:
        from transformers import AutoFeatureExtractor

        try:
            with quiet_transformers():
                extractor = AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"audio input '{self.name}': backbone {self.backbone!r} has no usable "
                              f"feature extractor in {folder} ({exc}); use a model folder with "
                              f"preprocessor_config.json") from None
        self._use_extractor(extractor)
        wanted = self.options.sample_rate
        if fitting and wanted is not None and wanted != extractor.sampling_rate:
            own, shape = extractor.sampling_rate, self.empty_shape_
            override_note(self.columns[0], "sample_rate", wanted, own, self.backbone)
            state = {k: v for k, v in extractor.to_dict().items()
                     if k not in ("feature_extractor_type", "processor_class")}
            self._use_extractor(type(extractor)(**{**state, "sampling_rate": wanted}))  # new mel filters
            if len(shape) > 1 and self.empty_shape_ != shape:
                raise ConfigError(
                    f"audio input '{self.name}': backbone {self.backbone!r} takes a fixed-size input "
                    f"made from {own} Hz audio, which preprocess.sample_rate={wanted} would change; "
                    f"remove sample_rate (clips are resampled to {own} Hz)"
                )

    def _use_extractor(self, extractor: Any) -> None:
        self._extractor = extractor
        self.input_name_ = extractor.model_input_names[0]  # input_values | input_features
        self.rate_ = int(extractor.sampling_rate)
        seconds = self.options.max_seconds
        chunk = getattr(extractor, "n_samples", None)  # Whisper pads / cuts to a fixed window
        self.max_samples_ = min(round(seconds * self.rate_), chunk or math.inf)
        self.empty_shape_ = tuple(self._features(np.zeros(self.rate_ // 10, np.float32))[0].shape)

    def _features(self, samples: np.ndarray) -> tuple[torch.Tensor, int]:
        """The extractor's input for one clip, and its real length along the time axis."""
        out = self._extractor([samples], sampling_rate=self.rate_, return_tensors="np")
        value = torch.from_numpy(np.asarray(out[self.input_name_][0], dtype=np.float32))
        if value.dim() == 1:  # raw samples [S]
            return value, value.shape[0]
        hop = getattr(self._extractor, "hop_length", None)
        if self.input_name_ == "input_features" and hop:  # [F, T] log-mel padded to a window
            return value, min(value.shape[1], max(1, len(samples) // hop))
        return value, value.shape[0]  # [T, F], fixed length (AST): every frame counts

    def _content(self, row: Mapping[str, Any], base_dir: Path) -> bytes | None:
        source = file_source(row.get(self.columns[0]), base_dir)
        return None if source is None else file_bytes(source)

    def samples(self, content: bytes) -> np.ndarray:
        """One clip's mono waveform ``Float32[S]`` at the backbone's rate, cut to ``max_seconds``
        (what the feature extractor reads; a noisy copy may add to it)."""
        samples, rate = read_audio(io.BytesIO(content))  # [S] mono
        if rate != self.rate_:
            samples = soxr.resample(samples, rate, self.rate_)  # [S']
        return np.ascontiguousarray(samples[: self.max_samples_], dtype=np.float32)

    def _decode(self, content: bytes) -> tuple[tuple[torch.Tensor, int], bool]:
        value, length = self._features(self.samples(content))
        return (value.to(torch.float16), length), False

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The backbone inputs' axes that vary from batch to batch (``polymodal export``): the
        samples of raw waveforms (padded to the longest clip); log-mel inputs have a fixed size."""
        if len(self.empty_shape_) > 1:
            return {}
        return {self.input_name_: {1: "samples"}, "attention_mask": {1: "samples"}}

    def _collate_values(self, values: list[tuple[torch.Tensor, int] | None]) -> dict[str, torch.Tensor]:
        """``{input name}: Float[B, ...]`` zero-padded, ``lengths Long[B]`` (+ ``attention_mask``)."""
        tensors = [None if v is None else v[0] for v in values]
        stacked, _ = padded_stack(tensors, self.empty_shape_)  # [B, S] | [B, T, F] | [B, F, T]
        lengths = torch.tensor([0 if v is None else v[1] for v in values], dtype=torch.long)  # [B]
        batch = {self.input_name_: stacked, "lengths": lengths}
        if stacked.dim() == 2 and getattr(self._extractor, "return_attention_mask", False):
            positions = torch.arange(stacked.shape[1])
            batch["attention_mask"] = (positions[None, :] < lengths[:, None]).long()  # [B, S]
        return batch

    def _processor_state(self) -> Any:
        state = self._extractor.to_dict()
        state.pop("mel_filters", None)  # derived from the rest, and large
        return {**state, "max_samples": self.max_samples_}

    def _save_processor(self, directory: Path) -> None:
        self._extractor.save_pretrained(str(directory))
