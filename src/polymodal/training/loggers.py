"""Experiment logs of a fit through Lightning's own loggers (``training.logger``).

``csv`` (the default) and ``tensorboard`` write ``<log_dir>[/<experiment>]/version_<n>/``;
``mlflow`` writes a run of the MLflow experiment ``experiment`` (default ``polymodal``) to
``training.mlflow_tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the offline file store
``file:<log_dir>/mlruns``; ``none`` writes nothing. Each run holds the per-epoch values the
training module logs (``train_loss``, ``val_loss``, ``val_<metric>``), the config as
hyperparameters, and the final tuning scores (``tuning_<metric>``, logged by
``log_final_metrics`` once the fit has scored its tuning rows). Only rank 0 of a DDP run writes
(Lightning's loggers write from rank 0 only; ``log_final_metrics`` asks ``polymodal.distributed``).
"""
from __future__ import annotations

import contextlib
import importlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger

from polymodal.config import Config, TrainingConfig
from polymodal.distributed import is_rank_zero
from polymodal.errors import ConfigError

__all__ = ["ExperimentLog", "check_logger", "log_final_metrics", "open_experiment"]

# training.logger → (modules, any one of which the logger writes through; the polymodal extra)
_NEEDS = {"tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"), "mlflow": (("mlflow",), "mlflow")}


@dataclass
class ExperimentLog:
    """The experiment log of one fit.

    Attributes:
        logger: the Lightning logger the Trainer writes to.
        where: what ``polymodal fit`` prints: the run's folder, or the MLflow run and its store.
        step: the last training step (set once training ends): where the final metrics go.
    """

    logger: Logger
    where: str
    step: int = 0


def check_logger(training: TrainingConfig) -> None:
    """Raise ``ConfigError`` when ``training.logger`` needs a package that is not installed."""
    if training.logger not in _NEEDS:
        return
    modules, extra = _NEEDS[training.logger]
    for module in modules:
        try:
            importlib.import_module(module)
            return
        except ImportError:
            continue
    raise ConfigError(f"training.logger: {training.logger} needs the {modules[0]} package, which is not "
                      f"installed. Install it with pip install 'polymodal[{extra}]', or set training.logger: "
                      "csv (or none).")


def open_experiment(training: TrainingConfig, seed: int) -> ExperimentLog | None:
    """The Lightning logger ``training.logger`` names (None for ``none``), with the training
    settings and the seed logged as its first hyperparameters.

    Raises:
        ConfigError: the logger's package is missing (see ``check_logger``), or MLflow cannot
            open its tracking store (a URI of an unknown scheme, a store it refuses).
    """
    check_logger(training)
    if training.logger == "none":
        return None
    log_dir = Path(training.log_dir).expanduser().absolute()
    name = training.experiment or ""
    if training.logger == "csv":
        # one write per logged epoch value: the file holds every finished epoch while training runs
        logger: Logger = CSVLogger(log_dir, name=name, flush_logs_every_n_steps=1)
    elif training.logger == "tensorboard":
        logger = TensorBoardLogger(log_dir, name=name, default_hp_metric=False)
    else:
        logger = _mlflow(training, log_dir)
    run = ExperimentLog(logger, _where(logger, training, log_dir) if is_rank_zero() else "")
    logger.log_hyperparams({"training": training.model_dump(mode="json"), "seed": seed})
    return run


def log_final_metrics(run: ExperimentLog | None, config: Config, metrics: Mapping[str, Any]) -> None:
    """Log the whole config and the final tuning scores (each number of ``metrics`` as
    ``tuning_<name>``) to the fit's experiment log, then close it. Rank 0 only; no-op for None."""
    if run is None or not is_rank_zero():
        return
    params = config.model_dump(mode="json")
    final = {f"tuning_{k}": float(v) for k, v in metrics.items() if _number(v)}
    if isinstance(run.logger, TensorBoardLogger):  # the HParams tab: the config beside its scores
        run.logger.log_hyperparams(params, metrics=final, step=run.step)
        # Lightning writes hparams.yaml once, when training ends: the whole config replaces it
        save_hparams_to_yaml(Path(run.logger.log_dir) / run.logger.NAME_HPARAMS_FILE, run.logger.hparams)
    else:
        run.logger.log_hyperparams(_mlflow_keys(params) if isinstance(run.logger, MLFlowLogger) else params)
        run.logger.log_metrics(final, step=run.step)
    run.logger.finalize("success")


def _mlflow(training: TrainingConfig, log_dir: Path) -> MLFlowLogger:
    from mlflow.exceptions import MlflowException  # present: check_logger has looked

    uri = training.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or (log_dir / "mlruns").as_uri()
    try:
        with _file_store_allowed(uri):  # the client and its store (MLflow keeps it) are made here
            logger = MLFlowLogger(experiment_name=training.experiment or "polymodal", tracking_uri=uri)
            if is_rank_zero():
                logger.experiment  # the experiment and the run, before anything trains  # noqa: B018
    except MlflowException as exc:
        raise ConfigError(f"training.logger: mlflow could not open the MLflow store {uri!r}: {exc}. Check "
                          "training.mlflow_tracking_uri (or $MLFLOW_TRACKING_URI), or unset both to log to "
                          f"file:<log_dir>/mlruns.") from None
    return logger


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 opens a ``file:`` store only with ``MLFLOW_ALLOW_FILE_STORE=true`` (its file
    store is kept, no longer developed); the one store polymodal opens is allowed, and the
    variable is put back as it was."""
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    if uri.startswith("file:"):
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def _where(logger: Logger, training: TrainingConfig, log_dir: Path) -> str:
    if isinstance(logger, MLFlowLogger):
        return (f"MLflow run {logger.run_id} of experiment {training.experiment or 'polymodal'!r} at "
                f"{logger._tracking_uri}")
    if isinstance(logger, TensorBoardLogger):
        return f"{logger.log_dir} (tensorboard --logdir {log_dir})"
    return str(logger.log_dir)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mlflow_keys(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The config flattened (``training/batch_size``), each key in the characters MLflow
    accepts (a column name such as ``price (€)`` becomes ``price ____``)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = prefix + re.sub(r"[^\w\-. /]", "_", str(key))
        if isinstance(value, Mapping) and value:
            flat.update(_mlflow_keys(value, name + "/"))
        else:
            flat[name] = value
    return flat
