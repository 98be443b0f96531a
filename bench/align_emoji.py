"""Cross-modal alignment on the emoji benchmark: emoji name ↔ rendered image.

Builds the benchmark tables with ``data.emoji.build_emoji`` (splits fixed by
``$POLYMODAL_DATA/emoji/splits.csv``, by base emoji, so no test emoji or any of its skin-tone
variants is seen in training), trains an alignment model (MiniLM as the frozen text tower,
a small CNN on the images, a projection each into a shared space, symmetric InfoNCE), and
prints name→image and image→name Recall@1/5/10, median rank and MRR over the test emoji
(694 queries against 694 items; chance Recall@10 is 10/694 = 1.4%).

    POLYMODAL_DATA=../shared/data flock /tmp/polymodal-cpu.lock .venv/bin/python bench/align_emoji.py

Needs the ``minilm`` extra; downloads nothing. ``--epochs``, ``--loss siglip`` and
``--work-dir`` (where the images are rendered, default ~/.cache/polymodal/emoji) change the run.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from polymodal import Predictor
from polymodal.datasets.emoji import build_emoji

CONFIG = {
    "problem_type": "alignment",
    "columns": {"name": "text", "image": "image", "label": "ignore"},
    "align": {"columns": ["name", "image"], "loss": "infonce", "dim": 256, "hidden": 512},
    "text": {"backbone": "minilm", "tuning": {"mode": "frozen", "pooling": "mean", "cache": "pooled"}},
    "image": {"preprocess": {"size": 48, "augment": True, "shift": 0.06, "rotate_degrees": 8, "scale": 0.1},
              "encoder": {"name": "cnn", "channels": [32, 64, 128, 256], "convs_per_block": 1, "pooling": "avgmax"}},
    "training": {"max_epochs": 40, "batch_size": 128, "learning_rate": 2e-3, "weight_decay": 0.05,
                 "patience": 8, "precision": "32", "progress_bar": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="default: $POLYMODAL_DATA")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "polymodal" / "emoji")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--loss", choices=["infonce", "siglip"], default="infonce")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="also write the model directory here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    start = time.perf_counter()
    tables = build_emoji(args.data_dir, args.work_dir)
    config = {**CONFIG, "seed": args.seed, "align": {**CONFIG["align"], "loss": args.loss}}
    if args.epochs:
        config["training"] = {**CONFIG["training"], "max_epochs": args.epochs}
    predictor = Predictor(config=config).fit(tables["train"], tuning_data=tables["val"])
    test = predictor.evaluate(tables["test"], record_as="test")
    if args.save:
        predictor.save(args.save)
    seconds = time.perf_counter() - start
    print(f"emoji alignment ({args.loss}), test: {test['n']} emoji never seen in training, "
          f"{predictor.fit_info_['epochs']} epochs, {seconds:.0f}s")
    for a, b in (("name", "image"), ("image", "name")):
        p = f"{a}_to_{b}_"
        print(f"  {a}→{b}: R@1 {test[p + 'recall@1']:.1%}  R@5 {test[p + 'recall@5']:.1%}  "
              f"R@10 {test[p + 'recall@10']:.1%}  median rank {test[p + 'median_rank']:.0f}  "
              f"MRR {test[p + 'mrr']:.3f}  ({test[p + 'queries']} queries, {test[p + 'gallery']} items)")


if __name__ == "__main__":
    main()
