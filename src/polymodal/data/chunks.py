"""Read a table file a chunk of rows at a time: Parquet (a file or a folder of shards), CSV / TSV
(maybe compressed) and JSON lines.

Memory holds one chunk, whatever the table's length. Each chunk is a ``Table`` whose frame has
the columns and dtypes that reading the whole table gives, so every chunk reads as that part of
the whole table would: pandas infers a CSV chunk's dtypes from the chunk alone (a column of
numbers with a gap only in a later chunk, or a word only there), so a first pass settles each
column's dtype over the whole file and the second casts each chunk to it (or reads a column
that holds any text as text). JSON lines take the same two passes; Parquet's dtypes come from
its schema and row-group statistics. The frame's index is the rows' position in the whole
table, so messages and outputs name rows as the whole table does.

``open_chunked`` returns None for what cannot be read in parts (a JSON array, a class folder,
a DataFrame): callers read those whole.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from polymodal.data.formats import check_columns, check_header, check_rows, frame_of, parse_record, table_kind, \
    unreadable
from polymodal.data.parquet import ParquetTable, parquet_files
from polymodal.data.tables import Table

__all__ = ["ChunkedTable", "open_chunked", "CHUNK_ROWS"]

CHUNK_ROWS = 4096  # rows read and decoded at a time


@dataclass
class ChunkedTable:
    """A table file read in chunks.

    Attributes:
        source: the path, for messages; base_dir: the folder relative file paths start from.
        columns: every column of the table; read: those the chunks hold (``open_chunked``'s).
    """

    source: str
    base_dir: Path
    reader: Any

    @property
    def columns(self) -> list[str]:
        return list(self.reader.columns)

    @property
    def read(self) -> list[str]:
        return list(self.reader.read)

    @property
    def n_rows(self) -> int:
        """Rows in the whole table (for CSV and JSON lines, the first pass counts them)."""
        return self.reader.n_rows

    def chunks(self, start: int = 0, stop: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Iterator[Table]:
        """``Table`` chunks of rows ``[start, stop)``, in order, each at most ``chunk_rows`` long."""
        if self.n_rows == 0:
            check_rows(pd.DataFrame(), self.source)
        for frame in self.reader.chunks(start, self.n_rows if stop is None else stop, chunk_rows):
            yield Table(frame, self.base_dir, f"{self.source} (rows {frame.index[0]:,} to {frame.index[-1]:,})")


def open_chunked(source: Any, columns: Sequence[str] | None = None,
                 base_dir: Path | None = None) -> ChunkedTable | None:
    """``source`` as a ``ChunkedTable`` when it is the path of a table that can be read in parts.

    Args:
        columns: read only these (those the table has); None: every column.
        base_dir: as ``read_table``'s (default: the file's folder; a Parquet folder itself).

    Returns:
        None for a DataFrame, a missing path, a class folder, a JSON array file.

    Raises:
        DataError: the file is unreadable or its columns unusable.
    """
    if not isinstance(source, (str, Path)):
        return None
    path = Path(source).expanduser()
    if not path.exists():
        return None
    files = parquet_files(path)
    kind = table_kind(path) if path.is_file() else ""
    if files is not None:
        reader: Any = _Parquet(ParquetTable(path, files), columns)
        folder = path.resolve() if path.is_dir() else path.resolve().parent
    elif kind in (".csv", ".tsv"):
        reader, folder = _Delimited(path, "," if kind == ".csv" else "\t", columns), path.resolve().parent
    elif kind in (".jsonl", ".ndjson"):
        reader, folder = _JsonLines(path, columns), path.resolve().parent
    else:
        return None
    return ChunkedTable(str(path), Path(base_dir).resolve() if base_dir is not None else folder, reader)


class _Parquet:
    def __init__(self, table: ParquetTable, columns: Sequence[str] | None) -> None:
        self.table, self.columns = table, table.columns
        self.read = [c for c in self.columns if columns is None or c in columns]
        self.n_rows = table.n_rows

    def chunks(self, start: int, stop: int, chunk_rows: int) -> Iterator[pd.DataFrame]:
        return self.table.chunks(self.read, start, stop, chunk_rows)


def _sliced(frames: Iterator[pd.DataFrame], start: int, stop: int) -> Iterator[pd.DataFrame]:
    """The rows ``[start, stop)`` of consecutive frames numbered from 0 (their index is set)."""
    at = 0
    for frame in frames:
        first, at = at, at + len(frame)
        if at <= start:
            continue
        if first >= stop:
            return
        frame.index = pd.RangeIndex(first, at)
        yield frame.iloc[max(start - first, 0):min(stop, at) - first]


def _kind(series: pd.Series) -> str | None:
    """i(nt), f(loat), b(ool), s(tring) or o(bject) for a column of a chunk; None when it is all missing."""
    if series.isna().all():
        return None
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return "s"
    return dtype.kind if isinstance(dtype, np.dtype) and dtype.kind in "ifb" else "o"


class _Delimited:
    """CSV / TSV: the first pass records each column's dtype per chunk and counts the rows."""

    def __init__(self, path: Path, sep: str, columns: Sequence[str] | None) -> None:
        self.path, self.sep = path, sep
        self.columns = check_header(path, sep)
        self.read = [c for c in self.columns if columns is None or c in columns]
        self._rows: int | None = None
        self._cast: dict[str, Any] = {}
        self._text: list[str] = []

    def _frames(self, chunk_rows: int, text: Sequence[str] = ()) -> Iterator[pd.DataFrame]:
        usecols = self.read or self.columns[:1]
        try:
            with pd.read_csv(self.path, sep=self.sep, usecols=usecols, chunksize=chunk_rows,
                             low_memory=False, dtype={c: str for c in text} or None) as reader:
                yield from reader
        except (ValueError, OSError, UnicodeDecodeError) as exc:  # ParserError is a ValueError
            raise unreadable(self.path, exc) from None

    @property
    def n_rows(self) -> int:
        if self._rows is None:
            kinds: dict[str, set] = {c: set() for c in self.read}
            gaps: dict[str, bool] = dict.fromkeys(self.read, False)
            rows = 0
            for frame in self._frames(65536):
                rows += len(frame)
                for column in self.read:
                    kind = _kind(frame[column])
                    gaps[column] |= kind is None or kind == "f"
                    if kind is not None:
                        kinds[column].add(kind)
            for column in self.read:
                self._settle(column, kinds[column], gaps[column])
            self._rows = rows
        return self._rows

    def _settle(self, column: str, kinds: set, gaps: bool) -> None:
        """The dtype of ``column`` in the whole file, as pandas infers it from every row."""
        if not kinds or kinds <= {"i", "f"}:
            self._cast[column] = "int64" if kinds == {"i"} and not gaps else "float64"
        elif kinds == {"b"} and not gaps:
            self._cast[column] = bool
        elif kinds <= {"b", "o"}:
            self._cast[column] = object  # booleans with gaps: True, False and NaN
        else:
            self._text.append(column)  # words (maybe numbers in some chunks): read as text, as written

    def chunks(self, start: int, stop: int, chunk_rows: int) -> Iterator[pd.DataFrame]:
        self.n_rows  # the first pass settles the dtypes
        for frame in _sliced(self._frames(chunk_rows, self._text), start, stop):
            for column, dtype in self._cast.items():
                if frame[column].dtype != dtype:
                    frame[column] = frame[column].astype(dtype)
            yield frame


class _JsonLines:
    """JSON lines: the first pass gathers the columns (keys, in order of first appearance) and
    the kinds of value each holds; a chunk is then built as ``DataFrame.from_records`` builds
    the whole table."""

    def __init__(self, path: Path, columns: Sequence[str] | None) -> None:
        self.path = path
        examples: dict[str, dict[type, Any]] = {}  # column -> one value of each Python type it holds
        gaps: dict[str, set] = {}  # column -> how values are missing: an absent key and/or null
        rows = 0
        for records in self._records(65536):
            for record in records:
                for key in examples.keys() - record.keys():
                    gaps[key].add("absent")
                for key, value in record.items():
                    if key not in examples:
                        examples[key], gaps[key] = {}, {"absent"} if rows else set()
                    if value is None:
                        gaps[key].add("none")
                    else:
                        examples[key].setdefault(type(value), value)
                rows += 1
        self.columns = list(examples)
        if rows:
            check_columns(self.columns, str(path))
        self.read = [c for c in self.columns if columns is None or c in columns]
        self.dtypes = {c: _records_dtype(c, examples[c].values(), gaps[c]) for c in self.read}
        self.n_rows = rows

    def _records(self, chunk_rows: int) -> Iterator[list[dict[str, Any]]]:
        records: list[dict[str, Any]] = []
        number = 0
        try:
            with open(self.path, encoding="utf-8", newline="") as fh:
                for piece in fh:
                    for line in piece.splitlines():  # as str.splitlines splits the whole text
                        number += 1
                        record = parse_record(line, number)
                        if record is not None:
                            records.append(record)
                    if len(records) >= chunk_rows:
                        yield records
                        records = []
        except (ValueError, OSError) as exc:  # bad JSON, a repeated key, not UTF-8
            raise unreadable(self.path, exc) from None
        if records:
            yield records

    def chunks(self, start: int, stop: int, chunk_rows: int) -> Iterator[pd.DataFrame]:
        at = 0
        for records in self._records(chunk_rows):
            first, at = at, at + len(records)
            if at <= start:
                continue
            if first >= stop:
                return
            part = records[max(start - first, 0):min(stop, at) - first]
            frame = frame_of(part, self.path).reindex(columns=self.read)
            frame.index = pd.RangeIndex(max(start, first), min(stop, at))
            for column, dtype in self.dtypes.items():
                if dtype == object:  # the values as they are, an absent key as NaN
                    frame[column] = pd.Series([r.get(column, math.nan) for r in part], index=frame.index,
                                              dtype=object)
                elif frame[column].dtype != dtype:
                    frame[column] = frame[column].astype(dtype)
            yield frame


def _records_dtype(column: str, examples: Any, gaps: set) -> Any:
    """The dtype ``DataFrame.from_records`` gives ``column`` over the whole file: asked of pandas
    with one value of each type the column holds, and its kinds of gap."""
    sample = [{column: v} for v in examples] + ([{}] if "absent" in gaps else []) + \
        ([{column: None}] if "none" in gaps else [])
    return pd.DataFrame.from_records(sample)[column].dtype
