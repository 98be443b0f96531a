"""The shared main of the ``bench/align_*`` scripts: fit an alignment model, print its retrieval figures.

Each script supplies its config, its table builder, its default work folder and the headline
that names its test split; this module parses the common command line, trains, evaluates on
the test table and prints Recall@1/5/10, median rank and MRR in both directions. Imported by
the scripts as ``_align`` (``python bench/align_x.py`` puts ``bench/`` first on the path).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from polymodal import Predictor

# (data_dir, work_dir) -> {"train": frame, "val": frame, "test": frame}
Builder = Callable[[Any, Path], Mapping[str, pd.DataFrame]]


def main(doc: str, config: Mapping[str, Any], build: Builder, work_dir: Path,
         headline: str) -> None:
    """Run one alignment benchmark from the command line.

    Args:
        doc: the script's docstring; its first line is the ``--help`` description.
        config: the Predictor config; ``align.columns`` names the two columns, in print order.
        build: builds the train / val / test tables from ``--data-dir`` and ``--work-dir``.
        work_dir: the default ``--work-dir``.
        headline: the first printed line, a template over ``loss`` and the test metrics
            (``{loss}``, ``{n}``, …); the epochs and seconds are appended.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="default: $POLYMODAL_DATA")
    parser.add_argument("--work-dir", type=Path, default=work_dir)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--loss", choices=["infonce", "siglip"], default="infonce")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="also write the model directory here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    start = time.perf_counter()
    tables = build(args.data_dir, args.work_dir)
    run = {**config, "seed": args.seed, "align": {**config["align"], "loss": args.loss}}
    if args.epochs:
        run["training"] = {**config["training"], "max_epochs": args.epochs}
    predictor = Predictor(config=run).fit(tables["train"], tuning_data=tables["val"])
    test = predictor.evaluate(tables["test"], record_as="test")
    if args.save:
        predictor.save(args.save)
    seconds = time.perf_counter() - start
    print(f"{headline.format_map({**test, 'loss': args.loss})}, {predictor.fit_info_['epochs']} epochs, {seconds:.0f}s")
    first, second = config["align"]["columns"]
    for a, b in ((first, second), (second, first)):
        p = f"{a}_to_{b}_"
        print(f"  {a}→{b}: R@1 {test[p + 'recall@1']:.1%}  R@5 {test[p + 'recall@5']:.1%}  "
              f"R@10 {test[p + 'recall@10']:.1%}  median rank {test[p + 'median_rank']:.0f}  "
              f"MRR {test[p + 'mrr']:.3f}  ({test[p + 'queries']} queries, {test[p + 'gallery']} items)")
