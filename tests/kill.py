"""Killing a ``polymodal fit`` run with SIGKILL once its first epoch checkpoint is on disk
(shared by the resume tests)."""
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


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "polymodal.cli", *args]


def env() -> dict:
    # One thread: results do not depend on how busy the machine is.
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def kill_in_epoch_2(command: list[str], partial: Path) -> dict:
    """Start ``command``; SIGKILL it a third of an epoch after epoch 1's checkpoint lands.

    The kill goes to the command's whole process group: a DDP run's other processes die
    with it, as on a machine that loses power.
    """
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(),
                            start_new_session=True)
    progress_file = partial / "progress.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if progress_file.is_file():
                progress = json.loads(progress_file.read_text())
                time.sleep(max(0.05, progress["epoch_seconds"] / 3))
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
                return json.loads(progress_file.read_text())
            time.sleep(0.01)
        raise AssertionError(f"no checkpoint appeared; stderr: {proc.stderr.read().decode()[-2000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def result(model: Path) -> tuple[dict, pd.DataFrame]:
    metrics = json.loads((model / "metrics.json").read_text())
    history = pd.read_csv(model / "history.csv").drop(columns=["seconds"])
    return metrics["tuning"], history


def kill_during_epoch_2(command: list[str], partial: Path, tries: int = 3) -> dict:
    """``kill_in_epoch_2`` until the kill lands inside epoch 2 (a busy machine may finish it first)."""
    for _ in range(tries):
        shutil.rmtree(partial, ignore_errors=True)
        progress = kill_in_epoch_2(command, partial)
        if progress["epoch"] == 1:
            return progress
    raise AssertionError("the kill never landed inside epoch 2")
