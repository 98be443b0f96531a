"""``polymodal predict``: a table's predictions, written a chunk of rows at a time.

A plain function with typer annotations; ``polymodal.cli`` registers it on its app (with its
error handling). The table is read, decoded and predicted a chunk at a time when its file can
be read in parts (``polymodal.streaming``); each chunk's rows are appended to a temporary file
beside ``--out``, renamed to it at the end, so an error or a crash half-way leaves no
predictions file under that name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional

import typer

from polymodal.errors import DataError

__all__ = ["predict"]


def predict(
    model: Path = typer.Argument(..., help="model directory"),
    data: str = typer.Option(..., "--data", help="table to predict (label column not needed)"),
    out: Path = typer.Option(..., "--out", help="CSV to write"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the table must stay inside this folder"),
    on_bad_input: Optional[str] = typer.Option(None, "--on-bad-input", help="error | skip_row | skip_modality (default: the model's config)"),
    shard_spec: Optional[str] = typer.Option(None, "--shard", help="I/N: predict only the I-th of N contiguous "
                                             "parts of the table (0 <= I < N), for N jobs of a scheduler"),
    allow_urls: Optional[bool] = typer.Option(None, "--allow-urls/--no-allow-urls", help="image and audio cells may "
                                              "(may not) be URLs (https://, s3://, ...), read over the network "
                                              "(default: the model's config)"),
    chunk_rows: int = typer.Option(4096, "--chunk-rows", min=1, help="rows read, decoded and predicted at a time "
                                   "(Parquet, CSV, JSON lines)"),
    id_column: Optional[List[str]] = typer.Option(None, "--id-column", metavar="COL", help="copy this input column next to the "
                                                  "predictions (repeatable, or a comma-separated list)"),
) -> None:
    """Predict a label (and one probability column per class) or a value per row.

    A ``skipped_reason`` column says, per row, which inputs ``on_bad_input`` skipped and why.
    The ``row`` column is the row's label in the whole table, so the files of ``--shard``
    jobs concatenate into the whole table's predictions; the --id-column columns follow it, copied
    from the table. A Parquet file (or folder of Parquet
    shards), CSV or JSON lines table is read a chunk at a time: memory does not grow with its length.
    """
    from polymodal.outputs import atomic_file, check_output_file
    from polymodal.predictor import Predictor

    check_output_file(out, "predictions file")
    predictor = Predictor.load(model, data_root=data_root, allow_urls=allow_urls)
    ids = _id_names(id_column)
    id_rows = _IdColumns(predictor.fitted_, data, ids, shard_spec, chunk_rows) if ids else None
    rows = skipped = flagged = 0
    with atomic_file(out, "predictions file") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        for n, report in enumerate(predictor.predict_chunks(data, on_bad_input=on_bad_input, chunk_rows=chunk_rows,
                                                            shard=shard_spec)):
            table = _table(report)
            if id_rows is not None:
                table = id_rows.beside(table)
            table.to_csv(fh, index_label="row", header=n == 0)  # the header once, above the first chunk
            rows += len(table)
            missing = report.predictions.isna()  # several labels: a row is skipped when all are missing
            skipped += int((missing if missing.ndim == 1 else missing.all(axis=1)).sum())
            flagged += int((table["skipped_reason"] != "").sum())
    note = [f"{skipped} rows skipped"] if skipped else []
    note += [f"{flagged - skipped} rows predicted without an unreadable input"] if flagged > skipped else []
    typer.echo(f"wrote {rows:,} predictions to {out}" + (f" ({'; '.join(note)}; see skipped_reason)" if note else ""))


def _table(report):
    """One chunk's rows of the predictions file."""
    import pandas as pd

    frame = report.predictions.to_frame() if isinstance(report.predictions, pd.Series) else report.predictions
    # a set of labels (multilabel) is written as 'a|b' ('' for none); several labels: a column each
    columns = {f"predicted_{c}": frame[c].map(lambda v: "|".join(map(str, v)) if isinstance(v, list) else v)
               for c in frame.columns}
    if report.probabilities is not None:
        columns.update({f"proba_{c}": report.probabilities[c] for c in report.probabilities.columns})
    table = pd.DataFrame(columns)
    reasons: dict = {}
    for row, name, reason in report.skipped.itertuples(index=False):
        reasons[row] = f"{reasons[row]}; {name}: {reason}" if row in reasons else f"{name}: {reason}"
    table["skipped_reason"] = [reasons.get(i, "") for i in table.index]
    table["absent_inputs"] = report.absent  # inputs a row lacked (empty cell or no column)
    return table


def _id_names(given: Optional[List[str]]) -> list[str]:
    """The ``--id-column`` names, in order, each once (repeated options and comma lists alike)."""
    names: list[str] = []
    for value in given or []:
        names += [n.strip() for n in value.split(",") if n.strip() and n.strip() not in names]
    return names


class _IdColumns:
    """The ``--id-column`` columns of the table, read a chunk at a time beside the predictions
    (the whole table at once when its file cannot be read in parts), indexed by row position.

    Raises:
        DataError: a column is not in the table.
    """

    def __init__(self, fitted, data: str, ids: list[str], shard_spec: Optional[str], chunk_rows: int) -> None:
        import pandas as pd

        from polymodal.data.chunks import open_chunked
        from polymodal.data.tables import shard_range

        stream = open_chunked(data, ids)
        frame = fitted.read_table(data, fill_absent=False).frame if stream is None else None
        columns = stream.columns if stream is not None else list(frame.columns)
        lacking = [c for c in ids if c not in columns]
        if lacking:
            raise DataError(f"--id-column: {data} has no column {', '.join(map(repr, lacking))}; its columns are: "
                            f"{', '.join(map(str, columns))}")
        if stream is None:
            self.frames: Iterator = iter([frame[ids]])
        else:
            start, stop = shard_range(stream.n_rows, shard_spec)
            self.frames = (t.frame[ids] for t in stream.chunks(start, stop, chunk_rows)) if stop > start else iter([])
        self.ids = ids
        self.pending = pd.DataFrame(columns=ids)  # rows read but not yet written

    def beside(self, table):
        """``table`` (one chunk's predictions, indexed by row position, after the rows of the
        chunks before) with the id columns in front."""
        import pandas as pd

        clash = [c for c in self.ids if c in table.columns]
        if clash:
            raise DataError(f"--id-column {clash[0]!r}: the predictions file has a column of that name already; "
                            "rename the column in the table")
        if len(table) == 0:
            return pd.concat([pd.DataFrame(columns=self.ids, index=table.index), table], axis=1)
        last = table.index.max()
        parts = [self.pending]
        while not len(parts[-1]) or parts[-1].index.max() < last:
            parts.append(next(self.frames))
        found = pd.concat([p for p in parts if len(p)])
        self.pending = found[found.index > last]
        return pd.concat([found.loc[table.index], table], axis=1)
