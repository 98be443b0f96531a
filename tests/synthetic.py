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

# Small widths of every fusion's options (the contract and ONNX export tests), so that each case runs fast.
TINY_FUSIONS = {
    "concat": {"hidden": 8}, "weighted": {"hidden": 8, "gate_hidden": 4}, "gated": {"hidden": 8},
    "attention": {"d_model": 8, "num_heads": 2, "ff_dim": 16}, "late": {"hidden": 8},
    "cross_attention": {"d_model": 8, "num_heads": 2, "ff_dim": 16},
    "tensor": {"proj_dim": 3, "hidden": 8}, "low_rank": {"rank": 2, "hidden": 8},
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


def fit_saved(folder: Path, n: int = 60):
    """A ``FAST`` model fitted on ``make_table(folder, n)`` (``folder/train.csv``) and saved to
    ``folder/model``; returns the fitted ``Predictor``."""
    from polymodal import Predictor

    make_table(folder, n=n).to_csv(folder / "train.csv", index=False)
    predictor = Predictor(label="label", config=FAST, verbose=False).fit(folder / "train.csv")
    predictor.save(folder / "model")
    return predictor
