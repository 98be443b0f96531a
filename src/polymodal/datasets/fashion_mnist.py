"""Fashion-MNIST from its IDX files, and the image-folder layout the end-to-end tests use."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd

from polymodal.datasets.root import data_root
from polymodal.errors import DataError

__all__ = ["FASHION_MNIST_CLASSES", "load_fashion_mnist", "make_fashion_folder"]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

def load_fashion_mnist(data_dir: Path | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from its IDX gzip files.

    Args:
        data_dir: the data folder (holds ``fashion-mnist/``), or ``None`` for ``$POLYMODAL_DATA``.
        split: ``"train"`` (60,000) or ``"test"`` (10,000).

    Returns:
        images uint8 ``[N, 28, 28]`` and labels int64 ``[N]`` (indices into
        ``FASHION_MNIST_CLASSES``).

    Raises:
        DataError: unknown split, missing file, or a file that is not the expected IDX.
    """
    if split not in _FASHION_FILES:
        raise DataError(f"Fashion-MNIST split must be one of {list(_FASHION_FILES)}, got {split!r}")
    folder = data_root(data_dir) / "fashion-mnist"
    image_file, label_file = _FASHION_FILES[split]
    images = _read_idx(folder / image_file, magic=2051, ndim=3)
    labels = _read_idx(folder / label_file, magic=2049, ndim=1)
    if len(images) != len(labels):
        raise DataError(
            f"{folder}: {image_file} holds {len(images):,} images but {label_file} holds "
            f"{len(labels):,} labels; expected equal counts. Restore the files"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise DataError(f"{folder / label_file}: expected labels 0–9, got up to {labels.max()}")
    return images, labels.astype(np.int64)


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as handle:
            data = bytearray(handle.read())
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} ({exc}); expected a gzip IDX file from Fashion-MNIST") from exc
    got = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if got != magic:
        raise DataError(
            f"{path}: expected IDX magic number {magic} (uint8, {ndim}-d), got {got}; the file "
            "is not the right Fashion-MNIST file, restore it"
        )
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise DataError(
            f"{path}: header says shape {shape} ({int(np.prod(shape)):,} bytes), file holds "
            f"{len(data) - header:,} bytes after the header; the file is truncated, restore it"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


# Text for make_fashion_folder: per class, words a shopper might use. Some words are
# shared between classes ("top", "shoe", "boot") so text alone cannot be perfect.
_NOUNS = {
    "T-shirt/top": ("t-shirt", "tee", "top", "short-sleeved top"),
    "Trouser": ("trousers", "pants", "slacks", "jeans"),
    "Pullover": ("pullover", "sweater", "jumper", "knitted top"),
    "Dress": ("dress", "gown", "frock", "summer dress"),
    "Coat": ("coat", "jacket", "overcoat", "parka"),
    "Sandal": ("sandal", "flip-flop", "open shoe", "strappy shoe"),
    "Shirt": ("shirt", "blouse", "button-up top", "long-sleeved top"),
    "Sneaker": ("sneaker", "trainer", "running shoe", "canvas shoe"),
    "Bag": ("bag", "handbag", "tote", "purse"),
    "Ankle boot": ("ankle boot", "boot", "bootie", "short boot"),
}
_ADJECTIVES = ("plain", "striped", "dark", "light", "patterned", "classic", "casual", "simple")
_TEMPLATES = (
    "{adj} {noun}", "{adj} {noun}, product photo", "photo: {adj} {noun}",
    "{noun} in a {adj} style", "catalogue image: {adj} {noun}",
)
_GENERIC = (
    "a fashion item", "product photo, grey background", "new arrival",
    "catalogue picture", "an item from the shop",
)
_GENERIC_SHARE = 0.2


def _folder_name(name: str) -> str:
    """A class name safe as a folder name: ``'T-shirt/top'`` → ``'T-shirt_top'``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)


def make_fashion_folder(
    data_dir: Path | None, dest: Path, per_class: int, split: str = "train", seed: int = 0
) -> Path:
    """Write ``dest/<class>/<i>.png`` from real Fashion-MNIST plus ``dest/metadata.csv``.

    ``metadata.csv`` has ``file_name`` (e.g. ``Trouser/0003.png``) and ``description``: a
    short noisy text, generic for about 20% of rows, so neither modality alone is perfect.

    Raises:
        DataError: ``per_class`` out of range, or ``dest`` exists and is not empty.
    """
    from PIL import Image

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"{dest} is not empty; expected a new or empty folder, pass another dest")
    images, labels = load_fashion_mnist(data_dir, split)
    smallest = int(np.bincount(labels, minlength=len(FASHION_MNIST_CLASSES)).min())
    if not 1 <= per_class <= smallest:
        raise DataError(f"per_class must lie in [1, {smallest:,}] for the {split} split, got {per_class}")
    rng = np.random.default_rng(seed)
    rows = []
    for label, name in enumerate(FASHION_MNIST_CLASSES):
        folder = dest / _folder_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        chosen = np.sort(rng.choice(np.flatnonzero(labels == label), per_class, replace=False))
        for i, row in enumerate(chosen):
            Image.fromarray(images[row]).save(folder / f"{i:04d}.png")
            rows.append({"file_name": f"{folder.name}/{i:04d}.png", "description": _describe(name, rng)})
    pd.DataFrame(rows).to_csv(dest / "metadata.csv", index=False)
    return dest


def _describe(name: str, rng: np.random.Generator) -> str:
    if rng.random() < _GENERIC_SHARE:
        return str(rng.choice(_GENERIC))
    template = str(rng.choice(_TEMPLATES))
    return template.format(adj=rng.choice(_ADJECTIVES), noun=rng.choice(_NOUNS[name]))
