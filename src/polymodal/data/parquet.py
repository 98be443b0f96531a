"""Parquet tables: one file or a folder of Parquet shards, read whole or in record batches.

A folder is a Parquet table when every file in it (and in its subfolders; hidden and
``_``-prefixed files such as ``_SUCCESS`` aside) is a ``.parquet`` / ``.pq`` file; its shards
are read in the order of their paths, as one table. ``ParquetTable.chunks`` reads a range of
rows through ``pyarrow.dataset``, one row group at a time, so that memory holds one chunk
whatever the table's length, and only the row groups of that range are read. Every chunk
has the columns and the pandas dtypes that reading the whole table gives (an integer column
with a gap anywhere is float in every chunk), and its index is the rows' position in the
whole table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from polymodal.data.formats import check_columns, unreadable
from polymodal.errors import DataError, PolymodalError

__all__ = ["ParquetTable", "parquet_files", "PARQUET_SUFFIXES"]

PARQUET_SUFFIXES = (".parquet", ".pq")
_INDEX_PREFIX = "__index_level_"  # a pandas index saved as a column; rows are numbered by position


def parquet_files(path: Path) -> list[Path] | None:
    """The Parquet files of ``path`` in order: ``[path]`` for a Parquet file, the shards of a
    folder that holds only Parquet files, else None."""
    if path.is_file():
        return [path] if path.suffix.lower() in PARQUET_SUFFIXES else None
    if not path.is_dir():
        return None
    files = []
    for file in path.rglob("*"):
        if not file.is_file() or file.name.startswith((".", "_")):
            continue
        if file.suffix.lower() not in PARQUET_SUFFIXES:
            return None  # a class folder, or a folder of something else
        files.append(file)
    return sorted(files, key=lambda f: f.relative_to(path).as_posix()) or None


class ParquetTable:
    """A Parquet file or folder of shards, read through ``pyarrow.dataset``.

    Attributes:
        path: the file or folder; files: its Parquet files in order.
        columns: the table's columns (a saved pandas index left out).
        n_rows: rows in the whole table, from the files' footers.

    Raises:
        DataError: a file is unreadable, the shards' columns conflict, or the column names
            are unusable (see ``check_columns``).
    """

    def __init__(self, path: Path, files: Sequence[Path]) -> None:
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        self.path, self.files = Path(path), list(files)
        try:
            self.schema = pa.unify_schemas([pq.read_schema(f) for f in self.files])
            self.dataset = ds.dataset([str(f) for f in self.files], schema=self.schema, format="parquet")
            self.groups = [(group, group.row_groups[0].num_rows) for fragment in self.dataset.get_fragments()
                           for group in fragment.split_by_row_group()]
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise unreadable(self.path, exc) from None
        self.columns = [n for n in self.schema.names if not n.startswith(_INDEX_PREFIX)]
        check_columns(self.columns, str(self.path))
        self.n_rows = sum(n for _, n in self.groups)
        self._dtypes: dict[str, object] = {}

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The whole table (or its ``columns``) as one frame."""
        if not self.n_rows:
            return pd.DataFrame(columns=list(columns or self.columns))
        return next(iter(self.chunks(columns, chunk_rows=self.n_rows)))

    def chunks(self, columns: Sequence[str] | None = None, start: int = 0, stop: int | None = None,
               chunk_rows: int = 4096) -> Iterator[pd.DataFrame]:
        """Frames of ``chunk_rows`` rows (the last may be shorter) covering rows ``[start, stop)``.

        Only the row groups overlapping the range are read, a record batch at a time.
        """
        import pyarrow as pa

        columns = [c for c in (columns or self.columns) if c in self.columns]
        stop = self.n_rows if stop is None else min(stop, self.n_rows)
        pending: list = []  # record batches not yet emitted, starting at row `at`
        at, offset = start, 0
        try:  # ValueError: damaged pandas metadata (JSON) in the file's schema
            dtypes = self._whole_dtypes(columns)
            for group, rows in self.groups:
                first, offset = offset, offset + rows
                if offset <= start or first >= stop:
                    continue
                position = first
                for batch in group.to_batches(schema=self.schema, columns=columns, batch_size=chunk_rows,
                                              batch_readahead=0, fragment_readahead=0, use_threads=False):
                    lo, hi = max(start - position, 0), min(stop - position, batch.num_rows)
                    position += batch.num_rows
                    if hi > lo:
                        pending.append(batch.slice(lo, hi - lo))
                    while sum(b.num_rows for b in pending) >= chunk_rows:
                        table = pa.Table.from_batches(pending, schema=pending[0].schema)
                        yield self._frame(table.slice(0, chunk_rows), at, dtypes)
                        rest = table.slice(chunk_rows)
                        pending, at = rest.to_batches(), at + chunk_rows
            if any(b.num_rows for b in pending):
                yield self._frame(pa.Table.from_batches(pending, schema=pending[0].schema), at, dtypes)
        except PolymodalError:  # already says which rows (_frame)
            raise
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise unreadable(self.path, exc) from None

    def _frame(self, table, at: int, dtypes: dict[str, object]) -> pd.DataFrame:
        import pyarrow as pa

        try:  # Parquet promises UTF-8 text but readers do not check it: a damaged file fails here
            table.validate(full=True)
        except pa.ArrowException as exc:
            raise DataError(f"cannot read {self.path} (rows {at:,} to {at + table.num_rows - 1:,}): "
                            f"{' '.join(str(exc).split())}. Repair or re-export the file.") from None
        frame = table.to_pandas()
        frame.index = pd.RangeIndex(at, at + len(frame))
        for column, dtype in dtypes.items():
            if frame[column].dtype != dtype:
                frame[column] = frame[column].astype(dtype)
        return frame

    def _whole_dtypes(self, columns: Sequence[str]) -> dict[str, object]:
        """The dtype each of ``columns`` has in the whole table read by pandas, where a chunk
        may differ: integers (float when a value is missing anywhere) and booleans (object)."""
        empty = self.schema.empty_table().select(list(columns)).to_pandas()
        wanted = {}
        for column in columns:
            dtype = empty[column].dtype
            if isinstance(dtype, np.dtype) and dtype.kind in "iub":  # not pandas' nullable Int64 / boolean
                if column not in self._dtypes:
                    self._dtypes[column] = ("float64" if dtype.kind in "iu" else object) \
                        if self._has_nulls(column) else dtype
                wanted[column] = self._dtypes[column]
        return wanted

    def _has_nulls(self, column: str) -> bool:
        """Whether ``column`` misses a value in some row: from the row groups' statistics, or
        by reading that column where a file does not record them."""
        counted = 0
        for fragment in self.dataset.get_fragments():
            metadata = fragment.metadata
            paths = [metadata.schema.column(k).path for k in range(metadata.num_columns)]
            if column not in paths:  # a shard without the column: missing in all its rows
                if metadata.num_rows:
                    return True
                continue
            j = paths.index(column)
            for i in range(metadata.num_row_groups):
                stats = metadata.row_group(i).column(j).statistics
                if stats is None or not stats.has_null_count:
                    return self.dataset.to_table(columns=[column]).column(column).null_count > 0
                counted += stats.null_count
        return counted > 0
