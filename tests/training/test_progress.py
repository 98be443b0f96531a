"""The progress of a fit goes to stderr: a bar at a terminal (epochs counted from 1), one line per
epoch elsewhere; stdout keeps only the command's own output (``polymodal fit ... | jq``)."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from polymodal import Predictor
from polymodal.training import progress
from polymodal.training.progress import EpochLines, StderrProgressBar, progress_callbacks
from synthetic import FAST, make_table

pytestmark = pytest.mark.usefixtures("one_thread")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_display_follows_the_stream_and_the_setting():
    assert progress_callbacks(False, _Terminal()) == (False, [])
    bar, callbacks = progress_callbacks(True, _Terminal())
    assert bar and [type(c) for c in callbacks] == [StderrProgressBar]
    piped = io.StringIO()
    bar, callbacks = progress_callbacks(True, piped)
    assert not bar and [type(c) for c in callbacks] == [EpochLines] and callbacks[0].stream is piped


def test_the_bar_is_on_stderr_and_counts_epochs_from_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "_interactive", lambda stream: True)  # as at a terminal
    make_table(tmp_path, n=30).to_csv(tmp_path / "train.csv", index=False)
    config = {**FAST, "training": {**FAST["training"], "max_epochs": 2, "patience": 10, "progress_bar": True,
                                   "logger": "none"}}
    Predictor(label="label", config=config, verbose=False).fit(tmp_path / "train.csv")
    out, err = capsys.readouterr()
    assert out == ""
    assert "Epoch 2/2" in err and "Epoch 1/2" in err and "Epoch 0" not in err


def test_cli_fit_prints_only_json_on_stdout_and_one_line_per_epoch_on_stderr(tmp_path):
    make_table(tmp_path, n=30).to_csv(tmp_path / "train.csv", index=False)
    config = {**FAST, "training": {**FAST["training"], "max_epochs": 2, "patience": 10}}
    del config["training"]["progress_bar"]  # the default: on
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "fit", "--train", "train.csv", "--label", "label",
         "--config", "config.yaml", "--out", "model"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert summary["model"] == "model" and "accuracy" in summary["tuning"]
    lines = [line for line in result.stderr.splitlines() if line.startswith("Epoch ")]
    assert len(lines) == 2, result.stderr
    for k, line in enumerate(lines, start=1):
        assert re.fullmatch(rf"Epoch {k}/2: train_loss [\d.]+, val_loss [\d.]+, .*val_accuracy [\d.]+ \([\d.]+s\)",
                            line), line
    logs = tmp_path / "polymodal-logs" / "version_0"  # the default log_dir, in the working directory
    assert f"Logs: {logs}" in result.stderr.splitlines()
    assert (logs / "metrics.csv").is_file()


@pytest.mark.slow
def test_a_two_process_fit_writes_one_log_and_prints_each_epoch_once(tmp_path):
    make_table(tmp_path, n=40).to_csv(tmp_path / "train.csv", index=False)
    config = {**FAST, "training": {**FAST["training"], "max_epochs": 2, "patience": 10, "progress_bar": True,
                                   "devices": 2, "batch_size": 8}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "fit", "--train", "train.csv", "--label", "label",
         "--config", "config.yaml", "--out", "model"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    json.loads(result.stdout)
    assert [line[:9] for line in result.stderr.splitlines() if line.startswith("Epoch ")] == ["Epoch 1/2", "Epoch 2/2"]
    assert result.stderr.count("Logs: ") == 1
    (run,) = (tmp_path / "polymodal-logs").iterdir()  # rank 0's, alone
    metrics = pd.read_csv(run / "metrics.csv")
    assert sorted(metrics["epoch"].dropna().unique()) == [0, 1] and metrics["tuning_accuracy"].notna().sum() == 1
