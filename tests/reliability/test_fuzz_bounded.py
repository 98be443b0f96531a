"""The mutation fuzzer (bench/fuzz.py), bounded to a few hundred inputs, as CI runs it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "bench" / "fuzz.py"


@pytest.mark.slow
def test_bounded_fuzz_finds_no_failure(data_dir, tmp_path):
    env = {**os.environ, "POLYMODAL_DATA": str(data_dir), "PYTHONWARNINGS": "ignore",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(FUZZ), "--inputs", "300", "--damaged", "100", "--seed", "1", "--timeout", "60",
                             "--keep", str(tmp_path / "failures")],
                            capture_output=True, text=True, env=env, timeout=1200)
    report = result.stdout + result.stderr[-3000:]
    assert re.search(r"total\s+300\s", result.stdout), report
    assert "non-PolymodalError failures: 0" in result.stdout, report
    assert "PolymodalErrors with an unhelpful message: 0" in result.stdout, report
    assert re.search(r"damaged folders \(manifest recomputed\): 100 cases", result.stdout), report
    assert "damaged: non-PolymodalError failures: 0" in result.stdout, report
    assert result.returncode == 0, report
