"""Predicting tables larger than memory: rows/s and peak memory of ``polymodal predict`` over
Parquet tables of 100,000 and 1,000,000 rows, read, decoded and predicted a chunk at a time.

It builds, in ``--work-dir`` (default: a temporary folder, deleted at the end):

- ``text-1m/``: a folder of Parquet shards (8 files, row groups of 16,384 rows) of 1,000,000
  rows: a short text whose words hint at the label, two numbers, and the label (3 classes);
  ``text-100k/``: 100,000 rows made and sharded the same way;
- ``images-100k/``: 100,000 rows of a 28x28 PNG file each (``img/``, a class pattern plus
  noise), a number and the label.

It trains a small model on the first 2,000 rows of each kind (seconds), then runs
``polymodal predict`` on each table in a fresh process, so that neither training nor table
generation counts, and prints its rows/s, wall time and peak RSS (``ru_maxrss``), and the
peak RSS of the training process beside them. ``--whole`` also predicts the text tables the
way a table is read when it cannot be streamed (the whole frame in memory, then
``Predictor.predict_report``; a fresh process too), for comparison.

    .venv/bin/python bench/scale.py
    .venv/bin/python bench/scale.py --work-dir /tmp/scale --keep --only text --whole

Timings depend on what else runs on the machine: quote them with the date and the machine.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("apple", "brick", "cloud")
WORDS = [f"w{i}" for i in range(400)]  # filler words, shared by every class
HINTS = {c: [f"{c}{i}" for i in range(20)] for c in CLASSES}  # words only one class uses
SHARDS = 8
ROW_GROUP = 16_384
TRAIN_ROWS = 2_000
TEXT_CONFIG = {
    "label": "label", "seed": 0, "columns": {"text": "text"},
    "text": {"preprocess": {"tokenizer": "word", "vocab_size": 2000, "max_length": 16},
             "encoder": {"name": "gru", "embed_dim": 32, "hidden_size": 32}},
    "fusion": {"name": "concat", "hidden": 64},
    "training": {"max_epochs": 2, "batch_size": 64, "progress_bar": False, "precision": "32"},
}
IMAGE_CONFIG = {
    "label": "label", "seed": 0, "columns": {"image": "image"},
    "image": {"preprocess": {"size": 28, "augment": False}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    "fusion": {"name": "concat", "hidden": 64},
    "training": {"max_epochs": 2, "batch_size": 64, "progress_bar": False, "precision": "32"},
}


def text_rows(start: int, n: int) -> pd.DataFrame:
    """Rows ``start .. start + n`` of the text table (the same rows whatever ``n``)."""
    rng = np.random.default_rng(start)
    label = rng.integers(0, 3, n)
    words = rng.integers(0, len(WORDS), (n, 6))
    hints = rng.integers(0, 20, n)
    text = [" ".join([WORDS[w] for w in ws[:5]] + [HINTS[CLASSES[c]][h]] + [WORDS[ws[5]]])
            for ws, c, h in zip(words, label, hints)]
    return pd.DataFrame({"text": text, "x1": rng.normal(label, 1.0), "x2": rng.uniform(0, 1, n),
                         "label": np.array(CLASSES, dtype=object)[label]})


def write_shards(folder: Path, rows: int, make) -> Path:
    """``rows`` rows made by ``make(start, n)`` as ``SHARDS`` Parquet files of ``ROW_GROUP``-row groups."""
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-rows // SHARDS)
    for k, start in enumerate(range(0, rows, per)):
        frame = make(start, min(per, rows - start))
        frame.to_parquet(folder / f"part-{k:03d}.parquet", row_group_size=ROW_GROUP, index=False)
    return folder


def image_rows(work: Path, rows: int) -> Path:
    """The image table: ``rows`` PNG files under ``work/img`` and their Parquet shards."""
    from PIL import Image

    img = work / "img"
    img.mkdir(parents=True, exist_ok=True)
    base = np.zeros((3, 28, 28))
    base[0, :, 10:18], base[1, 10:18, :], base[2] = 200, 200, np.eye(28)[::-1] * 255

    def make(start: int, n: int) -> pd.DataFrame:
        rng = np.random.default_rng(start)
        label = rng.integers(0, 3, n)
        paths = []
        for i, c in enumerate(label):
            pixels = np.clip(base[c] + rng.normal(0, 40, (28, 28)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(img / f"{start + i:06d}.png")
            paths.append(f"../img/{start + i:06d}.png")  # relative to the shards' folder
        return pd.DataFrame({"image": paths, "x1": rng.normal(label, 1.0),
                             "label": np.array(CLASSES, dtype=object)[label]})

    return write_shards(work / "images-100k", rows, make)


def train(config: dict, table: Path, out: Path) -> None:
    from polymodal import Predictor

    frame = next(iter(_first_rows(table, TRAIN_ROWS)))
    start = time.perf_counter()
    predictor = Predictor(config=config, verbose=False).fit(frame)
    predictor.save(out)
    print(f"  trained on {TRAIN_ROWS:,} rows in {time.perf_counter() - start:.1f}s (tuning accuracy "
          f"{predictor.metrics_['accuracy']:.3f}) -> {out}", flush=True)


def _first_rows(table: Path, n: int):
    from polymodal.data.chunks import open_chunked

    stream = open_chunked(table)
    for chunk in stream.chunks(0, n, chunk_rows=n):
        frame = chunk.frame.copy()
        if "image" in frame:  # a DataFrame's paths are relative to the current folder
            frame["image"] = [str((stream.base_dir / p).resolve()) for p in frame["image"]]
        yield frame


def measure(model: Path, table: Path, out: Path, chunk_rows: int, mode: str = "stream") -> dict:
    """``polymodal predict`` (or, ``mode="whole"``, a prediction of the table read whole) in a
    fresh process: its rows/s, wall seconds and peak RSS."""
    result = subprocess.run([sys.executable, __file__, "--child", mode, str(model), str(table), str(out),
                             str(chunk_rows)], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def child(mode: str, model: str, table: str, out: str, chunk_rows: str) -> None:
    """The measured process: load the model, predict the table into ``out``, report."""
    from typer.testing import CliRunner

    from polymodal import Predictor
    from polymodal.cli import app
    from polymodal.data.tables import read_table

    start = time.perf_counter()
    if mode == "whole":
        report = Predictor.load(model).predict_report(read_table(table))  # a Table: read and decoded whole
        pd.DataFrame({"predicted": report.predictions}).to_csv(out, index_label="row")
    else:
        result = CliRunner().invoke(app, ["predict", model, "--data", table, "--out", out, "--chunk-rows", chunk_rows])
        if result.exit_code != 0:
            raise SystemExit(f"predict failed: {result.output}")
    seconds = time.perf_counter() - start
    rows = sum(1 for _ in open(out)) - 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    print(json.dumps({"rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds),
                      "peak_rss_mib": round(peak)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--only", choices=("text", "images"), default=None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--image-rows", type=int, default=100_000)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    parser.add_argument("--whole", action="store_true", help="also predict the text tables read whole")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="polymodal-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        if args.only in (None, "text"):
            start = time.perf_counter()
            big = write_shards(work / "text-1m", args.rows, text_rows)
            small = write_shards(work / "text-100k", args.rows // 10, text_rows)
            print(f"text tables written in {time.perf_counter() - start:.1f}s", flush=True)
            train(TEXT_CONFIG, small, work / "text-model")
            for mode in ("stream", "whole") if args.whole else ("stream",):
                for table in (small, big):
                    figures = measure(work / "text-model", table, work / "predictions.csv", args.chunk_rows, mode)
                    results.append((f"text ({mode})", figures))
                    print(f"  text ({mode}) {figures}", flush=True)
        if args.only in (None, "images"):
            start = time.perf_counter()
            images = image_rows(work, args.image_rows)
            print(f"image table written in {time.perf_counter() - start:.1f}s", flush=True)
            train(IMAGE_CONFIG, images, work / "image-model")
            figures = measure(work / "image-model", images, work / "predictions.csv", args.chunk_rows)
            results.append(("image (stream)", figures))
            print(f"  image (stream) {figures}", flush=True)
        training_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n{'table':<15} {'rows':>10} {'rows/s':>8} {'seconds':>8} {'peak RSS':>10}")
        for name, f in results:
            print(f"{name:<15} {f['rows']:>10,} {f['rows_per_s']:>8,} {f['seconds']:>8} {f['peak_rss_mib']:>6,} MiB")
        print(f"(this process, which generated the tables and trained: peak RSS {training_peak:,.0f} MiB; "
              f"chunks of {args.chunk_rows:,} rows)")
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
    else:
        main()
