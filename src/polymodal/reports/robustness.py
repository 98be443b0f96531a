"""Robustness report: the metric with each input removed, and under increasing noise per input.

How an input is noised belongs to its modality (``Modality.noise``, defined in
``modalities/<name>/perturb.py``): image pixels get Gaussian noise, audio waveforms white
noise at an SNR, text token dropout, tabular numbers Gaussian noise, on plain and
pretrained-backbone columns alike. Noise is applied to the decoded inputs of the evaluation
table (never to training) and seeded per row and level, so a report repeats exactly. An
input that cannot be noised (its modality defines no noise, or ``Noise.applies`` gives a
reason) gets one ``not perturbed`` row that says why.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from polymodal.data.dataset import LoadedInputs
from polymodal.errors import ConfigError
from polymodal.data.skips import warn_unknown_labels
from polymodal.fitted import as_fitted
from polymodal.modalities.base import get_modality
from polymodal.reports.figure import new_figure, save_figure

__all__ = ["robustness_report", "plot_robustness"]


def robustness_report(fitted: Any, data: Any, levels: Mapping[str, Sequence[float]] | None = None,
                      seed: int = 0, on_bad_input: str | None = None) -> pd.DataFrame:
    """Score a fitted model on ``data`` clean, with each input removed, and under noise.

    Args:
        fitted: a ``FittedModel`` (or a fitted ``polymodal.Predictor``: its ``fitted_``).
        data: a labelled table (path, DataFrame or ``Table``).
        levels: modality → noise levels, overriding the modality's defaults (``Noise.levels``).
        seed: seeds the noise (per row and level).
        on_bad_input: the policy for unreadable inputs; None = the model's config.

    Returns:
        One row per condition: ``input``, ``modality``, ``condition`` (``clean``,
        ``removed``, ``noise``, ``not perturbed``), ``noise`` (what the level means; for
        ``not perturbed``, why), ``level``, ``severity`` (0 = clean, 1.. = increasing noise),
        ``metric`` (its name), ``value`` (NaN when not perturbed) and ``n``.
    """
    fitted = as_fitted(fitted)
    metric = fitted.task.metric_name
    if fitted.model.head is None or metric is None:
        raise ConfigError(f"the robustness report scores a classification or regression model; this one is "
                          f"{fitted.schema.problem_type!r}")
    table = fitted.read_table(data)
    pres = fitted.preprocessors
    loaded, target = fitted.load_inputs(table, labelled=True, on_bad_input=on_bad_input, unknown="drop")
    warn_unknown_labels(loaded, table, "the robustness report")

    def score(items: Mapping[str, list]) -> float:
        return float(fitted.score(LoadedInputs(dict(items), loaded.rows), target)[0][metric])

    clean = score(loaded.items)
    rows = [{"input": "(all)", "modality": "", "condition": "clean", "noise": "", "level": 0.0,
             "severity": 0, "value": clean}]
    for name in sorted(pres):
        pre = pres[name]
        modality = pre.modality
        rows.append({"input": name, "modality": modality, "condition": "removed", "noise": "", "level": math.nan,
                     "severity": math.nan, "value": score({**loaded.items, name: [None] * len(loaded)})})
        noise = get_modality(modality).noise
        reason = f"{modality} inputs define no noise" if noise is None else noise.applies(pre)
        if reason:
            rows.append({"input": name, "modality": modality, "condition": "not perturbed", "noise": reason,
                         "level": math.nan, "severity": math.nan, "value": math.nan})
            continue
        reload = functools.partial(_reload, fitted, table, name, loaded, on_bad_input)
        for severity, level in enumerate((levels or {}).get(modality, noise.levels), start=1):
            items = noise.perturb(pre, loaded.items[name], float(level), seed, reload)
            rows.append({"input": name, "modality": modality, "condition": "noise", "noise": noise.meaning,
                         "level": float(level), "severity": severity,
                         "value": score({**loaded.items, name: items})})
    frame = pd.DataFrame(rows)
    frame.insert(len(frame.columns) - 1, "metric", metric)
    frame["n"] = len(loaded)
    return frame


def _reload(fitted: Any, table: Any, name: str, loaded: LoadedInputs, on_bad_input: str | None,
            pre: Any) -> list:
    """Input ``name`` decoded again through ``pre`` (a noisy or storeless copy), in ``loaded``'s rows."""
    again, _ = fitted.load_inputs(table, labelled=True, on_bad_input=on_bad_input, unknown="drop",
                                  preprocessors={name: pre})
    by_row = dict(zip(again.rows.tolist(), again.items[name]))
    return [by_row.get(r) for r in loaded.rows.tolist()]


def plot_robustness(report: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """One panel per input: the metric against noise severity, with its clean and removed levels.

    Drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas: the host's backend and
    pyplot's figures are left as they were.
    """
    inputs = [n for n in report["input"].unique() if n != "(all)"]
    metric = str(report["metric"].iloc[0])
    clean = float(report.loc[report.condition == "clean", "value"].iloc[0])
    fig = new_figure(4.2 * max(1, len(inputs)), 3.4)
    axes = fig.subplots(1, max(1, len(inputs)), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], inputs):
        part = report[report.input == name]
        noise = part[part.condition == "noise"].sort_values("severity")
        refused = part.loc[part.condition == "not perturbed", "noise"]
        xs = [0] + noise.severity.astype(int).tolist()
        ax.plot(xs, [clean] + noise.value.tolist(), marker="o", label="noised")
        removed = part.loc[part.condition == "removed", "value"]
        if len(removed):
            ax.axhline(float(removed.iloc[0]), color="tab:red", linestyle="--", label="removed")
        ax.set_xticks(xs)
        ax.set_xticklabels(["clean"] + [f"{v:g}" for v in noise.level])
        ax.set_title(f"{name} ({part.modality.iloc[0]})")
        if len(noise):
            ax.set_xlabel(noise.noise.iloc[0])
        elif len(refused):
            ax.set_xlabel(f"not perturbed: {refused.iloc[0]}", fontsize=7, wrap=True)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
