"""Experiment logs (``training.logger``): a real short fit with each of Lightning's loggers writes
the per-epoch values, the config and the final tuning scores; a missing extra is a ConfigError."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from polymodal import Predictor
from polymodal.config import TrainingConfig
from polymodal.errors import ConfigError
from polymodal.training.loggers import check_logger
from synthetic import FAST, make_table

pytestmark = pytest.mark.usefixtures("one_thread")

EPOCHS = 3


def _fit(folder: Path, **training) -> Predictor:
    make_table(folder, n=30).to_csv(folder / "train.csv", index=False)
    config = {**FAST, "training": {**FAST["training"], "max_epochs": EPOCHS, "patience": 10,
                                   "log_dir": str(folder / "logs"), **training}}
    return Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")


def _same(logged: list[float], history: pd.Series) -> None:
    assert logged == pytest.approx(history.tolist(), rel=1e-6)


def test_csv_logs_every_epoch_the_config_and_the_final_scores(tmp_path):
    predictor = _fit(tmp_path, logger="csv")
    run = tmp_path / "logs" / "version_0"
    metrics = pd.read_csv(run / "metrics.csv")
    epochs = metrics.dropna(subset=["epoch"]).groupby("epoch").first()  # train and val rows of one epoch
    history = predictor.history_
    assert epochs.index.tolist() == [e - 1 for e in history["epoch"]]  # Lightning counts epochs from 0
    for column in ("train_loss", "val_loss", "val_accuracy"):
        _same(epochs[column].tolist(), history[column])
    final = metrics.dropna(subset=["tuning_accuracy"])
    assert len(final) == 1
    assert final["tuning_accuracy"].iloc[0] == pytest.approx(predictor.metrics_["accuracy"])
    assert final["tuning_f1_macro"].iloc[0] == pytest.approx(predictor.metrics_["f1_macro"])
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["label"] == "label" and hparams["seed"] == 0
    assert hparams["training"]["max_epochs"] == EPOCHS and hparams["training"]["logger"] == "csv"
    assert hparams["image"]["encoder"]["name"] == "cnn"


def test_tensorboard_logs_every_epoch_the_config_and_the_final_scores(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    predictor = _fit(tmp_path, logger="tensorboard")
    run = tmp_path / "logs" / "version_0"
    events = EventAccumulator(str(run))
    events.Reload()
    history = predictor.history_
    for tag in ("train_loss", "val_loss", "val_accuracy"):
        _same([e.value for e in events.Scalars(tag)], history[tag])
    assert events.Scalars("tuning_accuracy")[-1].value == pytest.approx(predictor.metrics_["accuracy"])
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # the HParams tab
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["label"] == "label" and hparams["training"]["max_epochs"] == EPOCHS


def test_mlflow_logs_a_run_to_an_offline_file_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # nothing leaves the machine
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    predictor = _fit(tmp_path, logger="mlflow", experiment="shapes")
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # put back as it was

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # reading the file store back, as MLflow 3 asks
    client = MlflowClient((tmp_path / "logs" / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("shapes").experiment_id])
    history = predictor.history_
    for key in ("train_loss", "val_loss", "val_accuracy"):
        points = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        _same([m.value for m in points], history[key])
    assert run.data.metrics["tuning_accuracy"] == pytest.approx(predictor.metrics_["accuracy"])
    assert run.data.params["label"] == "label" and run.data.params["training/max_epochs"] == str(EPOCHS)
    assert run.data.params["image/encoder/name"] == "cnn"
    assert run.info.status == "FINISHED"


def test_none_writes_no_log(tmp_path):
    _fit(tmp_path, logger="none")
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("logger, modules", [("tensorboard", ["tensorboard", "tensorboardX"]),
                                             ("mlflow", ["mlflow"])])
def test_a_logger_whose_extra_is_missing_is_a_config_error_naming_the_extra(logger, modules, monkeypatch):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as when it is not installed
    with pytest.raises(ConfigError, match=rf"pip install 'polymodal\[{logger}\]'"):
        check_logger(TrainingConfig(logger=logger))
    check_logger(TrainingConfig(logger="csv"))  # Lightning's own CSV writer needs nothing more


def test_a_fit_with_a_missing_extra_stops_before_training(tmp_path, monkeypatch):
    import lightning as L

    monkeypatch.setitem(sys.modules, "mlflow", None)
    trained = []
    monkeypatch.setattr(L.Trainer, "fit", lambda *args, **kwargs: trained.append(1))
    with pytest.raises(ConfigError, match=r"training.logger: mlflow needs the mlflow package.*polymodal\[mlflow\]"):
        _fit(tmp_path, logger="mlflow")
    assert not trained and not (tmp_path / "logs").exists()


def test_an_unusable_mlflow_store_is_a_config_error(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    with pytest.raises(ConfigError, match="training.mlflow_tracking_uri"):
        _fit(tmp_path, logger="mlflow", mlflow_tracking_uri="nosuchscheme://here")


def test_mlflow_param_keys_keep_to_the_characters_mlflow_accepts():
    from polymodal.training.loggers import _mlflow_keys

    flat = _mlflow_keys({"columns": {"price (€)": "numeric"}, "seed": 0, "fusion": {"name": "concat"}})
    assert flat == {"columns/price ___": "numeric", "seed": 0, "fusion/name": "concat"}
