"""A fit that streams its table (``training.stream``): peak memory and rows/s of one epoch over
Parquet tables of 100,000 and 1,000,000 rows (a short text, two numbers, the label; the tables
of ``bench/scale.py``).

Each fit runs in a fresh process (``polymodal fit --config``), so table generation does not
count; it prints the fit's wall time, training rows/s, the tuning accuracy and the process's
peak RSS (``ru_maxrss`` of the child).

    .venv/bin/python bench/scale_fit.py
    .venv/bin/python bench/scale_fit.py --work-dir /tmp/scale --keep --rows 100000

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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import TEXT_CONFIG, text_rows, write_shards  # noqa: E402  (the same generated tables)

ROOT = Path(__file__).resolve().parents[1]


def fit_once(table: Path, rows: int, work: Path) -> dict:
    config = json.loads(json.dumps(TEXT_CONFIG))
    config["training"].update(max_epochs=1, batch_size=256, stream="on", threads=2, learning_rate=3e-3)
    path = work / "stream.yaml"
    path.write_text(yaml.safe_dump(config))
    out = work / f"model-{rows}"
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "polymodal"), "fit", "--train", str(table), "--config",
                          str(path), "--out", str(out)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(run.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    info = json.loads((out / "metrics.json").read_text())["fit"]
    return {"rows": rows, "seconds": seconds, "train_rows": info["train_rows"],
            "rows_per_s": info["train_rows"] / info["fit_seconds"], "accuracy": summary["tuning"]["accuracy"],
            "peak_rss_gb": max(peak, before) / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="polymodal-scale-fit-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for rows in args.rows:  # smallest first: ru_maxrss of the children only grows
            table = work / f"text-{rows}"
            if not table.exists():
                write_shards(table, rows, text_rows)
            r = fit_once(table, rows, work)
            print(f"streamed fit, {rows:>9,} rows: {r['seconds']:6.1f}s wall, {r['rows_per_s']:7,.0f} training "
                  f"rows/s ({r['train_rows']:,} rows, 1 epoch), tuning accuracy {r['accuracy']:.3f}, "
                  f"peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
