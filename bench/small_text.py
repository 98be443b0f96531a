"""A small text table with the default settings: frozen MiniLM (chosen because the table is
small and the ``minilm`` extra is installed) against the from-scratch text encoder.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/small_text.py [--rows 400]

Trains on ``--rows`` rows drawn (seeded) from SST-2's training split, scores on its test split
(1,821 sentences); prints test accuracy and wall time (fit + evaluate) for each. The second run
sets ``text: {backbone: null}``, the documented way to keep the from-scratch encoder.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

import pandas as pd

from polymodal import Predictor
from polymodal.datasets.root import data_root


def _read(path) -> pd.DataFrame:
    rows = [line.rstrip("\n").split(" ", 1) for line in open(path, encoding="utf-8")]
    return pd.DataFrame({"label": [int(a) for a, _ in rows], "sentence": [b for _, b in rows]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("polymodal").setLevel(logging.WARNING)
    folder = data_root(os.environ.get("POLYMODAL_DATA")) / "text" / "sst2"
    train = _read(folder / "stsa.binary.train").sample(args.rows, random_state=args.seed)
    test = _read(folder / "stsa.binary.test")
    for name, text in (("default", None), ("from scratch (text: {backbone: null})", {"backbone": None})):
        start = time.perf_counter()
        config = {"seed": args.seed, "training": {"progress_bar": False}, **({"text": text} if text else {})}
        predictor = Predictor(label="label", config=config).fit(train)
        accuracy = predictor.evaluate(test)["accuracy"]
        backbone = predictor.config_.section("text").backbone or "none"
        print(f"{name:<40} backbone {backbone:<7} test accuracy {accuracy:.4f}  "
              f"({predictor.fit_info_['epochs']} epochs, {time.perf_counter() - start:.1f}s)")


if __name__ == "__main__":
    main()
