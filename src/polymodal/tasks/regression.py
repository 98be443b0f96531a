"""Regression: one number per row; a head on the standardised target, RMSE, values."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from pandas.api import types as ptypes
from torch import nn

from polymodal.data.schema import Schema
from polymodal.errors import DataError
from polymodal.heads.base import get_head
from polymodal.tasks.base import MAXIMISED, Task, check_scalar_label, register_task
from polymodal.tasks.metrics import regression_metrics

__all__ = ["RegressionTask"]


class RegressionTask(Task):
    """Predict a number; the head learns it standardised by the training mean and std."""

    name = "regression"
    auto_priority = 10  # before classification: fractional floats are quantities
    metric_name = "rmse"
    summary = ("rmse", "mae", "r2")

    def claims(self, y: pd.Series) -> bool:
        if ptypes.is_float_dtype(y.dtype):
            values = y.dropna().to_numpy(dtype=float)
            return bool(np.any(values != np.round(values)))
        return False

    def check_label(self, y: pd.Series, label: str) -> str:
        check_scalar_label(y, label)
        if ptypes.is_bool_dtype(y.dtype) or not (ptypes.is_integer_dtype(y.dtype) or ptypes.is_float_dtype(y.dtype)):
            examples = ", ".join(repr(v) for v in y.drop_duplicates().head(3).tolist())
            raise DataError(
                f"label {label!r} is not numeric (dtype {y.dtype}, e.g. {examples}); regression needs numbers. "
                "Convert the column to numbers, or use problem_type='classification'."
            )
        values = y.to_numpy(dtype=float)
        infinite = np.isinf(values)
        if infinite.any():  # one inf makes the standardised target, the loss and every weight NaN
            raise DataError(
                f"label {label!r} is infinite in {int(infinite.sum()):,} of {len(y):,} rows "
                f"(rows {_first_rows(y.index[infinite])}); regression needs finite numbers. "
                "Drop those rows or replace the values."
            )
        low, high = float(np.min(values)), float(np.max(values))
        if low == high:
            raise DataError(
                f"label {label!r} is {low:g} in all {len(y):,} rows; regression needs a label that varies. "
                "Check the label column."
            )
        return f"regression: numbers from {low:g} to {high:g}"

    def config_problems(self, config: Any, schema: Schema) -> list[str]:
        if config.head.loss == "cross_entropy":
            return [f"head.loss: cross_entropy needs a classification label; '{schema.label}' "
                    "is treated as regression (set problem_type: classification to change that)"]
        return []

    def fit_labels(self, frame: pd.DataFrame, schema: Schema, config: Any) -> dict[str, Any]:
        values = pd.to_numeric(frame[schema.label], errors="coerce").to_numpy(dtype=float)
        std = float(np.nanstd(values))
        return {"problem_type": self.name, "target_mean": float(np.nanmean(values)),
                "target_std": std if std > 0 else 1.0}

    def encode_target(self, frame: pd.DataFrame, schema: Schema, labels: Mapping[str, Any], config: Any,
                      what: str, unknown: str) -> np.ndarray:
        """Float values; NaN where missing, not a number or infinite (rows that cannot be scored)."""
        values = pd.to_numeric(frame[schema.label], errors="coerce").to_numpy(dtype=float)
        unusable = ~np.isfinite(values)
        if unknown == "error" and unusable.any():
            raise DataError(f"{what}: label '{schema.label}' has {int(unusable.sum()):,} missing, non-numeric "
                            f"or infinite values (rows {_first_rows(frame.index[unusable])}); "
                            "drop or fill those rows")
        return np.where(unusable, np.nan, values)

    def known(self, target: np.ndarray) -> np.ndarray:
        return ~np.isnan(target)

    def target_tensor(self, target: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(target).float()

    def build_head(self, in_dim: int, labels: Mapping[str, Any], config: Any) -> nn.Module:
        loss = "mse" if config.loss in ("auto", "mse") else config.loss
        return get_head("regression")(in_dim, hidden=config.hidden, dropout=config.dropout, loss=loss,
                                      target_mean=labels["target_mean"], target_std=labels["target_std"])

    def training_metric(self, labels: Mapping[str, Any]) -> Any:
        import torchmetrics  # here, not at import (see classification.training_metric)

        return torchmetrics.MeanSquaredError(squared=False)

    def update_metric(self, metric: Any, head: nn.Module, output: torch.Tensor, target: torch.Tensor) -> None:
        metric(head.values(output.detach()), target.float())

    def monitor(self, requested: str) -> tuple[str, str]:
        return ("val_loss", "min") if requested in MAXIMISED else (requested, "min")

    def read_out(self, head: nn.Module, output: torch.Tensor) -> torch.Tensor:
        return head.values(output)  # [B]

    def predictions(self, outputs: torch.Tensor, labels: Mapping[str, Any]) -> np.ndarray:
        return outputs.numpy()

    def prediction_series(self, values: np.ndarray, rows: np.ndarray, index: pd.Index) -> pd.Series:
        out = pd.Series(np.nan, index=index)
        out.iloc[rows] = values
        return out

    def score(self, outputs: torch.Tensor, target: torch.Tensor, labels: Mapping[str, Any],
              loaded: Any) -> tuple[dict[str, Any], None]:
        return regression_metrics(outputs, target), None

    def row_change(self, full: torch.Tensor, without: torch.Tensor, explained: None) -> torch.Tensor:
        return (full - without).abs()  # [N]

    def quality(self, outputs: torch.Tensor, target: torch.Tensor) -> float:
        return -float((outputs - target).pow(2).mean().sqrt())  # so that a drop is always a loss


def _first_rows(index: pd.Index, n: int = 5) -> str:
    """The first ``n`` row labels of ``index`` (``3, 17, 40 and 2 more``)."""
    shown = ", ".join(str(v) for v in index[:n].tolist())
    return shown + (f" and {len(index) - n:,} more" if len(index) > n else "")


register_task(RegressionTask())
