"""Per-epoch checkpoints and resuming, in process (the SIGKILL test runs the CLI)."""
from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
import torch

from faults import disk_full_on_call
from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.modalities.text.preprocess import TextPreprocessor
from polymodal.errors import ConfigError, ModelDirError
from polymodal.training import resume as resume_module

CONFIG = {**FAST, "training": {**FAST["training"], "max_epochs": 4, "patience": 10}}


class Interrupted(Exception):
    pass


@pytest.fixture()
def train_csv(tmp_path):
    make_table(tmp_path, n=60).to_csv(tmp_path / "train.csv", index=False)
    return tmp_path / "train.csv"


def _interrupt_after(monkeypatch, epoch: int) -> None:
    original = resume_module.RunDirectory.epoch_saved

    def saved_then_die(self, number, *args, **kwargs):
        original(self, number, *args, **kwargs)
        if number == epoch:
            raise Interrupted(f"killed after epoch {number}")

    monkeypatch.setattr(resume_module.RunDirectory, "epoch_saved", saved_then_die)


def _same_run(a: Predictor, b: Predictor) -> None:
    columns = [c for c in a.history_.columns if c != "seconds"]
    pd.testing.assert_frame_equal(a.history_[columns], b.history_[columns])
    assert a.metrics_ == b.metrics_
    for (name, x), (_, y) in zip(a.model_.state_dict().items(), b.model_.state_dict().items()):
        assert torch.equal(x, y), name


def test_resumed_run_ends_like_an_uninterrupted_one(train_csv, tmp_path, monkeypatch):
    whole = Predictor(label="label", config=CONFIG, verbose=False).fit(train_csv)
    folder = tmp_path / "run.partial"
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(Interrupted):
            Predictor(label="label", config=CONFIG, verbose=False).fit(train_csv, checkpoint_dir=folder)
    progress = json.loads((folder / "progress.json").read_text())
    assert progress["epoch"] == 2 and not progress["stopped"] and "val_loss" in progress["metrics"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.safetensors", "preprocessors", "progress.json", "run.json"]

    def refuse(*args, **kwargs):
        raise AssertionError("a resumed run must not unpickle or refit")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(TextPreprocessor, "fit", refuse)  # the interrupted run's tokenizer is reused
    resumed = Predictor(label="label", config=CONFIG, verbose=False).fit(
        train_csv, checkpoint_dir=folder, resume=True)
    _same_run(whole, resumed)


def test_an_early_stopped_run_does_not_train_on_when_resumed(train_csv, tmp_path):
    config = {**CONFIG, "training": {**CONFIG["training"], "max_epochs": 30, "patience": 1,
                                     "monitor": "val_accuracy", "learning_rate": 0.01}}
    folder = tmp_path / "run.partial"
    first = Predictor(label="label", config=config, verbose=False).fit(train_csv, checkpoint_dir=folder)
    assert len(first.history_) < 30  # early stopping ended it
    assert json.loads((folder / "progress.json").read_text())["stopped"] is True
    again = Predictor(label="label", config=config, verbose=False).fit(
        train_csv, checkpoint_dir=folder, resume=True)
    _same_run(first, again)


def test_a_different_run_is_not_resumed(train_csv, tmp_path, monkeypatch):
    folder = tmp_path / "run.partial"
    with monkeypatch.context() as m:
        _interrupt_after(m, 1)
        with pytest.raises(Interrupted):
            Predictor(label="label", config=CONFIG, verbose=False).fit(train_csv, checkpoint_dir=folder)
    other = {**CONFIG, "training": {**CONFIG["training"], "learning_rate": 0.01}}
    with pytest.raises(ConfigError, match="belongs to a different run: config \\(training\\)"):
        Predictor(label="label", config=other, verbose=False).fit(train_csv, checkpoint_dir=folder, resume=True)
    frame = pd.read_csv(train_csv).iloc[:-3]
    frame.to_csv(train_csv, index=False)
    with pytest.raises(ConfigError, match="different run: .*train"):
        Predictor(label="label", config=CONFIG, verbose=False).fit(train_csv, checkpoint_dir=folder, resume=True)
    # A speed-only option may change.
    quiet = {**CONFIG, "training": {**CONFIG["training"], "load_threads": 1}}
    make_table(train_csv.parent, n=60).to_csv(train_csv, index=False)
    Predictor(label="label", config=quiet, verbose=False).fit(train_csv, checkpoint_dir=folder, resume=True)


def test_resume_without_a_checkpoint_starts_fresh_and_plain_rerun_warns(train_csv, tmp_path, caplog):
    folder = tmp_path / "run.partial"
    with caplog.at_level(logging.INFO, logger="polymodal"):
        Predictor(label="label", config=CONFIG).fit(train_csv, checkpoint_dir=folder, resume=True)
    assert "No checkpoint to resume" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="polymodal"):
        Predictor(label="label", config=CONFIG).fit(train_csv, checkpoint_dir=folder)
    assert "holds a checkpoint of an unfinished run (epoch 4); starting over" in caplog.text


def test_checkpoint_folder_misuse(train_csv, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("precious")
    with pytest.raises(ModelDirError, match="already holds other files \\(thesis.tex\\)"):
        Predictor(label="label", config=CONFIG, verbose=False).fit(train_csv, checkpoint_dir=tmp_path / "busy")
    assert (tmp_path / "busy" / "thesis.tex").read_text() == "precious"
    with pytest.raises(ConfigError, match="resume=True needs checkpoint_dir"):
        Predictor(label="label", config=CONFIG, verbose=False).fit(train_csv, resume=True)


def test_discard_removes_only_run_files(tmp_path):
    folder = tmp_path / "run.partial"
    run = resume_module.RunDirectory(folder, resume=False, fingerprint={"x": 1})
    run.epoch_saved(1, False, {"val_loss": 0.5}, 1.0)
    resume_module.discard_run(folder)
    assert not folder.exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    resume_module.discard_run(tmp_path / "mine")  # no run.json: not a run folder, untouched
    assert (tmp_path / "mine" / "keep.txt").exists()


def test_a_full_disk_mid_training_stops_clearly_and_loses_nothing(train_csv, tmp_path, monkeypatch):
    from polymodal.training import checkpoint as checkpoint_module

    whole = Predictor(label="label", config=CONFIG, verbose=False).fit(train_csv)
    folder = tmp_path / "run.partial"
    disk_fills_at_epoch_3 = disk_full_on_call(checkpoint_module.save_file, 3)

    with monkeypatch.context() as m:
        m.setattr(checkpoint_module, "save_file", disk_fills_at_epoch_3)
        with pytest.raises(ModelDirError, match="No space left on device; the previous one"):
            Predictor(label="label", config=CONFIG, verbose=False).fit(train_csv, checkpoint_dir=folder)
    assert json.loads((folder / "progress.json").read_text())["epoch"] == 2
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left behind
    resumed = Predictor(label="label", config=CONFIG, verbose=False).fit(
        train_csv, checkpoint_dir=folder, resume=True)
    _same_run(whole, resumed)
