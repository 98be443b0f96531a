"""Distributed data-parallel training on CPU processes (Lightning's DDP over gloo), end to end.

``polymodal fit --devices 2`` on the real av-digits table (spoken + handwritten digits): Lightning
starts the second process by rerunning the command; the two train one model on halves of
each epoch. The saved model loads in one process and predicts; its test accuracy is within
2 points of a one-process fit with the same global batch (2 x 32 rows against 1 x 64). A
2-process run killed with SIGKILL (both processes) inside epoch 2 resumes with ``--resume``
and ends exactly where an uninterrupted 2-process run ends.
"""
from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kill import cli, env, kill_during_epoch_2, result
from polymodal import Predictor
from polymodal.datasets.av_digits import build_av_digits

pytestmark = pytest.mark.slow

EPOCHS = 4


def _config(tmp: Path, devices: int, batch_size: int) -> Path:
    config = yaml.safe_load((resources.files("polymodal") / "configs" / "av_digits.yaml").read_text())
    config["training"].update(max_epochs=EPOCHS, batch_size=batch_size, devices=devices, progress_bar=False,
                              precision="32", threads=1, load_threads=1)  # the same sums in every run
    path = tmp / f"config-{devices}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _fit(tables: dict, config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    run = subprocess.run(_command(tables, config, out, *extra), capture_output=True, text=True, env=env(),
                         timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    return run


def _command(tables: dict, config: Path, out: Path, *extra: str) -> list[str]:
    return cli("fit", "--train", str(tables["train"]), "--tuning", str(tables["val"]), "--config", str(config),
               "--out", str(out), *extra)


@pytest.fixture(scope="module")
def tables(tmp_path_factory, data_dir) -> dict:
    return build_av_digits(data_dir, tmp_path_factory.mktemp("av-digits"))


def test_two_processes_train_one_model_as_good_as_one_process(tables, tmp_path):
    two = _fit(tables, _config(tmp_path, 2, 32), tmp_path / "two")
    _fit(tables, _config(tmp_path, 1, 64), tmp_path / "one")

    # One summary on stdout and one progress log, though two processes trained.
    assert two.stdout.count('"model"') == 1
    assert two.stderr.count("Saved model to") == 1 and two.stderr.count("Trained ") == 1
    info = json.loads((tmp_path / "two" / "metrics.json").read_text())["fit"]
    assert info["world_size"] == 2 and info["global_batch_size"] == 64
    history = pd.read_csv(tmp_path / "two" / "history.csv")
    assert len(history) == EPOCHS

    test = pd.read_csv(tables["test"])
    scores = {}
    for name in ("two", "one"):
        predictor = Predictor.load(tmp_path / name)  # one process, as any user loads it
        predicted = predictor.predict(tables["test"])
        assert len(predicted) == len(test) and predicted.notna().all()
        scores[name] = predictor.evaluate(tables["test"])["accuracy"]
    assert scores["two"] > 0.9, scores
    assert abs(scores["two"] - scores["one"]) <= 0.02, scores


def test_two_processes_killed_mid_epoch_resume_where_they_stopped(tables, tmp_path):
    config = _config(tmp_path, 2, 32)
    model, partial = tmp_path / "m", tmp_path / "m.partial"
    kill_during_epoch_2(_command(tables, config, model), partial)
    assert not model.exists()
    assert (partial / "checkpoint.safetensors").is_file()

    resumed = _fit(tables, config, model, "--resume")
    assert "Resuming from the checkpoint of epoch 1" in resumed.stderr
    assert not partial.exists()

    _fit(tables, config, tmp_path / "whole")
    metrics_resumed, history_resumed = result(model)
    metrics_whole, history_whole = result(tmp_path / "whole")
    assert len(history_whole) == EPOCHS
    assert metrics_resumed == metrics_whole
    pd.testing.assert_frame_equal(history_resumed, history_whole)
