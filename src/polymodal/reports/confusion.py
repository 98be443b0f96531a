"""Confusion-matrix heatmap: rows = true class, columns = predicted, accuracy in the title.

Drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from polymodal.errors import DataError
from polymodal.reports.figure import new_figure, save_figure

__all__ = ["plot_confusion_matrix"]

_FULL_TEXT_UP_TO = 12   # count and row % in each cell
_COUNT_TEXT_UP_TO = 16  # count only; above this the cells are too small for text


def plot_confusion_matrix(
    matrix: np.ndarray, labels: list[str], path: Path, normalize: bool = True, split: str | None = None
) -> Path:
    """Plot a ``[K, K]`` confusion matrix of counts as an annotated heatmap (150 dpi PNG).

    Args:
        matrix: counts ``[K, K]``; ``matrix[i, j]`` = examples of true class ``i``
            predicted as ``j``.
        labels: the ``K`` class names, in matrix order.
        path: where to write the PNG; parent folders are created.
        normalize: colour cells by row share (recall per class) rather than by count,
            so rare classes are as readable as common ones.
        split: what the matrix was counted on, named in the title: a split (``"tuning split"``)
            or a table (``"model on test.csv"``).

    Returns:
        ``path``.

    Raises:
        DataError: the matrix is not square, negative or non-finite, or ``labels`` has
            the wrong length.
    """
    counts = _validated(matrix, labels)
    k = counts.shape[0]
    support = counts.sum(axis=1, keepdims=True)  # [K, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(support > 0, counts / support, np.nan)  # [K, K], NaN for empty rows
    total = counts.sum()
    accuracy = np.trace(counts) / total if total else float("nan")

    side = float(np.clip(2.8 + 0.5 * k, 5.0, 13.0))
    fig = new_figure(side + 1.2, side)
    ax = fig.subplots()
    shown = np.nan_to_num(share) if normalize else counts
    vmax = 1.0 if normalize else max(float(counts.max()), 1.0)
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, shrink=0.8, aspect=30)
    bar.set_label("share of true class" if normalize else "count")
    bar.outline.set_visible(False)

    rotate = k > 6 or max((len(str(name)) for name in labels), default=0) > 8
    ax.set_xticks(range(k), [str(name) for name in labels],
                  rotation=45 if rotate else 0, ha="right" if rotate else "center",
                  rotation_mode="anchor")
    ax.set_yticks(range(k), [str(name) for name in labels])
    ax.tick_params(length=0, labelsize=10 if k <= 10 else 8)
    ax.set_xlabel("Predicted", fontsize=11)
    ax.set_ylabel("True", fontsize=11)
    for spine in ax.spines.values():
        spine.set_visible(False)
    # thin white lines between cells make large matrices easier to follow
    ax.set_xticks(np.arange(-0.5, k, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, k, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)

    if k <= _COUNT_TEXT_UP_TO:
        _annotate(ax, counts, share, shown / vmax, full=k <= _FULL_TEXT_UP_TO)
    accuracy_text = f"{accuracy:.1%}" if total else "n/a"
    heading = "Confusion matrix" + (f", {split}" if split else "")
    ax.set_title(f"{heading}: accuracy {accuracy_text} (n = {int(total):,})",
                 fontsize=12, fontweight="bold", pad=10)

    return save_figure(fig, path, dpi=150, facecolor="white")


def _validated(matrix: np.ndarray, labels: list[str]) -> np.ndarray:
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise DataError(f"confusion matrix: expected a non-empty square [K, K] array, got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise DataError("confusion matrix: expected non-negative finite counts, got negative, NaN or inf entries")
    if len(labels) != counts.shape[0]:
        raise DataError(
            f"confusion matrix: expected {counts.shape[0]} labels (one per row), got "
            f"{len(labels)}; pass the class names in matrix order"
        )
    return counts


def _annotate(ax, counts: np.ndarray, share: np.ndarray, level: np.ndarray, full: bool) -> None:
    """Write each cell's count (and row %) in a colour that reads on its background."""
    k = counts.shape[0]
    size = 9 if k <= 6 else 8 if full else 7
    for i in range(k):
        for j in range(k):
            count = f"{counts[i, j]:,.0f}" if float(counts[i, j]).is_integer() else f"{counts[i, j]:.3g}"
            if full:
                pct = "–" if np.isnan(share[i, j]) else f"{share[i, j]:.0%}"
                text = f"{count}\n{pct}"
            else:
                text = count
            color = "white" if level[i, j] > 0.55 else "#222222"
            weight = "bold" if i == j else "normal"
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color,
                    fontweight=weight, linespacing=1.15)
