#!/usr/bin/env bash
# The checks to run on a machine with a CUDA GPU, in one go (about 10 minutes):
#   1. the test suite with the GPU visible (everything must pass there as on a CPU);
#   2. a fit of the av-digits demo model on one GPU through the DDP strategy (NCCL), then the
#      same model loaded and evaluated on the CPU (a model trained on a GPU predicts anywhere);
#   3. the MiniLM fine-tune benchmark (bench/text_minilm.py --only fine-tune) on the GPU.
# Figures go to $OUT (default ./gpu-check) as text files; record them in docs/benchmarks.md.
#
#   POLYMODAL_DATA=../shared/data bash bench/gpu_check.sh
#
# Needs a CUDA build of torch in .venv (the CPU pin in constraints.txt does not have CUDA):
#   .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
PY=.venv/bin/python
: "${POLYMODAL_DATA:?set POLYMODAL_DATA to the benchmark data folder}"

$PY - <<'PY' | tee "$OUT/device.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
PY

timeout 420 $PY -m pytest -q -x -p no:cacheprovider 2>&1 | tail -30 | tee "$OUT/tests.txt"

WORK=$(mktemp -d)
$PY - "$WORK" <<'PY' 2>&1 | tee "$OUT/ddp_gpu.txt"
import sys, time, yaml
from importlib import resources
from pathlib import Path
from polymodal import Predictor
from polymodal.datasets.av_digits import build_av_digits

work = Path(sys.argv[1])
tables = build_av_digits(None, work / "av")
config = yaml.safe_load((resources.files("polymodal") / "configs" / "av_digits.yaml").read_text())
config["training"].update(accelerator="gpu", devices=1, strategy="ddp", precision="bf16", progress_bar=False)
start = time.perf_counter()
predictor = Predictor(config=config).fit(str(tables["train"]), tuning_data=str(tables["val"]))
print(f"fit on the GPU (DDP, 1 device, bf16): {time.perf_counter() - start:.1f}s, "
      f"{predictor.fit_info_['epochs']} epochs")
predictor.save(work / "model")
cpu = Predictor.load(work / "model")  # predicts on the CPU
print("test accuracy (loaded, predicted on the CPU):", round(cpu.evaluate(str(tables["test"]))["accuracy"], 4))
PY

timeout 300 $PY bench/text_minilm.py --only fine-tune 2>&1 | tail -12 | tee "$OUT/minilm.txt"
rm -rf "$WORK"
