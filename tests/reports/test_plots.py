"""Training curves and confusion matrices are written as real, sizeable PNGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polymodal.errors import DataError
from polymodal.reports import plot_confusion_matrix, plot_curves


def _png_size(path: Path) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size > 5_000
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # decodes every byte: fails on a truncated file
        return image.size


def _history(n: int, metric: str) -> pd.DataFrame:
    epochs = np.arange(n)
    frame = pd.DataFrame({
        "epoch": epochs,
        "train_loss": 2.0 * np.exp(-epochs / 3) + 0.1,
        "val_loss": 2.1 * np.exp(-epochs / 4) + 0.2,
    })
    if metric == "accuracy":
        frame["train_accuracy"] = 1 - 0.8 * np.exp(-epochs / 3)
        frame["val_accuracy"] = 0.9 - 0.8 * np.exp(-epochs / 4)
    else:
        frame[f"train_{metric}"] = 1.5 * np.exp(-epochs / 3) + 0.3
        frame[f"val_{metric}"] = 1.6 * np.exp(-epochs / 4) + 0.4
    return frame


@pytest.mark.parametrize("metric", ["accuracy", "rmse"])
def test_curves_for_classification_and_regression(tmp_path: Path, metric: str) -> None:
    path = plot_curves(_history(12, metric), tmp_path / "plots" / "curves.png", title="run")
    width, height = _png_size(path)
    assert width > 1.8 * height  # two panels side by side


def test_curves_with_one_epoch_nan_and_no_metric(tmp_path: Path) -> None:
    one = pd.DataFrame({"epoch": [1], "train_loss": [0.7], "val_loss": [np.nan]})
    _png_size(plot_curves(one, tmp_path / "one.png"))

    gaps = _history(8, "accuracy")
    gaps.loc[[2, 5], "val_loss"] = np.nan
    gaps.loc[3, "train_accuracy"] = np.inf
    _png_size(plot_curves(gaps, tmp_path / "gaps.png"))

    loss_only = _history(5, "accuracy")[["epoch", "train_loss", "val_loss"]]
    width, height = _png_size(plot_curves(loss_only, tmp_path / "loss.png"))
    assert width < 1.8 * height  # one panel


def test_curves_reject_a_history_without_epochs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing \\['epoch'\\]"):
        plot_curves(pd.DataFrame({"train_loss": [1.0]}), tmp_path / "x.png")
    with pytest.raises(DataError, match="empty"):
        plot_curves(pd.DataFrame(columns=["epoch", "train_loss"]), tmp_path / "x.png")


@pytest.mark.parametrize("k", [3, 20])
def test_confusion_matrix_small_and_large(tmp_path: Path, k: int) -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 8, (k, k)) + np.diag(rng.integers(20, 60, k))
    counts[0] = 0  # a class with no examples must not break the row shares
    labels = [f"class {i}" for i in range(k)]
    path = plot_confusion_matrix(counts, labels, tmp_path / "cm.png", normalize=k < 10)
    width, height = _png_size(path)
    assert min(width, height) >= 600


def test_confusion_matrix_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="square"):
        plot_confusion_matrix(np.ones((2, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(DataError, match="expected 2 labels"):
        plot_confusion_matrix(np.ones((2, 2)), ["a"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_report_plots_leave_the_backend_and_pyplot_alone(tmp_path: Path) -> None:
    """A library must not flip the host's backend (a notebook would lose its inline plots)."""
    import matplotlib
    import matplotlib.pyplot as plt

    from polymodal.reports import plot_importance, plot_robustness

    before = matplotlib.get_backend()
    plt.switch_backend("template")  # any backend but Agg: a notebook's inline one stands for it
    try:
        figures = plt.get_fignums()
        summary = pd.DataFrame({"ablation": [0.2, 0.05], "ablation_metric_drop": [0.1, 0.0],
                                "ig_share": [0.7, 0.3]}, index=["photo", "caption"])
        report = pd.DataFrame({
            "input": ["(all)", "photo", "photo", "photo", "caption", "caption"],
            "modality": ["", "image", "image", "image", "text", "text"],
            "condition": ["clean", "removed", "noise", "noise", "removed", "not perturbed"],
            "noise": ["", "", "σ", "σ", "", "no unknown token"],
            "level": [0.0, np.nan, 0.1, 0.4, np.nan, np.nan], "severity": [0, np.nan, 1, 2, np.nan, np.nan],
            "metric": "accuracy", "value": [0.9, 0.5, 0.8, 0.6, 0.7, np.nan], "n": 10,
        })
        _png_size(plot_importance(summary, tmp_path / "importance.png", title="t"))
        _png_size(plot_robustness(report, tmp_path / "robustness.png", title="t"))
        assert matplotlib.get_backend() == "template"
        assert plt.get_fignums() == figures
    finally:
        plt.switch_backend(before)
