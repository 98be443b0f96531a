"""A training run killed with SIGKILL mid-epoch resumes and ends like an uninterrupted one.

Runs the CLI as the README does: ``polymodal fit ... --out m`` is killed once the checkpoint
of epoch 1 is on disk and epoch 2 is under way; ``polymodal fit ... --out m --resume``
finishes it; its metrics and history equal those of an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from synthetic import make_table

CONFIG = {
    "seed": 3,
    "text": {"encoder": {"name": "gru"}},
    "image": {"preprocess": {"size": 12}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    # Batches of 2: enough steps per epoch that a kill lands inside one.
    "training": {"max_epochs": 3, "batch_size": 2, "patience": 10, "progress_bar": False,
                 "precision": "32", "load_threads": 1},
}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "polymodal.cli", *args]


def _env() -> dict:
    # One thread: results do not depend on how busy the machine is.
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _kill_in_epoch_2(command: list[str], partial: Path) -> dict:
    """Start ``command``; SIGKILL it a third of an epoch after epoch 1's checkpoint lands."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    progress_file = partial / "progress.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if progress_file.is_file():
                progress = json.loads(progress_file.read_text())
                time.sleep(max(0.05, progress["epoch_seconds"] / 3))
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                return json.loads(progress_file.read_text())
            time.sleep(0.01)
        raise AssertionError(f"no checkpoint appeared; stderr: {proc.stderr.read().decode()[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _result(model: Path) -> tuple[dict, pd.DataFrame]:
    metrics = json.loads((model / "metrics.json").read_text())
    history = pd.read_csv(model / "history.csv").drop(columns=["seconds"])
    return metrics["tuning"], history


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    make_table(tmp_path, n=90).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    common = ["fit", "--train", str(tmp_path / "train.csv"), "--label", "label",
              "--config", str(tmp_path / "config.yaml")]
    model, partial = tmp_path / "m", tmp_path / "m.partial"

    for attempt in range(3):  # a busy machine may finish epoch 2 before the kill lands
        shutil.rmtree(partial, ignore_errors=True)
        progress = _kill_in_epoch_2(_cli(*common, "--out", str(model)), partial)
        if progress["epoch"] == 1:
            break
    assert progress["epoch"] == 1, "the kill never landed inside epoch 2"
    assert not model.exists()  # nothing half-written where the model goes
    assert (partial / "checkpoint.safetensors").is_file()

    resumed = subprocess.run(_cli(*common, "--out", str(model), "--resume"), capture_output=True,
                             text=True, env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from the checkpoint of epoch 1" in resumed.stderr
    assert not partial.exists()  # removed once the model directory is saved

    whole = subprocess.run(_cli(*common, "--out", str(tmp_path / "whole")), capture_output=True,
                           text=True, env=_env(), timeout=300)
    assert whole.returncode == 0, whole.stderr[-3000:]
    metrics_resumed, history_resumed = _result(model)
    metrics_whole, history_whole = _result(tmp_path / "whole")
    assert len(history_whole) == CONFIG["training"]["max_epochs"]
    assert metrics_resumed == metrics_whole
    pd.testing.assert_frame_equal(history_resumed, history_whole)
