"""Text column with a pretrained backbone → the backbone tokenizer's ids.

Texts are cut to ``max_length`` tokens (default: the backbone's position limit); each
truncated text is flagged on its item, and ``training.feature_cache`` reports the count.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from polymodal.backbones import quiet_transformers, text_limit, tower_config
from polymodal.backbones.preprocessor import BackbonePreprocessor
from polymodal.modalities.text.decode import text_of
from polymodal.errors import ConfigError

__all__ = ["BackboneTextPreprocessor"]


class BackboneTextPreprocessor(BackbonePreprocessor):
    """One text column → ``input_ids Long[B, T]``, ``attention_mask Bool[B, T]`` (T <= max_length)."""

    modality = "text"
    feature_batch = 128
    sort_by_length = True
    token_mask = True

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        max_length: int | None = Field(None, ge=2, description="tokens kept; default: the backbone's limit")

    def length(self, item: Any) -> int:
        """Tokens of a loaded item (0 once its features are cached: nothing is padded then)."""
        return 0 if item is None or item.value is None else len(item.value)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The backbone inputs' axes that vary from batch to batch: T (``polymodal export``)."""
        return {"input_ids": {1: "tokens"}, "attention_mask": {1: "tokens"}}

    def _use_processor(self, folder: Path, fitting: bool) -> None:
        from tokenizers import Tokenizer
        from transformers import AutoTokenizer

        try:
            with quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"text input '{self.name}': backbone {self.backbone!r} has no usable "
                              f"tokenizer in {folder} ({exc}); use a model folder with tokenizer files") from None
        limit = text_limit(tower_config(folder, "text"), tokenizer)
        wanted = self.options.max_length
        if fitting and wanted is not None and wanted > limit:
            raise ConfigError(
                f"text input '{self.name}': preprocess.max_length={wanted} exceeds backbone "
                f"{self.backbone!r}'s limit of {limit} tokens; set max_length <= {limit} (longer "
                f"texts are truncated, and counted in the log)"
            )
        self.max_length_ = min(wanted or limit, limit)
        self._hf = tokenizer
        self._fast = None
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:  # a copy: the saved tokenizer keeps its own settings
            self._fast = Tokenizer.from_str(backend.to_str())
            self._fast.no_padding()
            self._fast.enable_truncation(self.max_length_)
        ids = [tokenizer.pad_token_id, tokenizer.eos_token_id, 0]
        self.pad_id_ = next(i for i in ids if i is not None)

    def dropout_ids(self) -> tuple[int | None, list[int]]:
        """``(id, special ids)``: what a dropped token becomes (the tokenizer's unknown token,
        else its mask token; None when it has neither), and the ids never dropped."""
        hf = self._hf
        unk = hf.unk_token_id if hf.unk_token_id is not None else hf.mask_token_id
        return unk, sorted(set(hf.all_special_ids))

    def _content(self, row: Mapping[str, Any], base_dir: Path) -> bytes | None:
        text = text_of(row.get(self.columns[0]))
        return None if text is None else text.encode("utf-8")

    def _decode(self, content: bytes) -> tuple[np.ndarray, bool]:
        text = content.decode("utf-8")
        if self._fast is not None:
            encoding = self._fast.encode(text)
            return np.asarray(encoding.ids, dtype=np.int32), bool(encoding.overflowing)
        limit = self.max_length_  # a tokenizer with no fast backend
        ids = self._hf.encode(text, add_special_tokens=True, truncation=True, max_length=limit + 1)
        if len(ids) <= limit:
            return np.asarray(ids, dtype=np.int32), False
        ids = self._hf.encode(text, add_special_tokens=True, truncation=True, max_length=limit)
        return np.asarray(ids, dtype=np.int32), True

    def _collate_values(self, values: list[np.ndarray | None]) -> dict[str, torch.Tensor]:
        """Pad right: ``input_ids Long[B, T]``, ``attention_mask Bool[B, T]`` (absent rows: no token)."""
        lengths = [0 if v is None else len(v) for v in values]
        input_ids = torch.full((len(values), max([1, *lengths])), self.pad_id_, dtype=torch.long)  # [B, T]
        attention_mask = torch.zeros(input_ids.shape, dtype=torch.bool)  # [B, T]
        for i, (value, n) in enumerate(zip(values, lengths)):
            if n:
                input_ids[i, :n] = torch.from_numpy(np.asarray(value, dtype=np.int64))
                attention_mask[i, :n] = True
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def _processor_state(self) -> Any:
        vocab = self._fast.to_str() if self._fast is not None else repr(sorted(self._hf.get_vocab().items()))
        return {"tokenizer_sha256": hashlib.sha256(vocab.encode()).hexdigest(), "max_length": self.max_length_}

    def _save_processor(self, directory: Path) -> None:
        self._hf.save_pretrained(str(directory))
