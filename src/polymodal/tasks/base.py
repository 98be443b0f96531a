"""The ``Task`` contract and the registry of tasks (a leaf: it imports no task).

A task is one file under ``polymodal/tasks/`` that defines a ``Task`` subclass and registers
one instance with ``register_task``. It bundles everything that depends on what the model
predicts: the label checks and auto-detection, the label encoding, the head, the training
metric and the monitored value, how outputs become predictions, and the scores. The
pipeline asks ``get_task(schema.problem_type)`` instead of testing a problem-type name.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from polymodal.data.schema import Schema, is_missing
from polymodal.errors import ConfigError, DataError

__all__ = ["Task", "register_task", "get_task", "task_names", "unregister_task", "check_scalar_label",
           "MAXIMISED"]

# Monitored values that improve upwards; every other one (losses, errors) improves downwards.
MAXIMISED = ("val_accuracy", "val_f1_macro", "val_f1_micro", "val_score")

_CONTAINERS = (list, tuple, dict, set, frozenset, np.ndarray, bytes, bytearray)


class Task:
    """What one problem type does at each stage; subclasses override what differs.

    Attributes:
        name: the ``problem_type`` (also the schema's).
        auto_priority: when ``problem_type: auto``, tasks that ``claims`` the label are tried
            from the highest priority down; None = chosen only by name.
        reads_label: the task predicts the label column (its schema comes from
            ``infer_schema``); False: it builds its own schema (``custom_schema``).
        has_head: the model has a task head over a fusion (False: the aligner is its only head).
        targets_are_groups: the batch target is each row's match group (the aligner's
            positives), not a label to predict.
        metric_name: the main metric, in ``score``'s output and in the training log
            (``val_<metric_name>``); None = only the loss.
        summary: the metric keys a one-line summary shows.
        default_monitor: what ``training.monitor: auto`` watches.
    """

    name: str = ""
    auto_priority: int | None = None
    reads_label: bool = True
    has_head: bool = True
    targets_are_groups: bool = False
    metric_name: str | None = None
    summary: tuple[str, ...] = ()
    default_monitor: str = "val_loss"

    # --- schema ---------------------------------------------------------------------
    def claims(self, y: pd.Series) -> bool:
        """Under ``problem_type: auto``: is ``y`` a label of this task?"""
        return False

    def check_label(self, y: pd.Series, label: str) -> str:
        """Raise ``DataError`` when ``y`` cannot be this task's label; else say why it fits."""
        raise NotImplementedError

    def auto_note(self, y: pd.Series) -> str:
        """A hint appended to the label's reason when the task was chosen automatically."""
        return ""

    def custom_schema(self, frame: pd.DataFrame, config: Any) -> Schema | None:
        """The schema of a task that does not read a label the usual way; None = ``infer_schema``."""
        return None

    def settings_problems(self, config: Any) -> list[str]:
        """Problems of the config alone for this task (before any table is read)."""
        return []

    def config_problems(self, config: Any, schema: Schema) -> list[str]:
        """Problems of the ``head:`` section for this task (each a message a user can act on)."""
        return []

    # --- labels ---------------------------------------------------------------------
    def fit_labels(self, frame: pd.DataFrame, schema: Schema, config: Any) -> dict[str, Any]:
        """The label encoding learnt on the training table (saved as ``labels.json``)."""
        return {"problem_type": self.name}

    def encode_target(self, frame: pd.DataFrame, schema: Schema, labels: Mapping[str, Any], config: Any,
                      what: str, unknown: str) -> np.ndarray:
        """``[N]`` targets; rows that ``known`` rejects are left out (``unknown="drop"``)."""
        raise NotImplementedError

    def known(self, target: np.ndarray) -> np.ndarray:
        """``[N]`` bool: rows whose target can be used."""
        return target >= 0

    def target_tensor(self, target: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(target).long()

    def stratify(self, frame: pd.DataFrame, schema: Schema) -> pd.Series | None:
        """Groups the tuning split is stratified by (one value per row), or None."""
        return None

    # --- model and training ---------------------------------------------------------
    def build_head(self, in_dim: int, labels: Mapping[str, Any], config: Any) -> nn.Module | None:
        """The head over ``fused [B, in_dim]`` (None: the model has no task head).

        Args:
            config: the config's ``head:`` section.
        """
        return None

    def augmented(self, labels: Mapping[str, Any], names: list[str]) -> list[str]:
        """The inputs whose training items are augmented (all; generation leaves out what it makes)."""
        return list(names)

    def build_model(self, config: Any, preprocessors: Mapping[str, Any], labels: Mapping[str, Any],
                    encoders: Mapping[str, nn.Module], make_encoder: Any, make_fusion: Any) -> nn.Module | None:
        """A model of the task's own (generation), or None for encoders → fusion → ``build_head``.

        Args:
            encoders: every input's configured encoder; make_encoder: ``make_encoder(input)``, a
                fresh one; make_fusion: ``make_fusion({input: width})``, the config's fusion.
        """
        return None

    def training_metric(self, labels: Mapping[str, Any]) -> Any:
        """A fresh torchmetrics metric logged as ``<stage>_<metric_name>``, or None."""
        return None

    def update_metric(self, metric: Any, head: nn.Module, output: torch.Tensor, target: torch.Tensor) -> None:
        raise NotImplementedError

    def monitor(self, requested: str) -> tuple[str, str]:
        """The value early stopping watches (``requested``: ``val_loss`` or a metric) and its mode.

        Raises:
            ConfigError: a value this task does not log.
        """
        logged = ["val_loss"] + ([f"val_{self.metric_name}"] if self.metric_name else [])
        if requested not in logged:
            raise ConfigError(f"training.monitor: {requested} is not logged by a {self.name} model; "
                              f"use {' or '.join(logged)}")
        return requested, "max" if requested in MAXIMISED else "min"

    def calibrate(self, outputs: Any, target: torch.Tensor, labels: Mapping[str, Any],
                  config: Any) -> dict[str, Any]:
        """The label encoding after training, adjusted on the tuning rows' ``outputs`` (multi-label:
        each label's decision threshold); unchanged by default."""
        return dict(labels)

    # --- outputs --------------------------------------------------------------------
    def batch_outputs(self, model: nn.Module, batch: Mapping[str, Any]) -> Any:
        """What inference keeps of one batch (probabilities ``[B, K]``, values ``[B]``, …)."""
        output, _ = model(batch)
        return self.read_out(model.head, output)

    def read_out(self, head: nn.Module, output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def take(self, outputs: Any, start: int, stop: int) -> Any:
        """The outputs of rows ``start:stop`` (a stream cuts its batches' outputs by chunk)."""
        return outputs[start:stop]

    def concat(self, parts: list[Any], labels: Mapping[str, Any]) -> Any:
        """The outputs of every batch together."""
        return torch.cat(parts) if parts else torch.zeros(0)

    def predictions(self, outputs: Any, labels: Mapping[str, Any]) -> np.ndarray:
        """The prediction per row of ``outputs`` (class names or values)."""
        raise NotImplementedError

    def prediction_series(self, values: np.ndarray, rows: np.ndarray, index: pd.Index) -> pd.Series:
        """One prediction per table row (``values`` at ``rows``; None for the others)."""
        out = pd.Series([None] * len(index), index=index, dtype=object)
        out.iloc[rows] = values
        return out

    def probability_columns(self, labels: Mapping[str, Any]) -> list[str]:
        """The names of ``probabilities``' columns (the classes)."""
        return [str(c) for c in labels["classes"]]

    def probabilities(self, outputs: Any) -> np.ndarray | None:
        """``[N, K]`` class probabilities, or None when the task has none."""
        return None

    def score(self, outputs: Any, target: torch.Tensor, labels: Mapping[str, Any],
              loaded: Any) -> tuple[dict[str, Any], list | None]:
        """Metrics, and a confusion matrix (lists) or None."""
        raise NotImplementedError

    # --- explanations ---------------------------------------------------------------
    def explained(self, outputs: Any) -> torch.Tensor | None:
        """``[N]`` the output index attributions explain (the predicted class), or None."""
        return None

    def row_change(self, full: Any, without: Any, explained: torch.Tensor | None) -> torch.Tensor:
        """``[N]`` how much each row's output moves when an input is removed."""
        raise NotImplementedError

    def quality(self, outputs: Any, target: torch.Tensor) -> float:
        """One number, higher is better, whose drop measures an input's importance."""
        raise NotImplementedError


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task under ``task.name``.

    Raises:
        RuntimeError: the name is registered already.
    """
    if task.name in _TASKS:
        raise RuntimeError(f"task {task.name!r} registered twice")
    _TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Remove a task (tests that register one of their own)."""
    _TASKS.pop(name, None)


def task_names() -> list[str]:
    """Registered task names, in registration order."""
    return list(_TASKS)


def get_task(name: str) -> Task:
    """The task of ``problem_type`` ``name``.

    Raises:
        ConfigError: no such task.
    """
    if name not in _TASKS:
        raise ConfigError(f"problem_type {name!r} is not known; expected one of {', '.join(_TASKS)}.")
    return _TASKS[name]


def check_scalar_label(y: pd.Series, label: str) -> None:
    """Every training row has one label value.

    Raises:
        DataError: labels missing (counted), or lists and other containers.
    """
    n_missing = int(is_missing(y).sum())
    if n_missing:
        raise DataError(
            f"label {label!r} is missing in {n_missing:,} of {len(y):,} rows; expected a label in every "
            "training row. Drop those rows or fill them in."
        )
    if any(isinstance(v, _CONTAINERS) for v in y.tolist()):
        raise DataError(
            f"label {label!r} holds lists or other containers; expected one value per row "
            "for a set of labels per row, use problem_type: multilabel. Or make it one class per row."
        )
