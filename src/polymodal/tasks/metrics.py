"""Evaluation metrics (torchmetrics), computed from predictions and targets."""
from __future__ import annotations

import math

import torch
from typing import Any

# torchmetrics is imported where a metric is computed: importing it costs seconds (it pulls scipy
# and transformers) that a command which computes none (a refused input, --help) should not pay.

__all__ = ["classification_metrics", "regression_metrics", "confusion_matrix"]


def classification_metrics(probs: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Accuracy, macro-F1, macro one-vs-rest AUROC and log loss.

    Args:
        probs: ``[N, K]`` class probabilities.
        target: ``[N]`` class indices.
    """
    C = _functional("classification")
    k = probs.shape[1]
    pred = probs.argmax(dim=1)
    out = {
        "accuracy": C.multiclass_accuracy(pred, target, num_classes=k, average="micro").item(),
        "f1_macro": C.multiclass_f1_score(pred, target, num_classes=k, average="macro").item(),
        "log_loss": torch.nn.functional.nll_loss(probs.clamp_min(1e-12).log(), target).item(),
    }
    present = torch.unique(target)
    if len(present) >= 2:
        if k == 2:
            out["auroc"] = C.binary_auroc(probs[:, 1], target).item()
        else:
            # Macro AUROC over the classes that occur in the evaluation data.
            scores = [C.binary_auroc(probs[:, c], (target == c).long()).item() for c in present.tolist()]
            out["auroc"] = float(sum(scores) / len(scores))
    out["n"] = int(len(target))
    return out


def regression_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """RMSE, MAE and R² for ``[N]`` predictions and targets."""
    R = _functional("regression")
    pred, target = pred.double(), target.double()
    out = {
        "rmse": math.sqrt(R.mean_squared_error(pred, target).item()),
        "mae": R.mean_absolute_error(pred, target).item(),
        "r2": R.r2_score(pred, target).item() if len(target) > 1 else float("nan"),
        "n": int(len(target)),
    }
    return out


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[K, K]`` counts, rows = true class."""
    return _functional("classification").multiclass_confusion_matrix(pred, target, num_classes=num_classes)


def _functional(kind: str) -> Any:
    """``torchmetrics.functional.<kind>``, imported on first use."""
    import importlib

    return importlib.import_module(f"torchmetrics.functional.{kind}")
