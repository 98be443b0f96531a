"""``polymodal predict``: a table's predictions, written a chunk of rows at a time.

A plain function with typer annotations; ``polymodal.cli`` registers it on its app (with its
error handling). The table is read, decoded and predicted a chunk at a time when its file can
be read in parts (``polymodal.streaming``); each chunk's rows are appended to a temporary file
beside ``--out``, renamed to it at the end, so an error or a crash half-way leaves no
predictions file under that name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

__all__ = ["predict"]


def predict(
    model: Path = typer.Argument(..., help="model directory"),
    data: str = typer.Option(..., "--data", help="table to predict (label column not needed)"),
    out: Path = typer.Option(..., "--out", help="CSV to write"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the table must stay inside this folder"),
    on_bad_input: Optional[str] = typer.Option(None, "--on-bad-input", help="error | skip_row | skip_modality (default: the model's config)"),
    shard_spec: Optional[str] = typer.Option(None, "--shard", help="I/N: predict only the I-th of N contiguous "
                                             "parts of the table (0 <= I < N), for N jobs of a scheduler"),
    allow_urls: bool = typer.Option(False, "--allow-urls", help="image and audio cells may be URLs (https://, s3://, "
                                    "...), read over the network"),
    chunk_rows: int = typer.Option(4096, "--chunk-rows", min=1, help="rows read, decoded and predicted at a time "
                                   "(Parquet, CSV, JSON lines)"),
) -> None:
    """Predict a label (and one probability column per class) or a value per row.

    A ``skipped_reason`` column says, per row, which inputs ``on_bad_input`` skipped and why.
    The ``row`` column is the row's label in the whole table, so the files of ``--shard``
    jobs concatenate into the whole table's predictions. A Parquet file (or folder of Parquet
    shards), CSV or JSON lines table is read a chunk at a time: memory does not grow with its length.
    """
    from polymodal.outputs import atomic_file, check_output_file
    from polymodal.predictor import Predictor

    check_output_file(out, "predictions file")
    predictor = Predictor.load(model, data_root=data_root, allow_urls=True if allow_urls else None)
    rows = skipped = flagged = 0
    with atomic_file(out, "predictions file") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        for n, report in enumerate(predictor.predict_chunks(data, on_bad_input=on_bad_input, chunk_rows=chunk_rows,
                                                            shard=shard_spec)):
            table = _table(report)
            table.to_csv(fh, index_label="row", header=n == 0)  # the header once, above the first chunk
            rows += len(table)
            skipped += int(report.predictions.isna().sum())
            flagged += int((table["skipped_reason"] != "").sum())
    note = [f"{skipped} rows skipped"] if skipped else []
    note += [f"{flagged - skipped} rows predicted without an unreadable input"] if flagged > skipped else []
    typer.echo(f"wrote {rows:,} predictions to {out}" + (f" ({'; '.join(note)}; see skipped_reason)" if note else ""))


def _table(report):
    """One chunk's rows of the predictions file."""
    import pandas as pd

    prediction = report.predictions
    columns = {f"predicted_{prediction.name}": prediction}
    if report.probabilities is not None:
        columns.update({f"proba_{c}": report.probabilities[c] for c in report.probabilities.columns})
    table = pd.DataFrame(columns)
    reasons: dict = {}
    for row, name, reason in report.skipped.itertuples(index=False):
        reasons[row] = f"{reasons[row]}; {name}: {reason}" if row in reasons else f"{name}: {reason}"
    table["skipped_reason"] = [reasons.get(i, "") for i in table.index]
    table["absent_inputs"] = report.absent  # inputs a row lacked (empty cell or no column)
    return table
