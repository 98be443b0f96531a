"""Several label columns in one model (``label: [group, subgroup]``): one shared encoders +
fusion trunk, one head per label of that label's own task (classification, regression,
multi-label), their losses weighted (``head.loss_weights``); metrics and predictions per label.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from polymodal.data.schema import Schema, infer_roles, require_inputs
from polymodal.errors import ConfigError
from polymodal.heads.base import get_head
from polymodal.tasks.base import Task, get_task, register_task

__all__ = ["MultiOutputTask"]

_SUBTASKS = ("classification", "regression", "multilabel")


def _sub(labels: Mapping[str, Any]) -> list[tuple[str, Task, dict[str, Any]]]:
    return [(t["column"], get_task(t["labels"]["problem_type"]), t["labels"]) for t in labels["outputs"]]


def _main_metric(task: Task) -> str:
    """What a label adds to ``score``: its task's own metric, but R² (not RMSE) for a number."""
    return "r2" if task.name == "regression" else str(task.metric_name)


def _one(schema: Schema, column: str, task: Task) -> Schema:
    return replace(schema, label=column, problem_type=task.name)


class MultiOutputTask(Task):
    """Predict every column of ``label: [...]`` at once; each with the task ``auto`` (or
    ``head.targets``) gives it."""

    name = "multioutput"
    metric_name = "score"  # the mean of the labels' own metrics (accuracy, micro-F1, R²): higher is better
    summary = ()
    # Not the summed loss: its minimum comes when the coarse labels' heads have settled, epochs
    # before a fine label's (emoji subgroups: 4.8 points short of their own model that way).
    default_monitor = "val_score"

    def custom_schema(self, frame: pd.DataFrame, config: Any) -> Schema:
        from polymodal.tasks.infer import choose_task
        from polymodal.tasks.label_sets import split_labels

        columns = [config.label] if isinstance(config.label, str) else list(config.label or [])
        if len(columns) < 2 or len(set(columns)) != len(columns):
            raise ConfigError(f"problem_type: multioutput needs label: a list of two or more distinct columns, "
                              f"got {config.label!r}")
        unknown = [c for c in config.head.targets if c not in columns]
        if unknown:
            raise ConfigError(f"head.targets names {unknown}, which are not labels; the labels are {columns}")
        missing = [c for c in columns if c not in frame.columns]
        roles, reasons = infer_roles(frame.drop(columns=[c for c in columns[1:] if c in frame.columns]),
                                     columns[0] if not missing else missing[0], config.columns)
        for column in columns:
            y = frame[column]
            kind = config.head.targets.get(column, "auto")
            if kind not in ("auto", *_SUBTASKS):
                raise ConfigError(f"head.targets.{column}: {kind!r} is not a task one of several labels can "
                                  f"have; expected auto or one of {', '.join(_SUBTASKS)}")
            if config.label_delimiter is not None:
                y = split_labels(y, config.label_delimiter)
            task = choose_task(y) if kind == "auto" else get_task(kind)
            reasons[column] = task.check_label(y, column) + (task.auto_note(y) if kind == "auto" else "")
        require_inputs(roles, reasons, columns[0])
        return Schema(label=columns, problem_type=self.name, roles=roles, reasons=reasons)

    def check_label(self, y: pd.Series, label: str) -> str:
        raise ConfigError(f"problem_type: multioutput predicts several labels; label {label!r} is one column. "
                          "Give label: a list of the columns (label: [a, b]), or choose the task of the one label")

    def fit_labels(self, frame: pd.DataFrame, schema: Schema, config: Any) -> dict[str, Any]:
        targets = []
        for column in schema.label_columns:
            kind = schema.reasons[column].split(":", 1)[0]
            task = get_task(kind)
            targets.append({"column": column, "labels": task.fit_labels(frame, _one(schema, column, task), config)})
        unknown = [c for c in config.head.loss_weights if c not in schema.label_columns]
        if unknown:
            raise ConfigError(f"head.loss_weights names {unknown}, which are not labels; the labels are "
                              f"{schema.label_columns}")
        weights = [float(config.head.loss_weights.get(c, 1.0)) for c in schema.label_columns]
        return {"problem_type": self.name, "outputs": targets, "loss_weights": weights}

    def encode_target(self, frame: pd.DataFrame, schema: Schema, labels: Mapping[str, Any], config: Any,
                      what: str, unknown: str) -> np.ndarray:
        """``[N, W]`` floats: each label's targets side by side (class indices as numbers)."""
        parts, usable = [], np.ones(len(frame), dtype=bool)
        for column, task, sub in _sub(labels):
            part = task.encode_target(frame, _one(schema, column, task), sub, config, f"{what} ({column})", unknown)
            usable &= task.known(part)
            parts.append(part.astype(np.float32).reshape(len(frame), -1))
        target = np.concatenate(parts, axis=1)
        target[~usable] = np.nan  # a row is used only when every label of it is
        return target

    def stratify(self, frame: pd.DataFrame, schema: Schema) -> pd.Series | None:
        """Every combination of the class labels' values (so each class in the tuning split is in training)."""
        classes = [c for c in schema.label_columns if schema.reasons[c].startswith("classification")]
        if not classes:
            return None
        return frame[classes].astype(str).agg(" | ".join, axis=1)

    def _slices(self, target: Any, labels: Mapping[str, Any]) -> dict[str, Any]:
        out, start = {}, 0
        for column, task, sub in _sub(labels):
            width = len(sub["classes"]) if sub["problem_type"] == "multilabel" else 1
            piece = target[:, start:start + width]
            out[column] = piece[:, 0] if width == 1 else piece
            start += width
        return out

    def known(self, target: np.ndarray) -> np.ndarray:
        return np.isfinite(target).all(axis=1)

    def target_tensor(self, target: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(target).float()

    def build_head(self, in_dim: int, labels: Mapping[str, Any], config: Any) -> nn.Module:
        subs = _sub(labels)
        heads = {c: task.build_head(in_dim, sub, config) for c, task, sub in subs}
        out = [len(s["classes"]) if t.name != "regression" else 1 for _, t, s in subs]
        widths = [len(s["classes"]) if t.name == "multilabel" else 1 for _, t, s in subs]
        return get_head("multioutput")(heads, out, widths, [t.target_tensor for _, t, _ in subs],
                                       labels["loss_weights"], [t.name for _, t, _ in subs])

    def training_metric(self, labels: Mapping[str, Any]) -> Any:
        from torchmetrics import R2Score  # here, not at import (see classification.training_metric)

        from polymodal.tasks.mean_metric import MeanOfMetrics

        return MeanOfMetrics({c: R2Score() if task.name == "regression" else task.training_metric(sub)
                              for c, task, sub in _sub(labels)})

    def update_metric(self, metric: Any, head: nn.Module, output: torch.Tensor, target: torch.Tensor) -> None:
        outputs, targets = head.split(output.detach()), head.split_target(target)
        for c, kind in zip(head.names, head.kinds):
            get_task(kind).update_metric(metric.parts[c], head.heads[c], outputs[c], targets[c])
        metric.update()

    def read_out(self, head: nn.Module, output: torch.Tensor) -> "Outputs":
        parts = head.split(output)
        return Outputs({c: get_task(k).read_out(head.heads[c], parts[c]) for c, k in zip(head.names, head.kinds)},
                       head.kinds)

    def concat(self, parts: list[Any], labels: Mapping[str, Any]) -> "Outputs":
        return Outputs({c: task.concat([p[c] for p in parts], sub) for c, task, sub in _sub(labels)},
                       [task.name for _, task, _ in _sub(labels)])

    def take(self, outputs: "Outputs", start: int, stop: int) -> "Outputs":
        return Outputs({c: v[start:stop] for c, v in outputs.items()}, outputs.kinds)

    def predictions(self, outputs: Any, labels: Mapping[str, Any]) -> np.ndarray:
        columns = {c: task.predictions(outputs[c], sub) for c, task, sub in _sub(labels)}
        rows = np.empty(len(next(iter(columns.values()))), dtype=object)
        rows[:] = [dict(zip(columns, values)) for values in zip(*columns.values())]
        return rows

    def prediction_series(self, values: np.ndarray, rows: np.ndarray, index: pd.Index) -> pd.DataFrame:
        """One column per label (None where a row was skipped)."""
        names = list(values[0]) if len(values) else []
        out = pd.DataFrame({n: pd.Series([None] * len(index), index=index, dtype=object) for n in names})
        for n in names:
            out.iloc[rows, out.columns.get_loc(n)] = [v[n] for v in values]
        return out

    def probability_columns(self, labels: Mapping[str, Any]) -> list[str]:
        return [f"{c}={k}" for c, task, sub in _sub(labels) if task.name != "regression" for k in sub["classes"]]

    def probabilities(self, outputs: Any) -> np.ndarray | None:
        parts = [v.numpy() for v in outputs.values() if v.ndim == 2]
        return np.concatenate(parts, axis=1) if parts else None

    def calibrate(self, outputs: Any, target: torch.Tensor, labels: Mapping[str, Any],
                  config: Any) -> dict[str, Any]:
        slices = self._slices(target, labels)
        targets = [{"column": c, "labels": task.calibrate(outputs[c], task.target_tensor(slices[c]), sub, config)}
                   for c, task, sub in _sub(labels)]
        return {**labels, "outputs": targets}

    def score(self, outputs: Any, target: torch.Tensor, labels: Mapping[str, Any],
              loaded: Any) -> tuple[dict[str, Any], None]:
        slices, metrics = self._slices(target, labels), {}
        for c, task, sub in _sub(labels):
            scored, _ = task.score(outputs[c], task.target_tensor(slices[c]), sub, loaded)
            metrics.update({f"{c}.{k}": v for k, v in scored.items() if k != "n"})
        metrics["score"] = float(np.mean([metrics[f"{c}.{_main_metric(task)}"] for c, task, _ in _sub(labels)]))
        metrics["n"] = int(len(target))
        return metrics, None

    def row_change(self, full: "Outputs", without: "Outputs", explained: Any) -> torch.Tensor:
        """The sum over the labels of how much each one's output moves."""
        changes = []
        for (c, part), kind in zip(full.items(), full.kinds):
            task = get_task(kind)
            changes.append(task.row_change(part, without[c], task.explained(part)).abs())
        return torch.stack(changes).sum(0)

    def quality(self, outputs: "Outputs", target: torch.Tensor) -> float:
        """The mean of the labels' own qualities (each higher-is-better)."""
        values, start = [], 0
        for (c, part), kind in zip(outputs.items(), outputs.kinds):
            width = part.shape[1] if kind == "multilabel" else 1
            piece = target[:, start:start + width]
            start += width
            task = get_task(kind)
            values.append(task.quality(part, task.target_tensor(piece[:, 0] if width == 1 else piece)))
        return float(np.mean(values))


class Outputs(dict):
    """``{label: its task's outputs}``, in the labels' order, with each label's task name."""

    def __init__(self, parts: Mapping[str, Any], kinds: list[str]):
        super().__init__(parts)
        self.kinds = list(kinds)


register_task(MultiOutputTask())
