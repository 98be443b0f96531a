"""The contract every preprocessor keeps (a modality's ``Modality.preprocessor`` is one).

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

import io
import json
from pathlib import Path
from typing import Any, ClassVar, Mapping, Protocol

import numpy as np
import pandas as pd
import torch

__all__ = [
    "BadInput",
    "Preprocessor",
    "write_state",
    "read_state",
    "plain",
    "shown",
    "file_source",
    "in_memory_file",
    "check_file",
]


class BadInput(Exception):
    """One cell cannot be used; ``str(exc)`` is the reason (e.g. ``'truncated file'``).

    Internal to the data layer: the dataset catches it and turns it into a ``DataError``
    that counts and lists the bad rows, or skips them under ``on_bad_input: skip_row`` / ``skip_modality``.
    """


class OverLimit(BadInput):
    """A cell over a size bound its caller set (bytes, pixels, seconds); ``str(exc)`` says which."""


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
        """Random train-time perturbation of a loaded item.

        A preprocessor may also offer ``augment_batch(collated, generators) -> collated``:
        the same perturbation on a collated batch, row ``i`` drawn from ``generators[i]``
        (None: left as it is); training batches then take it (one call per batch). A
        preprocessor whose items vary in length (text) may offer ``length(item) -> int``:
        ``training.group_by_length`` batches rows of similar length with it.
        """

    def collate(self, items: list[Any | None]) -> dict[str, torch.Tensor]:
        """Stack items into batch tensors (see module doc).

        A preprocessor whose batch tensors vary in size along an axis besides the batch
        (padded to the longest item: text tokens) names those axes in ``dynamic_axes() ->
        {key: {axis: name}}``; ``polymodal export`` keeps them dynamic in the ONNX graph and
        every other axis at the size ``collate`` gives an all-absent batch.
        """

    def encoder_inputs(self) -> dict[str, Any]:
        """Plain numbers the encoder needs (vocab_size, in_channels, n_mels, ...)."""

    def save(self, directory: Path) -> None:
        """Write the fitted state into ``directory`` (JSON / text files only)."""

    @classmethod
    def load_from(cls, directory: Path) -> "Preprocessor":
        """Rebuild a fitted preprocessor from ``save``'s files."""


def write_state(directory: Path, state: Mapping[str, Any]) -> None:
    """Write ``state.json`` into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))


def read_state(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "state.json").read_text())


def file_source(value: Any, base_dir: Path) -> Path | io.BytesIO | None:
    """Where a file cell's content is: a path (relative to ``base_dir``), raw bytes, or ``None``.

    A Hugging Face datasets Image / Audio feature (``{bytes, path}``) gives its bytes, else its path;
    a missing, empty or blank cell is ``None`` (the input is absent). In-memory content is
    encoded losslessly, so every reader (and the feature cache, keyed by bytes) takes it as a
    file: a Pillow image or a ``uint8`` array ``[H, W]`` / ``[H, W, C]`` as PNG, a decoded
    sound ``{array, sampling_rate}`` (datasets' decoded Audio) as a float WAV.
    """
    encoded = in_memory_file(value)
    if encoded is not None:
        return io.BytesIO(encoded)
    if isinstance(value, Mapping):
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


def in_memory_file(value: Any) -> bytes | None:
    """The file an in-memory image or sound cell stands for (see ``file_source``), else None.

    Raises:
        BadInput: an array that is neither an image nor a sound.
    """
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # a Pillow image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue()
    if isinstance(value, np.ndarray):
        if value.dtype != np.uint8 or not (value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (1, 3, 4))):
            raise BadInput(f"an array cell of shape {value.shape} and dtype {value.dtype} is not an image "
                           "(uint8 [H, W] or [H, W, 1|3|4]); store images as files, bytes or uint8 arrays")
        from PIL import Image

        return in_memory_file(Image.fromarray(value[:, :, 0] if value.ndim == 3 and value.shape[2] == 1 else value))
    if isinstance(value, Mapping) and value.get("array") is not None and value.get("sampling_rate"):
        import soundfile as sf

        buffer = io.BytesIO()
        sf.write(buffer, np.asarray(value["array"], dtype=np.float32), int(value["sampling_rate"]),
                 format="WAV", subtype="FLOAT")
        return buffer.getvalue()
    return None


def check_file(path: Path, kind: str) -> None:
    """Raise ``BadInput`` unless ``path`` is a non-empty file (``kind``: e.g. ``"image"``, for messages)."""
    try:
        if not path.exists():
            raise BadInput("file not found")
        if path.is_dir():
            raise BadInput(f"is a directory, not an {kind} file")
        if path.stat().st_size == 0:
            raise BadInput("zero-byte file")
    except OSError as exc:  # name too long, permission denied, I/O error, ...
        raise BadInput(f"cannot open the file: {exc.strerror or exc}") from None


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays (also inside lists, tuples and dicts) turned into
    Python ones, so a message shows ``1``, not ``np.int64(1)``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def shown(value: Any, limit: int = 60) -> str:
    """A cell's value as plain text for a message: text quoted, numpy reprs gone, cut at ``limit``."""
    text = repr(plain(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
