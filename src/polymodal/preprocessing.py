"""The contract every preprocessor keeps, and the registry that maps a modality to one.

A *preprocessor* owns one model input: a text, image or audio column, or all numeric and
categorical columns together (the ``tabular`` input). It is fitted on the training split,
saved with the model, and turns raw table cells into tensors in two steps:

- ``load(row, base_dir)`` decodes one row deterministically (file decode, resample,
  tokenise, log-mel, scale). Returns ``None`` when the input is absent for that row
  (empty/NaN cell, empty text). Raises ``BadInput(reason)`` when the input is present but
  cannot be used (unreadable file, ...). The result is cached by the dataset, so put
  every deterministic step here.
- ``augment(item, generator)`` (training only) returns a randomly perturbed copy.
- ``collate(items)`` stacks a list of loaded items (``None`` = absent) into the batch
  tensors the encoder reads; absent rows are zero-filled (the dataset tracks presence).

Batch tensors per modality (B batch, T tokens/frames, C channels, H/W spatial, F mel bins):
    text:     input_ids Long[B, T], attention_mask Bool[B, T]
    image:    pixel_values Float[B, C, H, W]
    audio:    features Float[B, T, F] (log-mel frames), mask Bool[B, T]
    tabular:  numeric Float[B, N], numeric_missing Float[B, N], categorical Long[B, K]
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Protocol

import torch

__all__ = [
    "BadInput",
    "Preprocessor",
    "PREPROCESSORS",
    "register_preprocessor",
    "get_preprocessor",
    "write_state",
    "read_state",
]


class BadInput(Exception):
    """One cell cannot be used; ``str(exc)`` is the reason (e.g. ``'truncated file'``).

    Internal to the data layer: the dataset catches it and turns it into a ``DataError``
    that counts and lists the bad rows, or skips them under ``on_bad_input: skip_row`` / ``skip_modality``.
    """


class Preprocessor(Protocol):
    """One model input. Construct with ``Cls(name, columns, **options)``."""

    modality: ClassVar[str]
    name: str  # input name: the column name, or "tabular"
    columns: list[str]  # table columns it reads

    def fit(self, frame: Any, base_dir: Path) -> "Preprocessor":
        """Learn state (vocabulary, scaler, ...) from the training table; returns self."""

    def load(self, row: Mapping[str, Any], base_dir: Path) -> Any | None:
        """Decode one row (see module doc)."""

    def augment(self, item: Any, generator: torch.Generator) -> Any:
        """Random train-time perturbation of a loaded item."""

    def collate(self, items: list[Any | None]) -> dict[str, torch.Tensor]:
        """Stack items into batch tensors (see module doc)."""

    def encoder_inputs(self) -> dict[str, Any]:
        """Plain numbers the encoder needs (vocab_size, in_channels, n_mels, ...)."""

    def save(self, directory: Path) -> None:
        """Write the fitted state into ``directory`` (JSON / text files only)."""

    @classmethod
    def load_from(cls, directory: Path) -> "Preprocessor":
        """Rebuild a fitted preprocessor from ``save``'s files."""


PREPROCESSORS: dict[str, type] = {}


def register_preprocessor(modality: str) -> Callable[[type], type]:
    """Class decorator: the preprocessor used for inputs of ``modality``."""

    def wrap(cls: type) -> type:
        PREPROCESSORS[modality] = cls
        return cls

    return wrap


def get_preprocessor(modality: str) -> type:
    return PREPROCESSORS[modality]


def write_state(directory: Path, state: Mapping[str, Any]) -> None:
    """Write ``state.json`` into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))


def read_state(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "state.json").read_text())
