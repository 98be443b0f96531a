"""Text column → token ids: a tokenizer trained on the training texts, or a pretrained one.

``fit`` learns a vocabulary (WordPiece, BPE or word level) from the column's training
texts, the same one on every run (see ``vocabulary``), and tokenizes with a Hugging Face
``tokenizers`` tokenizer built from it; or it loads a pretrained tokenizer from a folder.
``load`` turns one cell into ``int32`` token ids ``[CLS] ... [SEP]`` truncated to
``max_length``; ``collate`` pads them into ``input_ids Long[B, T]`` and
``attention_mask Bool[B, T]``.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from polymodal.modalities.text.decode import text_of
from polymodal.modalities.text.vocabulary import learn_vocabulary
from polymodal.preprocessing import read_state, write_state
from polymodal.options import parse_options
from polymodal.errors import ConfigError, DataError, NotFittedError

__all__ = ["TextPreprocessor"]

_PAD, _UNK, _CLS, _SEP, _MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
_SPECIALS = [_PAD, _UNK, _CLS, _SEP, _MASK]  # ids 0..4 in every trained vocabulary


def _new_tokenizer(kind: str, lowercase: bool) -> Tokenizer:
    """An untrained tokenizer: normaliser, pre-tokeniser, model, [CLS] $A [SEP] template."""
    model = {
        "wordpiece": lambda: models.WordPiece(unk_token=_UNK),
        "bpe": lambda: models.BPE(unk_token=_UNK),
        "word": lambda: models.WordLevel(unk_token=_UNK),
    }[kind]()
    tokenizer = Tokenizer(model)
    if lowercase:
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]
        )
    else:
        tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()  # whitespace + punctuation
    if kind == "wordpiece":
        tokenizer.decoder = decoders.WordPiece()
    return tokenizer


class TextPreprocessor:
    """One text column → ``input_ids Long[B, T]``, ``attention_mask Bool[B, T]``.

    Attributes:
        truncated: how many texts ``load`` cut to ``max_length`` (set to 0 to reset).
    """

    modality: ClassVar[str] = "text"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        tokenizer: Literal["wordpiece", "bpe", "word"] = "wordpiece"
        vocab_size: int = Field(8000, ge=16)
        min_frequency: int = Field(2, ge=1)
        lowercase: bool = True
        max_length: int = Field(128, ge=2)
        pretrained: str | None = None  # local folder with a Hugging Face tokenizer
        token_dropout: float = Field(0.0, ge=0.0, lt=1.0)  # train-time: ids → [UNK]

    def __init__(self, name: str, columns: list[str], **options: Any) -> None:
        if len(columns) != 1:
            raise ConfigError(f"text input '{name}' reads one column, got {list(columns)}")
        self.options = parse_options(self.Options, options, f"text input '{name}'")
        self.name = name
        self.columns = list(columns)
        self.truncated = 0
        self._lock = threading.Lock()  # load() may run in several threads
        self._tokenizer: Tokenizer | None = None  # encodes; truncation set to max_length
        self._hf_tokenizer: Any = None  # the transformers tokenizer when pretrained
        self._pad_id = self._unk_id = 0
        self._special_ids = np.zeros(0, dtype=np.int32)

    # ------------------------------------------------------------------ fit / load
    def fit(self, frame: Any, base_dir: Path) -> "TextPreprocessor":
        """Train the tokenizer on the column's non-empty training texts (or load it).

        Raises:
            DataError: the column has no non-empty text to train on.
        """
        if self.options.pretrained is not None:
            self._use_pretrained(self.options.pretrained)
            return self
        column = self.columns[0]
        texts = [t for t in map(text_of, frame[column].tolist()) if t is not None]
        if not texts:
            raise DataError(
                f"column '{column}': no non-empty text in the training data to build a "
                "vocabulary from. Fill the column or drop it from the inputs."
            )
        o = self.options
        tokenizer = _new_tokenizer(o.tokenizer, o.lowercase)
        learn_vocabulary(
            tokenizer, texts, o.tokenizer, o.vocab_size, o.min_frequency, _SPECIALS, _UNK
        )
        self._use_trained(tokenizer)
        return self

    def _use_trained(self, tokenizer: Tokenizer) -> None:
        cls_id, sep_id = tokenizer.token_to_id(_CLS), tokenizer.token_to_id(_SEP)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{_CLS} $A {_SEP}", special_tokens=[(_CLS, cls_id), (_SEP, sep_id)]
        )
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.options.max_length)
        self._tokenizer = tokenizer
        self._pad_id = tokenizer.token_to_id(_PAD)
        self._unk_id = tokenizer.token_to_id(_UNK)
        self._special_ids = np.array([tokenizer.token_to_id(t) for t in _SPECIALS], dtype=np.int32)

    def _use_pretrained(self, folder: str | Path) -> None:
        from transformers import AutoTokenizer  # heavy import, only when asked for

        try:
            hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"text input '{self.name}': cannot load a pretrained tokenizer from "
                f"'{folder}' ({exc}). Give a local folder holding tokenizer.json or vocab files."
            ) from None
        self._hf_tokenizer = hf
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is not None:  # a copy, so the saved tokenizer keeps its own settings
            self._tokenizer = Tokenizer.from_str(backend.to_str())
            self._tokenizer.no_padding()
            self._tokenizer.enable_truncation(self.options.max_length)
        ids = [hf.pad_token_id, hf.eos_token_id, 0]
        self._pad_id = next(i for i in ids if i is not None)
        self._unk_id = hf.unk_token_id if hf.unk_token_id is not None else self._pad_id
        self._special_ids = np.array(sorted(set(hf.all_special_ids)), dtype=np.int32)

    def _check_fitted(self) -> None:
        if self._tokenizer is None and self._hf_tokenizer is None:
            raise NotFittedError(f"text input '{self.name}': call fit() before load()")

    def _encode(self, text: str) -> list[int]:
        """Token ids with special tokens, at most ``max_length``; counts truncations."""
        if self._tokenizer is not None:
            encoding = self._tokenizer.encode(text)
            if encoding.overflowing:
                self._count_truncated()
            return encoding.ids
        hf, limit = self._hf_tokenizer, self.options.max_length  # tokenizer without backend
        ids = hf.encode(text, add_special_tokens=True, truncation=True, max_length=limit + 1)
        if len(ids) > limit:
            self._count_truncated()
            ids = hf.encode(text, add_special_tokens=True, truncation=True, max_length=limit)
        return ids

    def _count_truncated(self) -> None:
        with self._lock:
            self.truncated += 1

    def load(self, row: Mapping[str, Any], base_dir: Path) -> np.ndarray | None:
        """Token ids ``Int32[T]`` (1 <= T <= max_length) of one row, or ``None`` if empty."""
        self._check_fitted()
        text = text_of(row.get(self.columns[0]))
        if text is None:
            return None
        ids = self._encode(text)
        return np.asarray(ids, dtype=np.int32) if ids else None

    # ------------------------------------------------------------------ train / batch
    def augment(self, item: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """Replace each non-special token by [UNK] with probability ``token_dropout``."""
        p = self.options.token_dropout
        if p == 0.0:
            return item
        ids = torch.from_numpy(np.asarray(item, dtype=np.int32)).long()  # [T]
        drop = torch.rand(ids.shape, generator=generator) < p
        drop &= ~torch.isin(ids, torch.from_numpy(self._special_ids).long())
        return ids.masked_fill(drop, self._unk_id).numpy().astype(np.int32)

    def length(self, item: np.ndarray | None) -> int:
        """Tokens of a loaded item (``training.group_by_length`` batches similar lengths)."""
        return 0 if item is None else len(item)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The batch tensors' axes that vary from batch to batch: T (``polymodal export``)."""
        return {"input_ids": {1: "tokens"}, "attention_mask": {1: "tokens"}}

    def collate(self, items: list[np.ndarray | None]) -> dict[str, torch.Tensor]:
        """Pad to the longest item: ``input_ids Long[B, T]``, ``attention_mask Bool[B, T]``.

        Absent rows hold pad ids with an all-False mask; T >= 1 even if all are absent.
        """
        lengths = [0 if item is None else len(item) for item in items]
        width = max([1, *lengths])
        input_ids = torch.full((len(items), width), self._pad_id, dtype=torch.long)  # [B, T]
        attention_mask = torch.zeros((len(items), width), dtype=torch.bool)  # [B, T]
        for i, (item, n) in enumerate(zip(items, lengths)):
            if n:
                input_ids[i, :n] = torch.as_tensor(np.asarray(item), dtype=torch.long)
                attention_mask[i, :n] = True
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def encoder_inputs(self) -> dict[str, Any]:
        self._check_fitted()
        if self._hf_tokenizer is not None:
            vocab_size = len(self._hf_tokenizer)
        else:
            vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        return {
            "vocab_size": vocab_size,
            "pad_id": self._pad_id,
            "max_length": self.options.max_length,
            "pretrained": self.options.pretrained,
        }

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write ``state.json`` and ``tokenizer.json`` (or a ``tokenizer/`` folder)."""
        self._check_fitted()
        directory = Path(directory)
        write_state(
            directory,
            {
                "modality": self.modality,
                "name": self.name,
                "columns": self.columns,
                "options": self.options.model_dump(),
            },
        )
        if self._hf_tokenizer is not None:
            self._hf_tokenizer.save_pretrained(str(directory / "tokenizer"))
        else:
            self._tokenizer.save(str(directory / "tokenizer.json"))

    @classmethod
    def load_from(cls, directory: Path) -> "TextPreprocessor":
        """Rebuild the fitted preprocessor from ``save``'s files (offline)."""
        directory = Path(directory)
        state = read_state(directory)
        self = cls(state["name"], state["columns"], **state["options"])
        if self.options.pretrained is not None:
            self._use_pretrained(directory / "tokenizer")
        else:
            self._use_trained(Tokenizer.from_file(str(directory / "tokenizer.json")))
        return self
