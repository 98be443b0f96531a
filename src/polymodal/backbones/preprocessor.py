"""Preprocessors for a column with a pretrained ``backbone:``: the backbone's own processor.

Text uses the backbone's tokenizer (truncated to its position limit, truncations counted),
images its image processor (Pillow backend: resize, crop, normalise as in pretraining),
audio its feature extractor (resampled to its rate). ``fit`` resolves the backbone
(alias, folder or hub id) and checks its modality; ``save`` writes the processor files and
the backbone's config next to the fitted state, so a model directory rebuilds offline.

Items are ``BackboneItem``s. For a frozen encoder with a feature cache, ``load`` hashes
the input's content (text or file bytes) and, when the store has that input's features,
returns them without decoding anything; ``training.feature_cache`` computes the rest.
``collate`` then gives ``cached_pooled [B, D]``, ``cached_mask [B, T]`` (+ ``cached_tokens
[B, T, D]``) that the encoder passes through; otherwise the backbone's own
inputs (``input_ids``/``attention_mask``, ``pixel_values``, ``input_values`` or
``input_features`` + ``lengths``).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from pydantic import BaseModel, ConfigDict

from polymodal.backbones import load_tower, resolve_backbone, save_tower_config, save_tower_weights, weights_fingerprint
from polymodal.backbones.collate import collate_features
from polymodal.backbones.towers import WEIGHTS
from polymodal.preprocessing import BadInput, read_state, write_state
from polymodal.backbones.feature_store import BackboneItem, FeatureStore, content_key, default_cache_dir
from polymodal.options import parse_options
from polymodal.errors import ConfigError, NotFittedError

__all__ = ["BackbonePreprocessor", "override_note", "file_bytes"]

log = logging.getLogger("polymodal")

_FORMAT = 1  # bump when what is cached (or how) changes: old entries are then never read


class BackbonePreprocessor:
    """Shared part of the text / image / audio backbone preprocessors (one column each).

    Args:
        backbone: alias, local folder or hub id (``backbone:`` in the config).
        cache: ``"tokens"`` / ``"pooled"`` to read and fill the feature store (frozen
            encoders), ``"off"`` not to.
        cache_dir: the store's folder (None: ``$POLYMODAL_CACHE`` or ``~/.cache/polymodal/features``).
        precision: ``"bf16"`` or ``"32"``, the precision features are computed in.
        pooling: the encoder's pooling (part of what a cached feature means).
        **options: this modality's ``Options`` (``preprocess:`` in the config).
    """

    modality: ClassVar[str]
    # How the feature cache runs the backbone: inputs per batch, and whether to batch inputs
    # of similar length together (less padding, for sequences such as text).
    feature_batch: ClassVar[int] = 32
    sort_by_length: ClassVar[bool] = False
    # The batch's attention_mask marks the backbone's output positions one to one (text tokens).
    token_mask: ClassVar[bool] = False

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, name: str, columns: list[str], *, backbone: str, cache: str = "off",
                 cache_dir: str | None = None, precision: str = "32", pooling: str = "mean",
                 **options: Any) -> None:
        if len(columns) != 1:
            raise ConfigError(f"{self.modality} input '{name}' reads one column, got {list(columns)}")
        self.options = parse_options(self.Options, options, f"{self.modality} input '{name}' (backbone {backbone!r}) preprocess")
        self.name, self.columns = name, list(columns)
        self.backbone, self.cache, self.pooling, self.precision = backbone, cache, pooling, precision
        self.cache_dir = cache_dir
        self.folder_: Path | None = None  # the backbone's files: its source, or a saved copy
        self.family_ = "hf"
        self.saved_ = False  # rebuilt from a model directory (weights: model.safetensors or tower.safetensors)
        self.fingerprint_: str | None = None  # sha256 of the source's weight files (cached encoders)
        self.weights_digest_: str | None = None  # sampled digest of the frozen weights in memory
        self.source_: str | None = None  # the resolved source folder
        self._store: FeatureStore | None = None

    # ------------------------------------------------------------------ subclass hooks
    def _use_processor(self, folder: Path, fitting: bool) -> None:
        raise NotImplementedError

    def _content(self, row: Mapping[str, Any], base_dir: Path) -> bytes | None:
        raise NotImplementedError

    def _decode(self, content: bytes) -> tuple[Any, bool]:
        """``(model input, truncated)`` of one input's content; raises ``BadInput``."""
        raise NotImplementedError

    def _collate_values(self, values: list[Any | None]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _processor_state(self) -> Any:
        """JSON-able description of the preprocessing (part of the cache identity)."""
        raise NotImplementedError

    def _save_processor(self, directory: Path) -> None:
        raise NotImplementedError

    def _augment(self, value: Any, generator: torch.Generator) -> Any:
        return value

    # ------------------------------------------------------------------ fit / load
    def fit(self, frame: Any, base_dir: Path) -> "BackbonePreprocessor":
        """Resolve the backbone, check its modality, load its processor.

        Raises:
            ConfigError: the backbone cannot be found or encodes another modality.
        """
        source = resolve_backbone(self.backbone, self.modality, self.columns[0])
        self.folder_, self.family_, self.source_ = source.folder, source.family, str(source.folder)
        self._use_processor(source.folder, fitting=True)
        if self.cache != "off":
            self.fingerprint_ = weights_fingerprint(source.folder)
        self._open_store()
        return self

    def _open_store(self) -> None:
        if self.cache == "off" or self.fingerprint_ is None:
            self._store = None
            return
        # What a stored feature depends on; the backbone's name does not count (the weights do).
        meaning = {"format": _FORMAT, "modality": self.modality, "weights_sha256": self.fingerprint_,
                   "preprocessing": self._processor_state(), "options": self.options.model_dump(),
                   "pooling": self.pooling, "stored": self.cache, "precision": self.precision}
        identity = hashlib.sha256(json.dumps(meaning, sort_keys=True, default=str).encode()).hexdigest()
        self._store = FeatureStore(default_cache_dir(self.cache_dir), identity,
                                   {"backbone": self.backbone, **meaning})

    def configure(self, *, cache: str, cache_dir: str | None, precision: str) -> None:
        """Runtime settings of a preprocessor rebuilt from a model directory."""
        self.cache, self.cache_dir, self.precision = cache, cache_dir, precision
        self._open_store()

    @property
    def store(self) -> FeatureStore | None:
        return self._store

    def without_store(self) -> "BackbonePreprocessor":
        """A copy whose ``load`` decodes every input and keys none (``key=None``): what it loads
        is never read from, nor written to, the feature store (e.g. noisy inputs)."""
        other = copy.copy(self)
        other._store = None
        return other

    def _check_fitted(self) -> None:
        if self.folder_ is None:
            raise NotFittedError(f"{self.modality} input '{self.name}': call fit() before load()")

    def load(self, row: Mapping[str, Any], base_dir: Path) -> BackboneItem | None:
        """The row's ``BackboneItem`` (stored features when cached), or None when absent.

        Raises:
            BadInput: a missing, empty or undecodable file.
        """
        self._check_fitted()
        content = self._content(row, base_dir)
        if content is None:
            return None
        key = None
        if self._store is not None:
            key = content_key(self._store.identity, content)
            hit = self._store.get(key)
            if hit is not None:
                return BackboneItem(key=key, features=hit[0], truncated=hit[1])
        value, truncated = self._decode(content)
        return BackboneItem(value=value, key=key, truncated=truncated)

    def augment(self, item: BackboneItem, generator: torch.Generator) -> BackboneItem:
        """Train-time perturbation of the decoded input (none once features are cached)."""
        if item.features is not None:
            return item
        return BackboneItem(self._augment(item.value, generator), item.key, None, item.truncated)

    def collate(self, items: list[BackboneItem | None]) -> dict[str, torch.Tensor]:
        """Stored features for the pass-through encoder, else the backbone's inputs."""
        present = [it for it in items if it is not None]
        cached = [it.features is not None for it in present]
        if present and all(cached):
            return collate_features(items, with_tokens=self.cache == "tokens")
        assert not any(cached), "a batch mixes cached features and raw inputs; run prepare_backbone_inputs"
        return self._collate_values([None if it is None else it.value for it in items])

    def encoder_inputs(self) -> dict[str, Any]:
        """Where the encoder's backbone is; ``lazy``: frozen and cached, so loaded on first use."""
        self._check_fitted()
        weights = not self.saved_ or (self.folder_ / WEIGHTS).is_file()
        return {"folder": str(self.folder_), "modality": self.modality, "weights": weights,
                "family": self.family_, "lazy": self.cache != "off", "token_mask": self.token_mask}

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """``state.json`` + ``backbone/``: the backbone's config and processor files, and, for a
        frozen cached backbone (which is not in the model's state dict), its weights."""
        self._check_fitted()
        directory = Path(directory)
        write_state(directory, {
            "modality": self.modality, "name": self.name, "columns": self.columns,
            "backbone": self.backbone, "pooling": self.pooling, "family": self.family_,
            "source": self.source_, "weights_sha256": self.fingerprint_,
            "weights_digest": self.weights_digest_, "options": self.options.model_dump(),
            "runtime": {"cache": self.cache, "cache_dir": self.cache_dir, "precision": self.precision},
        })
        save_tower_config(self.folder_, self.modality, directory / "backbone", self.family_)
        self._save_processor(directory / "backbone")
        if self.cache != "off":
            assert self.encoder_inputs()["weights"], "a frozen cached backbone's weights must be on disk"
            tower = load_tower(self.folder_, self.modality, weights=True, family=self.family_)
            save_tower_weights(tower, directory / "backbone")

    @classmethod
    def load_from(cls, directory: Path) -> "BackbonePreprocessor":
        """Rebuild from ``save``'s files (offline); ``configure`` changes the cache settings.

        The encoder is built from the saved config and gets its weights from the model's
        state dict. Only when features are cached and the source folder still holds the
        very same weights (same sha256) is the source used instead, so that features can
        be computed before a resumed run restores its checkpoint.
        """
        directory = Path(directory)
        state = read_state(directory)
        self = cls(state["name"], state["columns"], backbone=state["backbone"],
                   pooling=state["pooling"], **state["runtime"], **state["options"])
        self.folder_, self.family_, self.saved_ = directory / "backbone", state["family"], True
        self.fingerprint_, self.source_ = state.get("weights_sha256"), state.get("source")
        self.weights_digest_ = state.get("weights_digest")
        self._use_processor(self.folder_, fitting=False)
        if self.fingerprint_ and self.source_ and Path(self.source_).is_dir():
            if weights_fingerprint(Path(self.source_)) == self.fingerprint_:
                self.folder_, self.saved_ = Path(self.source_), False
        self._open_store()
        return self


def override_note(column: str, what: str, given: Any, expected: Any, backbone: str) -> None:
    """Warn that a config overrides preprocessing the pretrained weights expect."""
    log.warning("column '%s': preprocess.%s=%s overrides the %s that backbone %r was trained with "
                "(%s); pretrained features may suffer. Remove it to use the backbone's own.",
                column, what, given, what, backbone, expected)


def file_bytes(source: Any) -> bytes:
    """The bytes of a file path or a ``BytesIO``; raises ``BadInput`` like the decoders do."""
    if isinstance(source, Path):
        if not source.exists():
            raise BadInput("file not found")
        if source.is_dir():
            raise BadInput("is a directory, not a file")
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read file: {exc.strerror or exc}") from None
    else:
        data = source.getvalue()
    if not data:
        raise BadInput("zero-byte file")
    return data
