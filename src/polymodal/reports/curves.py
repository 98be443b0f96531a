"""Training curves: loss and the first metric, training vs validation, best epoch marked.

Drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas: no pyplot, no global
backend switch, safe in servers, threads and headless CI.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from polymodal.errors import DataError
from polymodal.reports.figure import new_figure, save_figure

__all__ = ["plot_curves"]

_TRAIN_COLOR = "#4C72B0"
_VAL_COLOR = "#DD8452"
# Metric names (or parts of names) where smaller is better; everything else
# (accuracy, f1, auc, r2, recall@k, ...) is taken as larger-is-better.
_LOWER_IS_BETTER = ("loss", "rmse", "mse", "mae", "mape", "error", "perplexity", "nll", "brier", "ece")
_PRETTY = {"accuracy": "Accuracy", "rmse": "RMSE", "mae": "MAE", "mse": "MSE", "r2": "R²",
           "f1": "F1", "f1_macro": "Macro F1", "auc": "ROC AUC", "loss": "Loss"}


def plot_curves(history: pd.DataFrame, path: Path, title: str | None = None) -> Path:
    """Plot per-epoch training curves to a 150 dpi PNG.

    Args:
        history: one row per epoch; columns ``epoch``, ``train_loss``, ``val_loss`` and
            optionally pairs ``train_<m>`` / ``val_<m>`` (the first pair gets a panel).
            NaN / inf values (e.g. an epoch without validation) leave gaps.
        path: where to write the PNG; parent folders are created.
        title: the figure's title; default: it names the two splits the curves are drawn on
            (``train_*``: the training split, ``val_*``: the tuning split early stopping watches).

    Returns:
        ``path``.

    Raises:
        DataError: no rows, or ``epoch`` / ``train_loss`` missing or not numeric.
    """
    from matplotlib.ticker import MaxNLocator

    frame = _validated(history)
    metric = _first_metric(frame)
    panels = ["loss"] + ([metric] if metric else [])

    fig = new_figure(5.4 * len(panels), 4.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    epochs = frame["epoch"].to_numpy(dtype=float)
    for ax, name in zip(axes, panels):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _draw_panel(ax, epochs, frame, name)
    fig.suptitle(title or "Per-epoch curves: training split and tuning split", fontsize=13, fontweight="bold")

    return save_figure(fig, path, dpi=150, facecolor="white")


def _validated(history: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(history, pd.DataFrame) or history.empty:
        got = "an empty table" if isinstance(history, pd.DataFrame) else type(history).__name__
        raise DataError(f"plot_curves needs a history table with one row per epoch, got {got}")
    lacking = [c for c in ("epoch", "train_loss") if c not in history.columns]
    if lacking:
        raise DataError(
            f"history: expected columns epoch, train_loss, val_loss (+ train_<m>/val_<m>), "
            f"got {list(history.columns)}; missing {lacking}"
        )
    frame = history.copy()
    for column in frame.columns:
        if column == "epoch" or column.startswith(("train_", "val_")):
            values = pd.to_numeric(frame[column], errors="coerce")
            if column == "epoch" and values.isna().any():
                raise DataError(f"history: column 'epoch' must be numbers, got {frame[column].tolist()[:5]}")
            frame[column] = values.astype(float).replace([np.inf, -np.inf], np.nan)
    return frame.sort_values("epoch", kind="stable").reset_index(drop=True)


def _first_metric(frame: pd.DataFrame) -> str | None:
    """The first ``<m>`` (not loss) with a ``train_<m>`` or ``val_<m>`` column; pairs first."""
    names: list[str] = []
    for column in frame.columns:
        for prefix in ("train_", "val_"):
            if column.startswith(prefix) and column[len(prefix):] not in ("loss", *names):
                names.append(column[len(prefix):])
    paired = [m for m in names if f"train_{m}" in frame and f"val_{m}" in frame]
    return (paired or names or [None])[0]


def _draw_panel(ax, epochs: np.ndarray, frame: pd.DataFrame, name: str) -> None:
    few = len(epochs) <= 30  # markers help read short runs; they clutter long ones
    drawn = False
    for split, color in (("train", _TRAIN_COLOR), ("val", _VAL_COLOR)):
        column = f"{split}_{name}"
        if column not in frame or frame[column].isna().all():
            continue
        values = frame[column].to_numpy()
        label = "training split" if split == "train" else "tuning split"
        # NaN leaves a gap; markers keep a point between two gaps visible
        marked = few or bool(np.isnan(values).any())
        ax.plot(epochs, values, color=color, linewidth=2, label=label,
                marker="o" if marked else None, markersize=4 if few else 2.5)
        drawn = True
    _mark_best(ax, epochs, frame, name)

    lower = any(key in name.lower() for key in _LOWER_IS_BETTER)
    pretty = _PRETTY.get(name, name.replace("_", " ").capitalize())
    ax.set_title(f"{pretty} ({'lower' if lower else 'higher'} is better)", fontsize=11)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(pretty)
    ax.grid(True, color="#000000", alpha=0.08, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if drawn:
        ax.legend(frameon=False, loc="best")
    else:
        ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes,
                ha="center", va="center", color="#777777")
    if len(epochs) == 1:  # one point: give it room, and no ticks at epochs that never ran
        ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
        ax.set_xticks([epochs[0]])


def _mark_best(ax, epochs: np.ndarray, frame: pd.DataFrame, name: str) -> None:
    """Star the best validation epoch (min for losses and errors, max otherwise)."""
    column = f"val_{name}"
    if column not in frame or frame[column].isna().all():
        return
    values = frame[column].to_numpy()
    lower = any(key in name.lower() for key in _LOWER_IS_BETTER)
    best = int(np.nanargmin(values) if lower else np.nanargmax(values))
    ax.axvline(epochs[best], color=_VAL_COLOR, alpha=0.35, linestyle=":", linewidth=1.2)
    ax.plot([epochs[best]], [values[best]], marker="*", markersize=15, color=_VAL_COLOR,
            markeredgecolor="white", markeredgewidth=0.8, linestyle="none", zorder=5,
            label=f"best: {values[best]:.4g} (epoch {epochs[best]:g})")
