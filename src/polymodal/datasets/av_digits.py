"""The av-digits benchmark of ``$POLYMODAL_DATA`` (see its README), turned into tables.

FSDD clips paired with ``load_digits()`` images by ``av-digits/pairs.csv``;
:func:`build_av_digits` writes train/val/test CSVs (audio path, image path, label). The clips
come from ``fsdd.py``; Fashion-MNIST lives in ``fashion_mnist.py``.

The data folder is always passed in or read from ``POLYMODAL_DATA`` when a function runs,
never at import, and nothing here writes into it except :func:`ensure_fsdd` with
``download=True`` (which falls back to a user cache folder when it is read-only).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from polymodal.datasets.fsdd import SPLITS, clip_names, ensure_fsdd, read_pairs
from polymodal.datasets.root import data_root
from polymodal.errors import DataError

__all__ = ["build_av_digits"]


def build_av_digits(data_dir: Path | None, work_dir: Path, download: bool = False) -> dict[str, Path]:
    """Write the av-digits tables: ``work_dir/{train,val,test}.csv`` and ``images/``.

    Each row has ``audio`` (absolute path to the FSDD clip), ``image`` (``images/digit_<i>.png``,
    relative to ``work_dir``: ``load_digits().images[i]``, 8×8 grey, 0–16 scaled ×16),
    ``label`` (the digit) and ``speaker``. Images already written are left alone, so a
    second call is cheap.

    Raises:
        DataError: no data folder, pairs.csv missing or inconsistent, FSDD clips missing.
    """
    from sklearn.datasets import load_digits  # heavy import, only needed here

    root = data_root(data_dir)
    pairs = read_pairs(root)
    fsdd = ensure_fsdd(root, download=download)
    digits = load_digits()
    index = pairs["digit_index"].to_numpy()
    if index.min() < 0 or index.max() >= len(digits.images):
        raise DataError(
            f"av-digits/pairs.csv: digit_index must lie in [0, {len(digits.images) - 1}], got "
            f"[{index.min()}, {index.max()}]; restore the benchmark file"
        )
    wrong = np.flatnonzero(digits.target[index] != pairs["label"].to_numpy())
    if len(wrong):
        raise DataError(
            f"av-digits/pairs.csv: {len(wrong)} rows pair a clip with an image of another "
            f"digit (first: row {wrong[0]}); restore the benchmark file"
        )

    work_dir = Path(work_dir)
    (work_dir / "images").mkdir(parents=True, exist_ok=True)
    for i in np.unique(index):
        pixels = np.clip(digits.images[i] * 16, 0, 255).astype(np.uint8)  # [8, 8]
        _write_if_changed(work_dir / "images" / f"digit_{i}.png", _png_bytes(pixels))

    table = pd.DataFrame({
        "audio": [str((fsdd / name).absolute()) for name in clip_names(pairs)],
        "image": [f"images/digit_{i}.png" for i in index],
        "label": pairs["label"].astype("int64"),
        "speaker": pairs["speaker"],
    })
    paths = {}
    for split in SPLITS:
        paths[split] = work_dir / f"{split}.csv"
        table[pairs["split"].to_numpy() == split].to_csv(paths[split], index=False)
    return paths


def _png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a uint8 ``[H, W]`` greyscale image as PNG (deterministic for a Pillow version,
    so re-runs can compare bytes and skip files that are already right)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    path.write_bytes(data)
