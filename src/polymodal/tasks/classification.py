"""Classification: one class per row; softmax head, accuracy, class probabilities."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from polymodal.data.schema import Schema
from polymodal.errors import ConfigError, DataError
from polymodal.heads.base import get_head
from polymodal.tasks.base import Task, check_scalar_label, register_task
from polymodal.tasks.metrics import classification_metrics, confusion_matrix

__all__ = ["ClassificationTask", "json_scalar"]


def json_scalar(value: Any) -> Any:
    """A label value as JSON keeps it: numpy scalars as Python ones, ``3.0`` as ``3``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class ClassificationTask(Task):
    """Predict one of K classes; the classes are the label's distinct training values."""

    name = "classification"
    auto_priority = 0  # every label can be classes: the fallback
    metric_name = "accuracy"
    summary = ("accuracy", "f1_macro", "auroc")

    def claims(self, y: pd.Series) -> bool:
        return True

    def check_label(self, y: pd.Series, label: str) -> str:
        check_scalar_label(y, label)
        counts = y.value_counts()
        if len(counts) < 2:
            raise DataError(
                f"label {label!r} has a single class {counts.index[0]!r} in {len(y):,} rows; "
                "a classifier needs at least two. Add examples of other classes, or check the label column."
            )
        return f"classification: {len(counts):,} classes"

    def auto_note(self, y: pd.Series) -> str:
        if pd.api.types.is_integer_dtype(y.dtype):
            return " (integer label; pass problem_type='regression' if it is a quantity)"
        return ""

    def config_problems(self, config: Any, schema: Schema) -> list[str]:
        loss = config.head.loss
        if loss in ("mse", "huber"):
            return [f"head.loss: {loss!r} is a regression loss but label '{schema.label}' is "
                    "classified; use cross_entropy, or set problem_type: regression"]
        return []

    def fit_labels(self, frame: pd.DataFrame, schema: Schema, config: Any) -> dict[str, Any]:
        column = frame[schema.label]
        classes = sorted(pd.unique(column.dropna()).tolist(), key=lambda v: (str(type(v)), v))
        classes = [json_scalar(c) for c in classes]
        weights = None
        cw = config.head.class_weights
        if cw == "balanced":
            counts = column.astype(str).value_counts()
            weights = [len(column) / (len(classes) * counts[str(c)]) for c in classes]
        elif isinstance(cw, dict):
            unknown = [k for k in cw if k not in {str(c) for c in classes}]
            if unknown:
                raise ConfigError(f"head.class_weights names unknown class(es) {unknown}; classes are {classes}")
            weights = [float(cw.get(str(c), 1.0)) for c in classes]
        return {"problem_type": self.name, "classes": classes, "class_weights": weights}

    def encode_target(self, frame: pd.DataFrame, schema: Schema, labels: Mapping[str, Any], config: Any,
                      what: str, unknown: str) -> np.ndarray:
        """Class indices; ``-1`` for a missing label or a class the model was not trained on.

        With ``unknown="drop"`` nothing is logged here: the caller that leaves those rows out
        (``FittedModel.evaluate``) says how many, once.
        """
        column = frame[schema.label]
        index = {str(c): i for i, c in enumerate(labels["classes"])}
        codes = np.array([index.get(str(json_scalar(v)), -1) for v in column], dtype=np.int64)
        if unknown == "error" and (codes < 0).any():
            missing = column.isna().to_numpy()
            unseen = sorted({str(json_scalar(v)) for v, c, m in zip(column, codes, missing) if c < 0 and not m})
            parts = [f"{len(codes[(codes < 0) & ~missing]):,} row(s) have label values the model was not "
                     f"trained on ({', '.join(unseen[:5])})"] if unseen else []
            parts += [f"{int(missing.sum()):,} row(s) have no label"] if missing.any() else []
            raise DataError(f"{what}: {' and '.join(parts)}; known classes: "
                            f"{', '.join(map(str, labels['classes']))}. Drop those rows or add them to the training data")
        return codes

    def stratify(self, frame: pd.DataFrame, schema: Schema) -> pd.Series:
        return frame[schema.label].astype(str)

    def build_head(self, in_dim: int, labels: Mapping[str, Any], config: Any) -> nn.Module:
        weights = labels.get("class_weights")
        return get_head("classification")(
            in_dim, len(labels["classes"]), hidden=config.hidden, dropout=config.dropout,
            class_weights=None if weights is None else torch.tensor(weights),
            label_smoothing=config.label_smoothing,
        )

    def training_metric(self, labels: Mapping[str, Any]) -> Any:
        import torchmetrics  # here, not at import: it costs seconds that a command without training saves

        return torchmetrics.Accuracy(task="multiclass", num_classes=len(labels["classes"]))

    def update_metric(self, metric: Any, head: nn.Module, output: torch.Tensor, target: torch.Tensor) -> None:
        metric(output.detach().float().argmax(dim=-1), target)

    def read_out(self, head: nn.Module, output: torch.Tensor) -> torch.Tensor:
        return head.probabilities(output)  # [B, K]

    def concat(self, parts: list[Any], labels: Mapping[str, Any]) -> torch.Tensor:
        return torch.cat(parts) if parts else torch.zeros((0, len(labels["classes"])))

    def predictions(self, outputs: torch.Tensor, labels: Mapping[str, Any]) -> np.ndarray:
        return np.array(labels["classes"], dtype=object)[outputs.argmax(dim=1).numpy()]

    def probabilities(self, outputs: torch.Tensor) -> np.ndarray:
        return outputs.numpy()

    def score(self, outputs: torch.Tensor, target: torch.Tensor, labels: Mapping[str, Any],
              loaded: Any) -> tuple[dict[str, Any], list]:
        matrix = confusion_matrix(outputs.argmax(1), target, len(labels["classes"]))
        return classification_metrics(outputs, target), matrix.tolist()

    def explained(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=1)

    def row_change(self, full: torch.Tensor, without: torch.Tensor, explained: torch.Tensor) -> torch.Tensor:
        index = explained.unsqueeze(1)
        return (full.gather(1, index) - without.gather(1, index)).squeeze(1)  # [N]

    def quality(self, outputs: torch.Tensor, target: torch.Tensor) -> float:
        return float((outputs.argmax(dim=1) == target).float().mean())


register_task(ClassificationTask())
