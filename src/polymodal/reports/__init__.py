"""Figures written next to a trained model: training curves and confusion matrices."""
from polymodal.reports.confusion import plot_confusion_matrix
from polymodal.reports.curves import plot_curves

__all__ = ["plot_curves", "plot_confusion_matrix"]
