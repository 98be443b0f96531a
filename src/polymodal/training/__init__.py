"""Training: the Lightning module, callbacks, metrics and the fit loop."""
from polymodal.training.fit import FitResult, fit_model, resolve_monitor, resolve_precision
from polymodal.tasks.metrics import classification_metrics, confusion_matrix, regression_metrics

__all__ = [
    "FitResult", "fit_model", "resolve_monitor", "resolve_precision",
    "classification_metrics", "confusion_matrix", "regression_metrics",
]
