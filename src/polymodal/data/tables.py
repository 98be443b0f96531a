"""Read a table of examples from a file, a DataFrame, or a folder of class subfolders.

Every reader returns a ``Table``: the frame, the folder that relative file paths in it
are relative to, and a short description of where it came from (for messages). Readers
check the shape of the table (columns present, named, unique; at least one row) and
nothing about its meaning; that is ``schema.infer_schema``'s job. File formats live in
``formats.py``, the folder layout in ``folders.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from polymodal.data.folders import folder_frame
from polymodal.data.formats import TABLE_EXTENSIONS, check_columns, check_rows, read_file
from polymodal.data.parquet import ParquetTable, parquet_files
from polymodal.errors import ConfigError, DataError

__all__ = ["Table", "read_table", "read_folder", "shard", "shard_range", "TABLE_EXTENSIONS"]


@dataclass
class Table:
    """A table of examples.

    Attributes:
        frame: one row per example, columns as read (names kept exactly).
        base_dir: the folder that relative file paths in ``frame`` are relative to.
        source: where the table came from, for messages (a path or ``"DataFrame"``).
    """

    frame: pd.DataFrame
    base_dir: Path
    source: str


def read_table(source: str | Path | pd.DataFrame | Any, base_dir: Path | None = None) -> Table:
    """Read a table from a DataFrame, a file, or a folder (see ``read_folder``).

    Args:
        source: a ``pd.DataFrame``, a Hugging Face ``datasets.Dataset`` (``hf_dataset_frame``),
            or the path of a .csv, .tsv, .parquet/.pq,
            .jsonl/.ndjson or .json file (CSV/TSV may be compressed: .csv.gz, ...), or a folder
            (of class subfolders, or of Parquet shards: one table, rows in the shards' order).
        base_dir: folder for relative file paths in the table. Defaults to the table
            file's folder, or the current folder for a DataFrame. A folder source always
            uses the folder itself.

    Returns:
        A ``Table``.

    Raises:
        DataError: the file is missing, of an unknown kind, unreadable, or the table has
            no rows, no columns, an empty or duplicate column name.
        ConfigError: ``base_dir`` was given for a folder source and is not that folder.
    """
    if _is_hf_dataset(source):
        source = hf_dataset_frame(source)
    if isinstance(source, pd.DataFrame):
        check_columns(list(source.columns), "the DataFrame")
        check_rows(source, "the DataFrame")
        where = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
        return Table(frame=source, base_dir=where, source="DataFrame")

    path = Path(source).expanduser()
    if not path.exists():
        hint = f" (relative to the current folder {Path.cwd()})" if not path.is_absolute() else ""
        raise DataError(f"table not found: {path}{hint}. Check the path, or pass a DataFrame.")
    shards = parquet_files(path) if path.is_dir() else None
    if shards is not None:
        table = ParquetTable(path, shards)
        frame = table.read()
        check_rows(frame, str(path))
        where = Path(base_dir).resolve() if base_dir is not None else path.resolve()
        return Table(frame=frame, base_dir=where, source=str(path))
    if path.is_dir():
        if base_dir is not None and Path(base_dir).resolve() != path.resolve():
            raise ConfigError(
                f"base_dir {base_dir} was given for the folder {path}, whose file paths are "
                "always relative to the folder itself; drop base_dir."
            )
        return read_folder(path)
    frame = read_file(path)
    where = Path(base_dir).resolve() if base_dir is not None else path.resolve().parent
    return Table(frame=frame, base_dir=where, source=str(path))


def shard(table: Table, spec: str | None) -> tuple[Table, int]:
    """Shard ``I/N`` of a table (``--shard``): its I-th of N contiguous blocks of rows
    (0 <= I < N; sizes differ by one at most), and the position of its first row.

    Raises:
        DataError: ``spec`` is not ``I/N`` with 0 <= I < N.
    """
    if spec is None:
        return table, 0
    start, stop = shard_range(len(table.frame), spec)
    i, _, n = str(spec).partition("/")
    return Table(table.frame.iloc[start:stop], table.base_dir, f"{table.source} (shard {int(i)}/{int(n)})"), start


def shard_range(rows: int, spec: str | None) -> tuple[int, int]:
    """The rows ``[start, stop)`` of shard ``I/N`` (see ``shard``) of a table of ``rows`` rows.

    Raises:
        DataError: ``spec`` is not ``I/N`` with 0 <= I < N.
    """
    if spec is None:
        return 0, rows
    i, sep, n = str(spec).partition("/")
    if not (sep and i.strip().isdigit() and n.strip().isdigit() and 0 <= int(i) < int(n)):
        raise DataError(f"--shard {spec!r}: expected I/N with 0 <= I < N, e.g. --shard 0/4 for the first of "
                        "4 parts (run the N jobs with I = 0 .. N-1)")
    i, n = int(i), int(n)
    return rows * i // n, rows * (i + 1) // n


def _is_hf_dataset(source: Any) -> bool:
    return type(source).__module__.split(".")[0] == "datasets"


def hf_dataset_frame(data: Any) -> pd.DataFrame:
    """A Hugging Face ``datasets.Dataset`` as a DataFrame: ``Image`` and ``Audio`` columns as
    ``{bytes, path}`` cells (the file's content, read as an image or audio input), a
    ``ClassLabel`` column as its class names.

    Raises:
        DataError: a ``DatasetDict`` (name a split) or a streaming ``IterableDataset``.
    """
    import datasets

    if isinstance(data, datasets.DatasetDict):
        raise DataError(f"a DatasetDict holds the splits {', '.join(data)}: pass one of them, "
                        f"e.g. data[{next(iter(data))!r}]")
    if not isinstance(data, datasets.Dataset):
        raise DataError(f"a {type(data).__name__} cannot be read as a table: pass a datasets.Dataset "
                        "(for a streaming dataset, its Parquet files or a materialised split)")
    for name, feature in data.features.items():
        if isinstance(feature, (datasets.Image, datasets.Audio)) and feature.decode:
            data = data.cast_column(name, type(feature)(decode=False))  # the encoded file, undecoded
    frame = data.to_pandas()
    for name, feature in data.features.items():
        if isinstance(feature, datasets.ClassLabel):
            frame[name] = [None if pd.isna(v) or v < 0 else feature.int2str(int(v)) for v in frame[name]]
    return frame


def read_folder(root: Path) -> Table:
    """Read a folder laid out as Hugging Face ``imagefolder`` / ``audiofolder`` expects.

    ``root/<class>/<file>``, optionally with ``root/metadata.{csv,jsonl,parquet}``; see
    ``folders.folder_frame`` for the layout and the frame's columns. Relative paths in the
    table are relative to ``root``.

    Raises:
        DataError: as ``folder_frame``.
    """
    root = Path(root).expanduser()
    return Table(frame=folder_frame(root), base_dir=root.resolve(), source=str(root))
