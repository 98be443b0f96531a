"""The library's results as JSON answers (no numbers computed here, only reshaped).

``predict_many`` is what a predict batch runs: the tables of several requests in one
``FittedModel.predict`` call (one forward pass), its report cut back into one answer per
request. Inputs that cannot be used are skipped (``on_bad_input: skip_modality``) and
reported with their reasons, so one request's odd input never fails another's rows.
"""
from __future__ import annotations

import base64
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from polymodal.errors import PolymodalError
from polymodal.fitted import FittedModel, PredictionReport

__all__ = ["predict_many", "predictions", "importance", "embeddings", "results", "samples", "finite"]

POLICY = "skip_modality"


def finite(value: Any) -> Any:
    """``value`` with numpy scalars made plain and NaN / inf made None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def predict_many(fitted: FittedModel, frames: Sequence[pd.DataFrame]) -> list[Any]:
    """One answer (a list of row answers) per table, from one forward pass over them all.

    When the pass fails on what one request sent, each table is run alone, so that only that
    request gets the error (returned in its place, not raised).
    """
    if len(frames) == 1:
        try:
            return [predictions(fitted, fitted.predict(frames[0], on_bad_input=POLICY))]
        except PolymodalError as exc:
            return [exc]
    combined = pd.concat(list(frames), ignore_index=True)
    try:
        report = fitted.predict(combined, on_bad_input=POLICY)
    except PolymodalError:
        return [item for frame in frames for item in predict_many(fitted, [frame])]
    rows = predictions(fitted, report)
    out, start = [], 0
    for frame in frames:
        part = rows[start:start + len(frame)]
        for n, row in enumerate(part):
            row["row"] = n
        out.append(part)
        start += len(frame)
    return out


def predictions(fitted: FittedModel, report: PredictionReport) -> list[dict[str, Any]]:
    """Per row: ``label`` (or ``value``), ``probabilities``, ``absent`` and ``skipped`` inputs."""
    skipped: dict[Any, list[dict[str, str]]] = {}
    for row, name, reason in report.skipped.itertuples(index=False):
        skipped.setdefault(row, []).append({"input": name, "reason": reason})
    key = "label" if fitted.classes is not None else "value"
    probabilities = report.probabilities
    out = []
    for position, row in enumerate(report.predictions.index):
        absent = report.absent.iloc[position]
        answer = {"row": position, key: finite(report.predictions.iloc[position]),
                  "probabilities": None if probabilities is None else finite(probabilities.iloc[position].to_dict()),
                  "absent": [a for a in absent.split(";") if a] if isinstance(absent, str) else [],
                  "skipped": skipped.get(row, [])}
        out.append(answer)
    return out


def importance(result: Any) -> dict[str, Any]:
    """``ModalityImportance`` as ``inputs`` (the summary, one per input) and ``rows``."""
    summary = result.summary.reset_index()
    rows = [finite(r) for r in result.rows.reset_index(names="row").to_dict("records")]
    return {"inputs": [finite(r) for r in summary.to_dict("records")], "rows": rows,
            "ig_convergence_delta": finite(float(result.ig_convergence_delta))}


def embeddings(result: Any) -> dict[str, Any]:
    """``Embeddings`` as one vector (or None, for a row without the input) per row."""
    vectors: list[Any] = [None] * result.n_rows
    for row, vector in zip(result.rows.tolist(), result.vectors):
        vectors[row] = [round(float(v), 7) for v in vector]
    return {"column": result.column, "space": result.space, "dim": int(result.vectors.shape[1]),
            "vectors": vectors}


def results(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``rank, id, score`` rows as a list of objects."""
    return [finite(r) for r in frame.to_dict("records")]


def samples(made: Any, folder: Any, media_type: str) -> list[dict[str, Any]]:
    """Each generated sample: its row, sample number, the conditions and the file (base64)."""
    out = []
    for record in made.table.to_dict("records"):
        blob = (folder / record[made.target]).read_bytes()
        entry = {k: finite(v) for k, v in record.items()  # condition files are not sent back
                 if k != made.target and not isinstance(v, (dict, bytes))}
        entry.update({"target": made.target, "media_type": media_type, "base64": base64.b64encode(blob).decode()})
        out.append(entry)
    return out
