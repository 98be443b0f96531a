"""Cross-modal retrieval on av-digits: a spoken digit finds a handwritten image of it.

Builds the av-digits tables (``datasets.av_digits.build_av_digits``; splits fixed by
``$POLYMODAL_DATA/av-digits/pairs.csv``: test clips are from speakers theo and yweweler,
never heard in training, and test images are never used in training), trains an alignment
model between the ``audio`` and ``image`` columns with ``match: label`` (every image of the
spoken digit is a positive, so duplicates are not pushed apart), and prints audio→image and
image→audio Recall@1/5/10 on the test pairs. The gallery is the distinct test images; a hit
is a retrieved image that shows the spoken digit.

    POLYMODAL_DATA=../shared/data flock /tmp/polymodal-cpu.lock .venv/bin/python bench/align_av_digits.py
"""
from __future__ import annotations

from pathlib import Path

from _align import main
from polymodal.datasets.av_digits import build_av_digits

CONFIG = {
    "problem_type": "alignment",
    "label": "label",
    "columns": {"audio": "audio", "image": "image", "speaker": "ignore"},
    "align": {"columns": ["audio", "image"], "loss": "infonce", "dim": 64, "match": "label"},
    "image": {"preprocess": {"size": 16, "grayscale": True}, "encoder": {"name": "cnn", "channels": [32, 64]}},
    "audio": {"preprocess": {"sample_rate": 8000, "max_seconds": 1.0, "n_mels": 40, "n_fft": 256,
                             "hop_length": 80, "win_length": 200},
              "encoder": {"name": "tdnn"}},
    "training": {"max_epochs": 15, "batch_size": 64, "learning_rate": 3e-3, "patience": 6,
                 "precision": "32", "progress_bar": False},
}


if __name__ == "__main__":
    main(__doc__, CONFIG, build_av_digits, Path.home() / ".cache" / "polymodal" / "av-digits",
         headline="av-digits alignment ({loss}), test: speakers theo + yweweler (unseen)")
