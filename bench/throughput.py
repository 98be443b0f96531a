"""Training throughput: where each fit's time goes, beside the machine's limit.

For each model it prints the wall time, the decode + preprocessing time, the split of the
training epochs (``training.profile``: collate, forward, backward, optimizer, evaluation,
overhead), the training throughput in samples/s, and the achieved GFLOP/s of forward +
backward (the FLOPs of one training batch, counted by ``torch.utils.flop_counter``, times the
batches trained, over the forward and backward seconds), beside the fp32 and bf16 matmul
peaks measured at the start of the same run.

Models (``--only``):

- ``demo``: the ``polymodal demo`` config (``src/polymodal/configs/av_digits.yaml``) on
  av-digits;
- ``minilm``: all-MiniLM-L6-v2 fine-tuned on the emoji names (the fusion bench's text-only
  row; needs the ``minilm`` extra), scored on its test split; ``minilm-frozen-embeddings``:
  the same with ``tuning.embeddings: frozen``; ``minilm-grouped``: frozen embeddings and
  ``training.group_by_length``;
- ``scratch``: a word-embedding + BiLSTM text classifier trained from scratch on TREC;
- ``shell``: ``polymodal demo`` from the shell, ``--runs`` times: the median wall, test
  accuracy and peak RSS of each run.

``--contention`` runs ``polymodal demo`` from the shell quietly, then with two busy processes
(``python -c 'while True: pass'``) beside it, and prints both wall times and their ratio; then,
still beside them, the demo's fit in this process with ``training.threads: 2`` (a fixed count)
and ``auto``.

``--precision 32 bf16`` fits each model at each precision (default: the configs' own, ``auto``).
``--micro`` times the kept optimisations one against the other in one run: a training batch's
augmentation row by row and batched, an AdamW step over MiniLM-sized parameters per tensor
(``foreach``) and fused, a BiLSTM step in float32 and under bf16 autocast, and
``torch.compile`` of the demo model (its first step, compilation
included, against the eager and compiled steady steps).

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/throughput.py
    POLYMODAL_DATA=../shared/data .venv/bin/python bench/throughput.py --only shell --runs 3
    POLYMODAL_DATA=../shared/data .venv/bin/python bench/throughput.py --contention
    POLYMODAL_DATA=../shared/data .venv/bin/python bench/throughput.py --micro

Timings depend on what else runs on the machine: quote ratios from one run.
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fusion import EMOJI  # noqa: E402  (the emoji text-only row's settings)
from text_minilm import load_task  # noqa: E402

from polymodal import Predictor  # noqa: E402
from polymodal.data import Collator, MultimodalDataset  # noqa: E402
from polymodal.datasets.av_digits import build_av_digits  # noqa: E402
from polymodal.datasets.emoji import build_emoji  # noqa: E402
from polymodal.datasets.root import data_root  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "src" / "polymodal" / "configs" / "av_digits.yaml").read_text())
SCRATCH = {
    "label": "label", "columns": {"text": "text"},
    "text": {"encoder": {"name": "lstm"}},
    "training": {"max_epochs": 8, "batch_size": 64, "learning_rate": 0.003, "patience": 3},
}
PHASES = ("collate", "forward", "backward", "optimizer", "evaluation", "overhead")


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of ``n × n`` matmuls in ``dtype`` on this CPU, over about ``seconds``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(2):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - start) / 1e9


def step_flops(predictor: Predictor, table: Any, batch_size: int) -> tuple[float, int]:
    """FLOPs of forward + backward of one training batch of ``table``'s first rows, and its size."""
    fitted = predictor.fitted_
    loaded, target = fitted.load_inputs(_head(fitted, table, batch_size), labelled=True)
    batch = Collator(fitted.preprocessors)([MultimodalDataset(loaded, fitted.preprocessors, target)[i]
                                            for i in range(len(loaded))])
    model = fitted.model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        output, _ = model(batch)
        model.head.loss(output, batch["target"]).backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    return float(counter.get_total_flops()), len(loaded)


def _head(fitted: Any, table: Any, rows: int) -> Any:
    from polymodal.data.tables import Table

    read = fitted.read_table(table)
    return Table(read.frame.head(rows), read.base_dir, read.source)


def fit_one(name: str, config: dict[str, Any], train: Any, val: Any, test: Any, **training: Any) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["training"] = {**config.get("training", {}), "profile": True, "progress_bar": False, **training}
    start = time.perf_counter()
    predictor = Predictor(config=config).fit(train, tuning_data=val)
    wall = time.perf_counter() - start
    info = predictor.fit_info_
    split = info["profile"]
    accuracy = predictor.evaluate(test)["accuracy"]
    flops, size = step_flops(predictor, train, config["training"].get("batch_size", 32))
    samples = info["train_rows"] * info["epochs"]
    compute = split["forward"] + split["backward"]
    return {"model": name, "wall": wall, "load": info["load_seconds"], "split": split, "epochs": info["epochs"],
            "samples_per_s": samples / split["epochs"] if split["epochs"] else float("nan"),
            "gflops": flops / size * samples / compute / 1e9 if compute else float("nan"),
            "accuracy": accuracy, "precision": info["precision"], "parameters": info["parameters"]}


def show(row: dict[str, Any], peaks: dict[str, float]) -> None:
    s = row["split"]
    parts = ", ".join(f"{k} {s[k]:.1f}" for k in PHASES)
    peak = peaks["bf16" if row["precision"] == "bf16" else "fp32"]
    print(f"{row['model']}: wall {row['wall']:.1f} s (decode + preprocess {row['load']:.1f} s; epochs {s['epochs']:.1f} s: "
          f"{parts}); {row['epochs']} epochs, {s['steps']} steps; {row['samples_per_s']:,.0f} samples/s; "
          f"forward+backward {row['gflops']:.1f} GFLOP/s = {row['gflops'] / peak:.1%} of the {row['precision']} "
          f"matmul peak ({peak:,.0f}); test accuracy {row['accuracy']:.2%}; {row['parameters']:,} parameters",
          flush=True)


def shell_demo(data: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One ``polymodal demo`` from the shell: wall, test accuracy and the child's peak RSS."""
    exe = Path(sys.executable).with_name("polymodal")
    with tempfile.TemporaryDirectory(prefix="polymodal-demo-") as tmp:
        start = time.perf_counter()
        child = subprocess.Popen([str(exe), "demo", "--data-dir", str(data), "--out", str(Path(tmp) / "model")],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"polymodal demo failed ({status}):\n{out[-3000:]}")
    accuracy = float(re.search(r"accuracy ([0-9.]+)%", out).group(1))
    return {"wall": wall, "accuracy": accuracy, "rss_gb": usage.ru_maxrss / 1024 ** 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=["demo", "minilm", "scratch"],
                        choices=["demo", "minilm", "minilm-frozen-embeddings", "minilm-grouped", "scratch", "shell"])
    parser.add_argument("--runs", type=int, default=3, help="shell: how many demos")
    parser.add_argument("--contention", action="store_true", help="the demo quiet, then beside two busy processes")
    parser.add_argument("--precision", nargs="+", choices=["32", "bf16"], default=None)
    parser.add_argument("--micro", action="store_true", help="the kept optimisations against what they replaced")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "polymodal-bench-throughput")
    args = parser.parse_args()
    root = data_root(None)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak (2048², {torch.get_num_threads()} threads): fp32 {peaks['fp32']:,.0f} GFLOP/s, "
          f"bf16 {peaks['bf16']:,.0f} GFLOP/s", flush=True)
    if args.micro:
        micro(root)
        return
    if args.contention:
        quiet = shell_demo(root)
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            loaded = shell_demo(root)
            print(f"demo quiet: {quiet['wall']:.1f} s ({quiet['accuracy']:.2f}%); beside two busy processes: "
                  f"{loaded['wall']:.1f} s ({loaded['accuracy']:.2f}%); {loaded['wall'] / quiet['wall']:.2f}x",
                  flush=True)
            tables = build_av_digits(root, Path.home() / ".cache" / "polymodal" / "av-digits")
            for threads in (2, "auto"):
                row = fit_one(f"demo fit beside two busy processes, threads: {threads}", DEMO, str(tables["train"]),
                              str(tables["val"]), str(tables["test"]), threads=threads)
                print(f"{row['model']}: fit {row['wall']:.1f} s, test accuracy {row['accuracy']:.2%}", flush=True)
        finally:
            for p in busy:
                p.kill()
        return
    precisions = args.precision or [None]
    if "shell" in args.only:
        runs = [shell_demo(root) for _ in range(args.runs)]
        for r in runs:
            print(f"  polymodal demo: {r['wall']:.1f} s, test accuracy {r['accuracy']:.2f}%, peak RSS {r['rss_gb']:.2f} GB")
        print(f"polymodal demo from the shell: median {statistics.median(r['wall'] for r in runs):.1f} s over "
              f"{len(runs)} runs; peak RSS up to {max(r['rss_gb'] for r in runs):.2f} GB", flush=True)
    for precision in precisions:
        extra = {"precision": precision} if precision else {}
        if "demo" in args.only:
            tables = build_av_digits(root, Path.home() / ".cache" / "polymodal" / "av-digits")
            show(fit_one("demo (av-digits)", DEMO, str(tables["train"]), str(tables["val"]), str(tables["test"]),
                         **extra), peaks)
        for variant in ("minilm", "minilm-frozen-embeddings", "minilm-grouped"):
            if variant not in args.only:
                continue
            tables = build_emoji(root, args.work_dir / "emoji")
            config = copy.deepcopy(EMOJI)
            config["columns"] = {**config["columns"], "image": "ignore"}
            name = "MiniLM fine-tune (emoji names)"
            if variant != "minilm":
                config["text"]["tuning"]["embeddings"] = "frozen"
                name += ", embeddings frozen"
            if variant == "minilm-grouped":
                config["training"]["group_by_length"] = True
                name += ", batches grouped by length"
            show(fit_one(name, config, str(tables["train"]), str(tables["val"]), str(tables["test"]), **extra), peaks)
        if "scratch" in args.only:
            train, val, test = load_task(root, "trec")
            show(fit_one("BiLSTM from scratch (TREC)", SCRATCH, train, val, test, **extra), peaks)


def _per_call(fn: Any, repeat: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e3


def micro(root: Path) -> None:
    """Each kept optimisation against what it replaced, in one run (milliseconds)."""
    tables = build_av_digits(root, Path.home() / ".cache" / "polymodal" / "av-digits")
    config = copy.deepcopy(DEMO)
    config["training"] = {**config["training"], "max_epochs": 1, "progress_bar": False}
    predictor = Predictor(config=config).fit(str(tables["train"]), tuning_data=str(tables["val"]))
    fitted = predictor.fitted_
    loaded, target = fitted.load_inputs(_head(fitted, str(tables["train"]), 64), labelled=True)
    data = MultimodalDataset(loaded, fitted.preprocessors, target, augment=True)
    collate = Collator(fitted.preprocessors)
    rows = list(range(len(loaded)))
    per_row = _per_call(lambda: collate([data[i] for i in rows]), 20)
    batched = _per_call(lambda: collate(data.__getitems__(rows)), 20)
    print(f"augment + collate a batch of {len(rows)} av-digits rows: row by row {per_row:.1f} ms, "
          f"batched {batched:.1f} ms ({per_row / batched:.1f}x)", flush=True)
    sizes = [30522 * 384] + [384 * 384] * 24 + [384 * 1536] * 12 + [384] * 100  # about MiniLM's 22.7M
    params = [torch.nn.Parameter(torch.randn(n)) for n in sizes]
    for p in params:
        p.grad = torch.randn_like(p)
    steps = {}
    for kind, options in (("foreach", {"foreach": True}), ("fused", {"fused": True})):
        opt = torch.optim.AdamW(params, lr=1e-4, **options)
        steps[kind] = _per_call(opt.step, 5)
    print(f"AdamW step over {sum(sizes) / 1e6:.1f}M parameters: foreach {steps['foreach']:.1f} ms, fused "
          f"{steps['fused']:.1f} ms ({steps['foreach'] / steps['fused']:.1f}x)", flush=True)
    lstm = torch.nn.LSTM(128, 128, batch_first=True, bidirectional=True)
    x = torch.randn(64, 12, 128, requires_grad=True)  # a TREC-sized batch of embedded tokens

    def rnn_step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out, _ = lstm(x)
        out.float().sum().backward()

    rnn = {bf16: _per_call(lambda: rnn_step(bf16), 20) for bf16 in (True, False)}
    print(f"BiLSTM 128 training step (64 x 12 tokens): float32 {rnn[False]:.1f} ms, bf16 autocast "
          f"{rnn[True]:.1f} ms ({rnn[False] / rnn[True]:.2f}x)", flush=True)
    batch = collate(data.__getitems__(rows))
    model = fitted.model.train()

    def step(m: Any) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output, _ = m(batch)
            loss = model.head.loss(output, batch["target"])
        loss.backward()
        model.zero_grad(set_to_none=True)

    eager = _per_call(lambda: step(model), 10)
    compiled = torch.compile(model)
    start = time.perf_counter()
    step(compiled)
    first = time.perf_counter() - start
    steady = _per_call(lambda: step(compiled), 10)
    steps_per_fit = predictor.fit_info_["train_rows"] // 64 * DEMO["training"]["max_epochs"]
    saved = (eager - steady) / 1e3 * steps_per_fit
    print(f"torch.compile of the demo model (bf16 training step, batch 64): first step {first:.1f} s, then "
          f"{steady:.1f} ms against {eager:.1f} ms eager; over the demo's {steps_per_fit} steps it saves "
          f"{saved:.1f} s for {first:.1f} s of compiling", flush=True)


if __name__ == "__main__":
    main()
