"""Cross-modal retrieval on av-digits: a spoken digit finds a handwritten image of it.

Builds the av-digits tables (``data.benchmarks.build_av_digits``; splits fixed by
``$POLYMODAL_DATA/av-digits/pairs.csv``: test clips are from speakers theo and yweweler,
never heard in training, and test images are never used in training), trains an alignment
model between the ``audio`` and ``image`` columns with ``match: label`` (every image of the
spoken digit is a positive, so duplicates are not pushed apart), and prints audio→image and
image→audio Recall@1/5/10 on the test pairs. The gallery is the distinct test images; a hit
is a retrieved image that shows the spoken digit.

    POLYMODAL_DATA=../shared/data flock /tmp/polymodal-cpu.lock .venv/bin/python bench/align_av_digits.py
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from polymodal import Predictor
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="default: $POLYMODAL_DATA")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "polymodal" / "av-digits")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--loss", choices=["infonce", "siglip"], default="infonce")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="also write the model directory here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    start = time.perf_counter()
    tables = build_av_digits(args.data_dir, args.work_dir)
    config = {**CONFIG, "seed": args.seed, "align": {**CONFIG["align"], "loss": args.loss}}
    if args.epochs:
        config["training"] = {**CONFIG["training"], "max_epochs": args.epochs}
    predictor = Predictor(config=config).fit(tables["train"], tuning_data=tables["val"])
    test = predictor.evaluate(tables["test"], record_as="test")
    if args.save:
        predictor.save(args.save)
    seconds = time.perf_counter() - start
    print(f"av-digits alignment ({args.loss}), test: speakers theo + yweweler (unseen), "
          f"{predictor.fit_info_['epochs']} epochs, {seconds:.0f}s")
    for a, b in (("audio", "image"), ("image", "audio")):
        p = f"{a}_to_{b}_"
        print(f"  {a}→{b}: R@1 {test[p + 'recall@1']:.1%}  R@5 {test[p + 'recall@5']:.1%}  "
              f"R@10 {test[p + 'recall@10']:.1%}  median rank {test[p + 'median_rank']:.0f}  "
              f"MRR {test[p + 'mrr']:.3f}  ({test[p + 'queries']} queries, {test[p + 'gallery']} items)")


if __name__ == "__main__":
    main()
