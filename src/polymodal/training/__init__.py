"""Training: the Lightning module, callbacks, metrics and the fit loop."""
from polymodal.runtime import resolve_precision
from polymodal.training.fit import FitResult, fit_model, resolve_monitor
from polymodal.tasks.metrics import classification_metrics, confusion_matrix, regression_metrics

__all__ = [
    "FitResult", "fit_model", "resolve_monitor", "resolve_precision",
    "classification_metrics", "confusion_matrix", "regression_metrics",
]
