"""Small real models for the serving tests: FSDD clips, scikit-learn's handwritten digits and a
caption per row, trained for a second or two each."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

WORDS = ("zero", "one", "two", "three")
TRAINING = {"max_epochs": 12, "batch_size": 16, "learning_rate": 0.01, "patience": 20, "progress_bar": False,
            "precision": "32"}
# max_pixels: a larger picture passes the service's limits but is skipped by the model (and reported)
IMAGE = {"preprocess": {"size": 16, "grayscale": True, "augment": False, "max_pixels": 4096},
         "encoder": {"name": "cnn", "channels": [8, 16]}}
AUDIO = {"preprocess": {"sample_rate": 8000, "max_seconds": 0.5, "n_mels": 16, "n_fft": 256, "hop_length": 80,
                        "win_length": 200}, "encoder": {"name": "cnn", "channels": [8, 16]}}
TEXT = {"preprocess": {"vocab_size": 50, "max_length": 8}, "encoder": {"name": "gru", "embed_dim": 8,
                                                                           "hidden_size": 8}}

CLASSIFIER = {"label": "label", "seed": 0, "columns": {"id": "ignore", "caption": "text", "image": "image",
                                                       "audio": "audio", "size": "numeric"},
              "text": TEXT, "image": IMAGE, "audio": AUDIO, "fusion": {"name": "weighted", "hidden": 16},
              "training": TRAINING}
ALIGNED = {"problem_type": "alignment", "label": "label", "seed": 0,
           "columns": {"id": "ignore", "caption": "text", "image": "image", "audio": "audio", "size": "ignore"},
           "align": {"columns": ["caption", "image", "audio"], "loss": "infonce", "dim": 8, "hidden": 0,
                     "match": "label"},
           "text": TEXT, "image": IMAGE, "audio": AUDIO, "training": TRAINING}
GENERATOR = {"problem_type": "generation", "label": "label", "seed": 0,
             "columns": {"image": "image", "label": "categorical"},
             "image": {"preprocess": IMAGE["preprocess"]},
             "generate": {"target": "image", "model": "vae", "conditions": ["label"], "latent_dim": 4, "width": 8},
             "training": {**TRAINING, "max_epochs": 1}}


def av_table(data_dir: Path, folder: Path, n: int = 40) -> pd.DataFrame:
    """``n`` rows: ``id``, ``caption`` (the digit's name), ``image`` (a handwritten digit PNG written
    to ``folder``), ``audio`` (an FSDD clip of the same digit), ``size`` and ``label``; also
    written as ``folder/train.csv``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        digit, take = k % len(WORDS), k // len(WORDS)
        index = int(np.flatnonzero(digits.target == digit)[take])
        picture = Image.fromarray((digits.images[index] * 16).clip(0, 255).astype(np.uint8)).resize((32, 32))
        picture.save(folder / f"d{k}.png")
        rows.append({"id": f"item{k}", "caption": f"a {WORDS[digit]}", "image": f"d{k}.png",
                     "audio": str(data_dir / "fsdd" / f"{digit}_george_{take}.wav"),
                     "size": float(digit) + 0.1 * take, "label": WORDS[digit]})
    frame = pd.DataFrame(rows)
    frame.to_csv(folder / "train.csv", index=False)
    return frame


def train(config: dict, table: Path, out: Path) -> Path:
    """Fit ``config`` on ``table`` and save it to ``out``."""
    from polymodal import Predictor

    Predictor(config=config, verbose=False).fit(str(table)).save(out)
    return out


def build_index(model_dir: Path, table: Path, out: Path) -> Path:
    """A flat index of the image column, ids from ``id``."""
    from polymodal.modeldir import load_model
    from polymodal.retrieval import index_column

    index_column(load_model(model_dir), model_dir, str(table), "image", id_column="id").save(out)
    return out
