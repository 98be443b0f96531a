"""Inference latency of an exported model under onnxruntime against PyTorch, one row and 256 rows.

Models (``--only``):

- ``demo``: the ``polymodal demo`` config (``src/polymodal/configs/av_digits.yaml``: an audio and
  an image CNN, concat fusion) on av-digits, trained ``--epochs`` epochs;
- ``minilm``: all-MiniLM-L6-v2 (frozen, feature cache off, so that both runtimes run the whole
  backbone) with a classification head, trained ``--epochs`` epochs on the first 512 SST-2
  training sentences (needs the ``minilm`` extra).

For each model it exports the network (``polymodal.export.export_onnx``), then times, on rows of
the test split, the network alone (a collated batch through ``task.batch_outputs`` in PyTorch,
through ``OnnxNetwork.run`` in onnxruntime: what ``runtime="onnx"`` replaces) and the whole
``predict_proba`` of 256 rows (reading, decoding and collating included, the same in both). Each
figure is the median over ``--repeats`` calls after ``--warmup`` calls, in milliseconds, with the
PyTorch / onnxruntime ratio and the largest difference of a probability. Both use the same number
of intra-op threads (``--threads``; default: PyTorch's).

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/onnx_latency.py
    POLYMODAL_DATA=../shared/data .venv/bin/python bench/onnx_latency.py --only demo --repeats 50

Timings depend on what else runs on the machine: quote ratios from one run.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_minilm import load_task  # noqa: E402
from throughput import DEMO  # noqa: E402  (the polymodal demo config)

from polymodal import Predictor  # noqa: E402
from polymodal.data import Collator, MultimodalDataset  # noqa: E402
from polymodal.datasets.av_digits import build_av_digits  # noqa: E402
from polymodal.datasets.root import data_root  # noqa: E402
from polymodal.export import export_onnx  # noqa: E402

MINILM = {
    "label": "label", "columns": {"text": "text"},
    "text": {"backbone": "minilm", "tuning": {"mode": "frozen", "pooling": "mean", "cache": "off"}},
    "training": {"batch_size": 64, "learning_rate": 3e-3, "precision": "32"},
}


def median_ms(call: Callable[[], Any], warmup: int, repeats: int) -> float:
    """The median wall time of ``call()`` in milliseconds, after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def batch_of(predictor: Predictor, table: pd.DataFrame) -> dict[str, Any]:
    """The collated batch of ``table``'s rows, as ``FittedModel.forward`` builds it."""
    fitted = predictor.fitted_
    loaded, _ = fitted.load_inputs(fitted.read_table(table))
    dataset = MultimodalDataset(loaded, fitted.preprocessors)
    return Collator(fitted.preprocessors)([dataset[i] for i in range(len(loaded))])


def compare(name: str, config: dict[str, Any], train: Any, val: Any, test: pd.DataFrame,
            args: argparse.Namespace, work: Path) -> None:
    slug = name.split()[0]
    start = time.perf_counter()
    directory = Predictor(config=config, verbose=False).fit(train, tuning_data=val).save(work / slug)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    graph = work / f"{slug}.onnx"
    description = export_onnx(Predictor.load(directory), graph, directory)
    export_s = time.perf_counter() - start
    size_mb = graph.stat().st_size / 1e6
    torch_model = Predictor.load(directory)
    onnx_model = Predictor.load(directory, runtime="onnx", onnx=graph)
    fitted, network = torch_model.fitted_, onnx_model.fitted_.runtime
    model = fitted.model.eval()
    print(f"\n{name}: fit {fit_s:.0f}s ({args.epochs} epochs), export {export_s:.1f}s "
          f"({description['exporter']} exporter, {size_mb:.1f} MB)")
    print(f"{'':<26}{'PyTorch ms':>11}{'onnxruntime ms':>16}{'ratio':>8}{'max |dp|':>10}")
    for rows in (1, 256):
        part = test.iloc[:rows]
        batch = batch_of(onnx_model, part)  # raw backbone inputs (no feature store) for both runtimes

        def run_torch() -> np.ndarray:
            with torch.no_grad():
                return fitted.task.batch_outputs(model, batch).numpy()

        worst = float(np.abs(run_torch() - network.run(batch)).max())
        mine = median_ms(run_torch, args.warmup, args.repeats)
        theirs = median_ms(lambda: network.run(batch), args.warmup, args.repeats)
        print(f"{f'network, {rows} row(s)':<26}{mine:>11.2f}{theirs:>16.2f}{mine / theirs:>8.2f}{worst:>10.1e}")
    part = test.iloc[:256]
    repeats = max(3, args.repeats // 10)
    mine = median_ms(lambda: torch_model.predict_proba(part), 1, repeats)
    theirs = median_ms(lambda: onnx_model.predict_proba(part), 1, repeats)
    worst = float(np.abs(torch_model.predict_proba(part).to_numpy() - onnx_model.predict_proba(part).to_numpy()).max())
    print(f"{'predict_proba, 256 rows':<26}{mine:>11.1f}{theirs:>16.1f}{mine / theirs:>8.2f}{worst:>10.1e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=["demo", "minilm"], choices=["demo", "minilm"])
    parser.add_argument("--data-dir", type=Path, default=None, help="benchmark data (default: $POLYMODAL_DATA)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of each model")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads of both runtimes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = data_root(args.data_dir)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads for both runtimes; "
          f"median of {args.repeats} calls after {args.warmup}")
    with tempfile.TemporaryDirectory(prefix="onnx-latency-") as tmp:
        work = Path(tmp)
        if "demo" in args.only:
            tables = build_av_digits(root, Path.home() / ".cache" / "polymodal" / "av-digits")
            config = copy.deepcopy(DEMO)
            config["training"] = {**config["training"], "max_epochs": args.epochs, "progress_bar": False}
            test = pd.read_csv(tables["test"])
            test["image"] = [str(Path(tables["test"]).parent / p) for p in test.image]
            compare("demo (av-digits)", config, str(tables["train"]), str(tables["val"]),
                    test.drop(columns=["label"]), args, work)
        if "minilm" in args.only:
            train, dev, test = load_task(root, "sst2")
            config = copy.deepcopy(MINILM)
            config["training"] = {**config["training"], "max_epochs": args.epochs, "progress_bar": False,
                                  "cache_dir": str(work / "cache")}
            compare("minilm (sst2)", config, train.head(512), dev.head(256), test.drop(columns=["label"]), args, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
