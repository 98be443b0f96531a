"""Predict and evaluate a table a chunk of rows at a time: tables larger than memory.

A table file that ``data.chunks`` reads in parts (Parquet, a folder of Parquet shards, CSV,
JSON lines) is read, decoded and run through the model a chunk at a time, so memory holds a
chunk or two of decoded inputs whatever the table's length; other data (a DataFrame, a class
folder, a JSON array) is read whole, as before. Forward batches are cut from the stream of kept
rows, not from each chunk: every row meets the model in the same batch as in one pass over the
whole table, so outputs, predictions and metrics are the same to the bit. Rows keep their
position in the whole table (``--shard I/N`` reads only its range of rows), and evaluation
gathers the outputs and targets of every chunk before scoring them once.

Only models that predict a label (classification, regression) stream their evaluation; an
alignment model's ranking and a generation model's scores need every row at once.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from polymodal.builders import input_specs
from polymodal.data.chunks import CHUNK_ROWS, ChunkedTable, open_chunked
from polymodal.data.dataset import LoadedInputs
from polymodal.data.presence import Absences, fill_absent_columns
from polymodal.data.skips import warn_unknown_labels
from polymodal.data.tables import Table, shard, shard_range
from polymodal.errors import DataError
from polymodal.fitted import BATCH, FittedModel, require_columns
from polymodal.results import EvaluationReport, PredictionReport, count_skips

__all__ = ["open_stream", "predict_chunks", "predict_report", "evaluate_report", "CHUNK_ROWS"]

log = logging.getLogger("polymodal")


def open_stream(fitted: FittedModel, data: Any, labelled: bool = False,
                extra: Sequence[str] = ()) -> ChunkedTable | None:
    """``data`` as a ``ChunkedTable`` of the model's columns (the label when ``labelled``, and
    ``extra``), when it is the path of a table file that can be read in parts; else None."""
    columns = [c for spec in input_specs(fitted.schema) for c in spec["columns"]] + list(extra)
    if labelled:
        columns += fitted.schema.label_columns
    return open_chunked(data, columns)


def predict_chunks(fitted: FittedModel, data: Any, on_bad_input: str | None = None, shard_spec: str | None = None,
                   chunk_rows: int = CHUNK_ROWS) -> Iterator[PredictionReport]:
    """Prediction reports of a table, one per chunk of rows, in order; indexed by the rows'
    position in the whole table (a DataFrame or a table read whole: one report).

    Args:
        shard_spec: ``I/N``: only the I-th of N contiguous parts of the table (see ``tables.shard``).

    Raises:
        DataError: as ``FittedModel.predict``; under ``on_bad_input: error`` at the first chunk
            with an unreadable input, naming its rows.
    """
    fitted.check_predicts()
    stream = open_stream(fitted, data)
    if stream is None:
        part, _ = shard(fitted.read_table(data), shard_spec)
        yield fitted.predict(part, on_bad_input=on_bad_input)
        return
    absences = Absences()
    yield from _predicted(fitted, stream, fitted.policy(on_bad_input), shard_range(stream.n_rows, shard_spec),
                          chunk_rows, absences)
    absences.warn_no_input(stream.source)


def predict_report(fitted: FittedModel, data: Any, on_bad_input: str | None = None,
                   chunk_rows: int = CHUNK_ROWS) -> PredictionReport:
    """``FittedModel.predict``, a chunk at a time when ``data`` is a table file read in parts."""
    fitted.check_predicts()
    stream = open_stream(fitted, data)
    if stream is None:
        return fitted.predict(data, on_bad_input=on_bad_input)
    absences = Absences()
    reports = list(_predicted(fitted, stream, fitted.policy(on_bad_input), (0, stream.n_rows), chunk_rows,
                              absences))
    probabilities = None if reports[0].probabilities is None else pd.concat([r.probabilities for r in reports])
    _, nothing = absences.warn_no_input(stream.source)
    note = "\n".join(n for n in (absences.describe(stream.source), nothing) if n)
    fitted.warn_untrained_absence(absences, str(stream.source))
    skipped = pd.DataFrame([row for r in reports for row in r.skipped.itertuples(index=False)],
                           columns=["row", "input", "reason"])  # as skipped_frame builds it for a whole table
    return PredictionReport(pd.concat([r.predictions for r in reports]), probabilities, skipped,
                            pd.concat([r.absent for r in reports]), note)


def _predicted(fitted: FittedModel, stream: ChunkedTable, policy: str, rows: tuple[int, int], chunk_rows: int,
               absences: Absences) -> Iterator[PredictionReport]:
    empty = True
    for piece in _run(fitted, _filled(fitted, stream, *rows, chunk_rows), policy):
        absences.add(piece.loaded)
        empty = False
        yield fitted.report(piece.table.frame.index, piece.loaded, fitted.task.concat(piece.outputs, fitted.labels))
    if empty:  # an empty shard: a report of no rows, so that its file still has the header
        nothing = LoadedInputs({name: [] for name in fitted.preprocessors}, np.zeros(0, dtype=np.int64))
        yield fitted.report(pd.RangeIndex(rows[0], rows[0]), nothing, fitted.task.concat([], fitted.labels))


def evaluate_report(fitted: FittedModel, data: Any, on_bad_input: str | None = None,
                    chunk_rows: int = CHUNK_ROWS) -> EvaluationReport:
    """``FittedModel.evaluate``, a chunk at a time when ``data`` is a table file read in parts
    and the model predicts a label: the outputs and targets of every chunk, scored once."""
    stream = open_stream(fitted, data, labelled=True) if _predicts(fitted) else None
    if stream is None:
        return fitted.evaluate(data, on_bad_input=on_bad_input)
    require_columns(Table(pd.DataFrame(columns=stream.columns), stream.base_dir, stream.source),
                    fitted.schema, need_label=True)
    outputs, targets, skipped, unknown = [], [], [], 0
    absences = Absences()
    pieces = _run(fitted, _filled(fitted, stream, 0, stream.n_rows, chunk_rows), fitted.policy(on_bad_input),
                  labelled=True)
    for piece in pieces:
        outputs += piece.outputs
        targets.append(piece.target)
        index = piece.table.frame.index
        skipped += [(int(index[i]), name, reason) for i, name, reason in piece.loaded.skipped]
        unknown += piece.loaded.unknown_label
        absences.add(piece.loaded)
    if not absences.rows:
        raise DataError(f"{stream.source}: no rows to evaluate: every row was skipped or had a "
                        "label the model was not trained on")
    kept = LoadedInputs({}, np.arange(absences.rows), sorted(skipped), unknown_label=unknown)
    metrics, confusion = fitted.task.score(fitted.task.concat(outputs, fitted.labels), torch.cat(targets),
                                           fitted.labels, kept)
    count_skips(metrics, skipped, unknown, absences.warn_no_input(stream.source)[0])
    whole = Table(pd.DataFrame(index=pd.RangeIndex(stream.n_rows)), stream.base_dir, stream.source)
    warn_unknown_labels(kept, whole, "the metrics", log)
    frame = pd.DataFrame(sorted(skipped), columns=["row", "input", "reason"])
    return EvaluationReport(metrics, confusion, frame)


def _predicts(fitted: FittedModel) -> bool:
    """Whether the model predicts a label per row (its outputs are one tensor row per table row)."""
    return fitted.labels.get("targets") is None and getattr(fitted.model, "head", None) is not None


def _filled(fitted: FittedModel, stream: ChunkedTable, start: int, stop: int, chunk_rows: int) -> Iterator[Table]:
    """The chunks of rows ``[start, stop)``, with the input columns the table lacks added, empty
    (said once, as ``FittedModel.read_table`` says it)."""
    inputs = {name: pre.columns for name, pre in fitted.preprocessors.items()}
    lacking = [c for c in fill_absent_columns(pd.DataFrame(columns=stream.columns), inputs, stream.source).columns
               if c not in stream.columns]
    for table in stream.chunks(start, stop, chunk_rows):
        for column in lacking:
            table.frame[column] = None
        yield table


@dataclass
class _Piece:
    """A chunk, its loaded rows and targets, and the outputs of those already run."""

    table: Table
    loaded: LoadedInputs
    target: torch.Tensor | None
    outputs: list = field(default_factory=list)
    done: int = 0  # loaded rows run so far

    @property
    def waiting(self) -> int:
        return len(self.loaded) - self.done


def _run(fitted: FittedModel, tables: Iterator[Table], policy: str, labelled: bool = False) -> Iterator[_Piece]:
    """Each chunk with the outputs of all its loaded rows, in order. Whole batches are run as
    soon as there are rows for them; a chunk's last rows wait for the next chunk's first."""
    queue: deque[_Piece] = deque()
    for table in tables:
        loaded, target = fitted.load_inputs(table, labelled=labelled, on_bad_input=policy, unknown="drop")
        queue.append(_Piece(table, loaded, target))
        waiting = sum(p.waiting for p in queue)
        _forward(fitted, queue, waiting - waiting % BATCH)
        while queue and queue[0].waiting == 0:
            yield queue.popleft()
    _forward(fitted, queue, sum(p.waiting for p in queue))
    yield from queue


def _forward(fitted: FittedModel, queue: deque, n: int) -> None:
    """Run the next ``n`` waiting rows of the queued chunks as one sequence of batches."""
    if n == 0:
        return
    spans = []
    for piece in queue:
        take = min(piece.waiting, n - sum(b - a for _, a, b in spans))
        if take:
            spans.append((piece, piece.done, piece.done + take))
    names = sorted(fitted.preprocessors)
    rows = LoadedInputs({name: [it for piece, a, b in spans for it in piece.loaded.items[name][a:b]]
                         for name in names}, np.arange(n))
    outputs = fitted.forward(rows)
    at = 0
    for piece, a, b in spans:
        piece.outputs.append(fitted.task.take(outputs, at, at + b - a))
        piece.done, at = b, at + b - a

