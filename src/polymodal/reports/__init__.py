"""Figures and reports: training curves, confusion matrices, robustness, modality importance."""
from polymodal.reports.confusion import plot_confusion_matrix
from polymodal.reports.curves import plot_curves
from polymodal.reports.importance import plot_importance
from polymodal.reports.robustness import plot_robustness, robustness_report

__all__ = ["plot_curves", "plot_confusion_matrix", "plot_importance", "plot_robustness", "robustness_report"]
