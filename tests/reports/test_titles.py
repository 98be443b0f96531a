"""Every plot's title says what it was drawn on: the split, or the model and the table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polymodal.reports import confusion, curves


@pytest.fixture()
def drawn(monkeypatch):
    """The figures the report functions save, instead of their files."""
    figures = []

    def keep(fig, path, **_):
        figures.append(fig)
        return path

    monkeypatch.setattr(confusion, "save_figure", keep)
    monkeypatch.setattr(curves, "save_figure", keep)
    return figures


def test_confusion_matrix_title_names_the_split_or_table(drawn, tmp_path):
    confusion.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "x.png", split="model on test.csv")
    confusion.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "y.png")
    first, second = (fig.axes[0].get_title() for fig in drawn)
    assert first == "Confusion matrix, model on test.csv: accuracy 87.5% (n = 8)"
    assert second == "Confusion matrix: accuracy 87.5% (n = 8)"


def test_training_curves_name_their_splits(drawn, tmp_path):
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    curves.plot_curves(history, tmp_path / "c.png")
    fig = drawn[0]
    assert fig.get_suptitle() == "Per-epoch curves: training split and tuning split"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["training split", "tuning split"]
