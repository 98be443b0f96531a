"""Synthetic multimodal tables and archives for tests (importable as ``synthetic``)."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def make_table(folder: Path, n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A table whose class shows in an image colour, a word in the text, and a number.

    Images are written under ``folder/img``; paths in the table are relative to ``folder``.
    """
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    names = sorted(COLORS)
    for i in range(n):
        label = names[i % 3]
        pixels = np.clip(np.array(COLORS[label]) + rng.normal(0, 20, (12, 12, 3)), 0, 255)
        path = f"img/{i:03d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(folder / path)
        rows.append({
            "photo": path,
            "caption": f"a {label} thing seen {rng.integers(1, 9)} times" if i % 4 else "something",
            "size": float(names.index(label) + rng.normal(0, 0.3)),
            "shop": rng.choice(["north", "south"]),
            "label": label,
        })
    return pd.DataFrame(rows)


FAST = {
    "seed": 0,
    "text": {"encoder": {"name": "gru"}},
    "image": {"preprocess": {"size": 12}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    "training": {"max_epochs": 3, "batch_size": 16, "progress_bar": False, "precision": "32"},
}


def write_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    """Write a ``.tar.gz`` holding ``members`` (name inside the archive → bytes); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
