"""What a failed fit leaves behind. `polymodal fit --out model` keeps its per-epoch checkpoints
in ``model.partial/``. A fit that fails before its first epoch has ended (a bad input found
while loading, after the run had started) must leave neither ``model.partial/`` nor a model
directory. A fit that fails later keeps the checkpoint on purpose, and says where it is and how
to resume or delete it. (A diverged fit: ``test_silent_failures.py``.)"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import yaml

from faults import disk_full_on_call
from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.errors import DataError, ModelDirError
from polymodal.training import checkpoint as checkpoint_module

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = {**FAST, "training": {**FAST["training"], "max_epochs": 3, "patience": 10}}


def test_a_bad_input_found_while_loading_leaves_no_partial_folder(tmp_path):
    frame = make_table(tmp_path, n=30)
    frame.loc[5, "photo"] = "img/missing.png"
    frame.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    result = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "fit", "--train", str(tmp_path / "train.csv"), "--label", "label",
         "--config", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "model")],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
        timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "row 5: img/missing.png: file not found" in errors[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "img", "train.csv"]


def test_a_failure_after_a_checkpoint_says_where_it_is_kept_and_an_early_failure_keeps_it(tmp_path, caplog,
                                                                                           monkeypatch):
    frame = make_table(tmp_path, n=30)
    frame.to_csv(tmp_path / "train.csv", index=False)
    folder = tmp_path / "model.partial"
    disk_fills_at_epoch_2 = disk_full_on_call(checkpoint_module.save_file, 2)

    with monkeypatch.context() as m, caplog.at_level(logging.WARNING, logger="polymodal"):
        m.setattr(checkpoint_module, "save_file", disk_fills_at_epoch_2)
        with pytest.raises(ModelDirError, match="No space left on device"):
            Predictor(label="label", config=CONFIG, verbose=False).fit(tmp_path / "train.csv", checkpoint_dir=folder)
    kept = [r.getMessage() for r in caplog.records if "is kept in" in r.getMessage()]
    assert kept == [f"Training stopped (ModelDirError); the checkpoint of epoch 1 is kept in {folder}: run the "
                    "same command with --resume (resume=True) to continue from it, or delete that folder."]
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.safetensors", "preprocessors", "progress.json", "run.json"]

    # A new run into the same folder that fails before its first epoch changes nothing there.
    broken = frame.copy()
    broken.loc[3, "photo"] = "img/missing.png"
    broken.to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(DataError, match="file not found"):
        Predictor(label="label", config=CONFIG, verbose=False).fit(tmp_path / "broken.csv", checkpoint_dir=folder)
    assert json.loads((folder / "progress.json").read_text())["epoch"] == 1

    resumed = Predictor(label="label", config=CONFIG, verbose=False).fit(
        tmp_path / "train.csv", checkpoint_dir=folder, resume=True)
    assert len(resumed.history_) == 3
    assert json.loads((folder / "progress.json").read_text())["epoch"] == 3
