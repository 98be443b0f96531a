"""Bar chart of modality importance (``polymodal.explain``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from polymodal.reports.figure import new_figure, save_figure

__all__ = ["plot_importance"]


def plot_importance(summary: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Two panels over the inputs: ablation (mean drop of the predicted class's probability,
    and of the metric when labels were given) and integrated gradients (share of mean |IG|).

    Args:
        summary: ``ModalityImportance.summary`` (index = input names).

    Drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas: the host's backend and
    pyplot's figures are left as they were.
    """
    names = [str(n) for n in summary.index]
    xs = range(len(names))
    fig = new_figure(4 + 1.6 * len(names), 3.4)
    left, right = fig.subplots(1, 2)
    has_drop = "ablation_metric_drop" in summary.columns
    width = 0.4 if has_drop else 0.6
    left.bar([x - (width / 2 if has_drop else 0) for x in xs], summary["ablation"], width, label="mean per-row change")
    if has_drop:
        left.bar([x + width / 2 for x in xs], summary["ablation_metric_drop"], width, label="metric drop")
        left.legend(fontsize=8)
    left.axhline(0, color="black", linewidth=0.8)
    left.set_title("ablation (input removed)")
    right.bar(list(xs), summary["ig_share"], 0.6, color="tab:green")
    right.set_title("integrated gradients (share of |IG|)")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names, rotation=20)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
