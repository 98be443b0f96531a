"""A training run killed with SIGKILL mid-epoch resumes and ends like an uninterrupted one.

Runs the CLI as the README does: ``polymodal fit ... --out m`` is killed once the checkpoint
of epoch 1 is on disk and epoch 2 is under way; ``polymodal fit ... --out m --resume``
finishes it; its metrics and history equal those of an uninterrupted run.
"""
from __future__ import annotations

import subprocess

import pandas as pd
import yaml

from kill import cli as _cli, env as _env, kill_during_epoch_2, result as _result
from synthetic import make_table

CONFIG = {
    "seed": 3,
    "text": {"encoder": {"name": "gru"}},
    "image": {"preprocess": {"size": 12}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    # Batches of 2: enough steps per epoch that a kill lands inside one.
    "training": {"max_epochs": 3, "batch_size": 2, "patience": 10, "progress_bar": False,
                 "precision": "32", "load_threads": 1, "threads": 1},  # the same threads: the same sums
}


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    make_table(tmp_path, n=90).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    common = ["fit", "--train", str(tmp_path / "train.csv"), "--label", "label",
              "--config", str(tmp_path / "config.yaml")]
    model, partial = tmp_path / "m", tmp_path / "m.partial"

    kill_during_epoch_2(_cli(*common, "--out", str(model)), partial)
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
