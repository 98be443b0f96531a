"""The files ``polymodal evaluate`` writes into ``--report-dir``: the confusion matrix of the
evaluated table (classification) and the robustness report (``--robustness``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

__all__ = ["write_confusion", "write_robustness", "table_name"]


def table_name(data: str) -> str:
    """How a plot's title names the evaluated table: its file or folder name."""
    return Path(str(data)).name or str(data)


def write_confusion(predictor: Any, report: Any, report_dir: Path, model: Path, data: str) -> str:
    """``confusion_matrix.png`` and ``confusion_matrix.csv`` (rows: true class, columns: predicted)
    of the evaluated table, when the model is a classifier; returns the line saying where they are
    (``""`` for other models)."""
    import numpy as np
    import pandas as pd

    from polymodal.reports import plot_confusion_matrix

    if report.confusion is None or predictor.classes_ is None:
        return ""
    names = [str(c) for c in predictor.classes_]
    matrix = np.asarray(report.confusion)
    report_dir.mkdir(parents=True, exist_ok=True)
    csv, png = report_dir / "confusion_matrix.csv", report_dir / "confusion_matrix.png"
    frame = pd.DataFrame(matrix, index=pd.Index(names, name="true"), columns=names)
    frame.to_csv(csv)
    plot_confusion_matrix(matrix, names, png, split=f"{model.name} on {table_name(data)}")
    return f"confusion matrix: {png}  table: {csv}"


def write_robustness(predictor: Any, data: str, report_dir: Path, as_json: bool, model: Path,
                     on_bad_input: Optional[str]) -> None:
    """``robustness.csv`` and ``robustness.png`` in ``report_dir``, and the table on stdout."""
    from polymodal.reports import plot_robustness, robustness_report

    report = robustness_report(predictor.fitted_, data, on_bad_input=on_bad_input)
    report_dir.mkdir(parents=True, exist_ok=True)
    report.to_csv(report_dir / "robustness.csv", index=False)
    plot_robustness(report, report_dir / "robustness.png", title=f"{model.name} on {table_name(data)}")
    if as_json:
        typer.echo(report.to_json(orient="records", indent=2))
        return
    shown = report.drop(columns=["severity", "n"]).fillna("")
    typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"({report['n'].iloc[0]:,} rows) table: {report_dir / 'robustness.csv'}  plot: {report_dir / 'robustness.png'}")
