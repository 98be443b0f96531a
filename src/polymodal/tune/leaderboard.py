"""The leaderboard of a search: one row per trial (a CSV, printed) and a plot of the trials' values.

Both are rewritten after every trial, each through a temporary file renamed into place, so that a
search killed at any moment leaves a complete table and picture of the trials finished so far.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from polymodal.reports.figure import new_figure, save_figure

__all__ = ["leaderboard", "write_leaderboard", "plot_leaderboard", "format_leaderboard"]

_COLOR = {"COMPLETE": "#4C72B0", "PRUNED": "#DD8452", "FAIL": "#C44E52"}


def leaderboard(trials: list[Any], metric: str, direction: str, interrupted: set[int] = frozenset()) -> pd.DataFrame:
    """The trials as a table, best first (finished trials by ``metric``, then pruned, failed, running).

    Args:
        trials: Optuna ``FrozenTrial``s.
        metric: the tuning metric each finished trial is scored by (the column's name).
        direction: ``maximize`` or ``minimize``.
        interrupted: the numbers of the trials that were running when the search stopped.

    Returns:
        Columns ``rank``, ``trial``, ``state``, ``<metric>``, ``epochs``, ``seconds``, one column per
        searched key, and ``note`` (the base config, why a trial was pruned or failed).
    """
    rows = []
    keys: list[str] = []
    for t in trials:
        keys += [k for k in t.params if k not in keys]
    for t in trials:
        value = t.value if t.state.name == "COMPLETE" else None
        rows.append({"trial": t.number, "state": t.state.name, metric: value,
                     "epochs": t.user_attrs.get("epochs"), "seconds": t.user_attrs.get("seconds"),
                     **{k: t.params.get(k) for k in keys}, "note": _note(t, interrupted)})
    frame = pd.DataFrame(rows, columns=["trial", "state", metric, "epochs", "seconds", *keys, "note"])
    order = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2}
    sign = -1.0 if direction == "maximize" else 1.0
    frame = frame.assign(
        _state=frame["state"].map(lambda s: order.get(s, 3)),
        _value=frame[metric].map(lambda v: sign * v if v is not None and not pd.isna(v) else math.inf))
    frame = frame.sort_values(["_state", "_value", "trial"], kind="stable").drop(columns=["_state", "_value"])
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def format_leaderboard(frame: pd.DataFrame) -> str:
    """The leaderboard as printed text: numbers rounded, empty cells blank."""
    shown = frame.astype(object).where(frame.notna(), "")
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}",
                           formatters={"seconds": lambda v: f"{v:.1f}" if v != "" else ""})


def write_leaderboard(frame: pd.DataFrame, path: Path) -> Path:
    """Write the leaderboard CSV atomically (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def plot_leaderboard(trials: list[Any], metric: str, direction: str, path: Path, title: str | None = None) -> Path:
    """Plot each trial's tuning value by trial number, with the best so far as a step line.

    Finished trials are dots; pruned trials (crosses) and failed ones (triangles) have no tuning
    value and are marked along the bottom.
    """
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(6.4, 4.0)
    ax = fig.subplots()
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    ax.scatter([t.number for t in done], [t.value for t in done], color=_COLOR["COMPLETE"], zorder=3,
               label="finished")
    best, line_x, line_y = None, [], []
    better = max if direction == "maximize" else min
    for t in sorted(done, key=lambda t: t.number):
        best = t.value if best is None else better(best, t.value)
        line_x.append(t.number)
        line_y.append(best)
    if line_x:
        ax.step(line_x, line_y, where="post", color="#55A868", label="best so far")
    for state, marker in (("PRUNED", "x"), ("FAIL", "v")):
        numbers = [t.number for t in trials if t.state.name == state]
        if numbers:
            bottom = min(t.value for t in done) if done else 0.0
            ax.scatter(numbers, [bottom] * len(numbers), marker=marker, color=_COLOR[state],
                       label="pruned" if state == "PRUNED" else "failed", zorder=2)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"tuning {metric}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    save_figure(fig, tmp)
    os.replace(tmp, path)
    return path


def _note(trial: Any, interrupted: set[int]) -> str:
    notes = []
    if trial.user_attrs.get("base"):
        notes.append("the base config")
    if "retry_of" in trial.user_attrs:
        notes.append(f"trial {trial.user_attrs['retry_of']} run again")
    if trial.number in interrupted:
        notes.append("interrupted when the search stopped; run again")
    elif trial.user_attrs.get("pruned") or trial.user_attrs.get("error"):
        notes.append(str(trial.user_attrs.get("pruned") or trial.user_attrs.get("error")))
    return "; ".join(notes)
