"""Read one table file into a frame: CSV/TSV (maybe compressed), Parquet, JSON lines, JSON.

The readers check the shape of the table (columns present, named, unique; at least one row)
and nothing about its meaning; that is ``schema.infer_schema``'s job.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from polymodal.errors import DataError

__all__ = ["read_file", "table_kind", "check_columns", "check_rows", "check_header", "parse_record", "frame_of",
           "unreadable", "TABLE_EXTENSIONS"]

TABLE_EXTENSIONS = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip")  # pandas reads these for CSV/TSV


def table_kind(path: Path) -> str:
    """The table extension that says how ``path`` is read (``.csv`` for ``x.csv.gz``), or ``""``."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in _COMPRESSION_SUFFIXES and suffixes[-2] in (".csv", ".tsv"):
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def read_file(path: Path) -> pd.DataFrame:
    ext = table_kind(path)
    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".csv": lambda p: _read_delimited(p, ","),
        ".tsv": lambda p: _read_delimited(p, "\t"),
        ".parquet": _read_parquet,
        ".pq": _read_parquet,
        ".jsonl": _read_json_lines,
        ".ndjson": _read_json_lines,
        ".json": _read_json,
    }
    if ext not in readers:
        raise DataError(
            f"cannot read {path}: unknown file kind {ext or '(no extension)'!r}; expected one of "
            f"{', '.join(TABLE_EXTENSIONS)} or a folder. Convert the file, or pass a DataFrame."
        )
    frame = readers[ext](path)
    check_columns(list(frame.columns), str(path))
    check_rows(frame, str(path))
    return frame


def check_header(path: Path, sep: str) -> list[str]:
    """The column names of a CSV/TSV file as written, checked (see ``check_columns``).

    pandas renames a repeated header 'a' to 'a.1' and an empty one to 'Unnamed: 2', so the
    header row is read as text before the table.
    """
    try:
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} has no columns (the file is empty). Write a header row and data.") from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise unreadable(path, exc) from None
    names = [str(v) for v in header.iloc[0].tolist()]
    check_columns(names, str(path))
    return names


def _read_delimited(path: Path, sep: str) -> pd.DataFrame:
    check_header(path, sep)
    try:
        return pd.read_csv(path, sep=sep, low_memory=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # ParserError is a ValueError
        raise unreadable(path, exc) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        check_columns(schema.names, str(path))
        # Parquet promises UTF-8 text but readers do not check it; a damaged file would fail
        # much later, cell by cell. Check the text columns here.
        text = [f.name for f in schema if pyarrow.types.is_string(f.type) or pyarrow.types.is_large_string(f.type)]
        if text:
            pq.read_table(path, columns=text).validate(full=True)
        return pd.read_parquet(path)
    except DataError:
        raise
    except (pyarrow.ArrowException, ValueError, OSError) as exc:
        raise unreadable(path, exc) from None


class _DuplicateKey(ValueError):
    pass


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(f"duplicate key {key!r}")
        seen.add(key)
    return dict(pairs)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise unreadable(path, exc) from None


def parse_record(line: str, number: int) -> dict[str, Any] | None:
    """One line of a JSON lines file as a record (None for a blank line).

    Raises:
        ValueError: not a JSON object (naming line ``number``), or a key repeated.
    """
    if not line.strip():
        return None
    try:
        record = json.loads(line, object_pairs_hook=_object_pairs)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, _DuplicateKey, too deep
        raise ValueError(f"line {number}: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"line {number} is a JSON {type(record).__name__}, not an object")
    return record


def _parse_lines(text: str) -> list[dict[str, Any]]:
    records = (parse_record(line, number) for number, line in enumerate(text.splitlines(), start=1))
    return [r for r in records if r is not None]


def _read_json_lines(path: Path) -> pd.DataFrame:
    try:
        records = _parse_lines(_read_text(path))
    except ValueError as exc:
        raise unreadable(path, exc) from None
    return frame_of(records, path)


def _read_json(path: Path) -> pd.DataFrame:
    text = _read_text(path)
    try:
        data = json.loads(text, object_pairs_hook=_object_pairs)
    except _DuplicateKey as exc:
        raise unreadable(path, exc) from None
    except RecursionError:
        raise unreadable(path, "JSON nested too deeply") from None
    except ValueError as whole_error:
        try:  # not one JSON document: maybe JSON lines
            data = _parse_lines(text)
        except ValueError as lines_error:
            if len(text.strip().splitlines()) <= 1:  # one line: the two errors are the same
                raise unreadable(path, f"not valid JSON ({whole_error})") from None
            raise unreadable(
                path, f"not a JSON array of records ({whole_error}) nor JSON lines ({lines_error})"
            ) from None
    if not isinstance(data, list):
        raise DataError(
            f"cannot read {path}: expected a JSON array of records ([{{...}}, ...]) or JSON lines, "
            f"got a JSON {type(data).__name__}. Write records, e.g. df.to_json(path, orient='records')."
        )
    bad = [i for i, record in enumerate(data) if not isinstance(record, dict)]
    if bad:
        raise DataError(
            f"cannot read {path}: expected every array item to be a JSON object, got "
            f"{type(data[bad[0]]).__name__} at item {bad[0]} ({len(bad)} such items). Write records."
        )
    return frame_of(data, path)


def frame_of(records: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    """The records as a frame; text that is not valid Unicode (a lone surrogate escape such
    as ``"\\ud800"``, legal in JSON) cannot be stored and is reported."""
    try:
        return pd.DataFrame.from_records(records) if records else pd.DataFrame()
    except UnicodeEncodeError as exc:
        raise DataError(
            f"cannot read {path}: a text value is not valid Unicode ({exc.reason}: "
            f"{exc.object[max(0, exc.start - 20):exc.end + 20]!a}); JSON escapes like \\ud800 "
            "must come in surrogate pairs. Repair or re-export the file."
        ) from None
    except (ValueError, TypeError) as exc:
        raise unreadable(path, exc) from None


def unreadable(path: Path, reason: object) -> DataError:
    """A ``DataError``: ``path`` cannot be read, and why."""
    reason_text = " ".join(str(reason).split()) or type(reason).__name__
    if isinstance(reason, UnicodeDecodeError):
        reason_text += "; save the file as UTF-8"
    return DataError(f"cannot read {path}: {reason_text}. Repair or re-export the file.")


def check_columns(names: list[Any], where: str) -> None:
    if not names:
        raise DataError(f"{where} has no columns. Give the table a header row and at least one column.")
    not_str = [n for n in names if not isinstance(n, str)]
    if not_str:
        raise DataError(
            f"{where} has column names that are not strings ({', '.join(repr(n) for n in not_str[:3])}); "
            "expected text names. Rename them, e.g. frame.columns = frame.columns.astype(str)."
        )
    empty = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if empty:
        raise DataError(
            f"{where} has an empty column name at position {', '.join(map(str, empty))} of {len(names)}; "
            "every column needs a name. Name it (an unnamed first column is often a saved pandas "
            "index: write with index=False)."
        )
    dupes = sorted(n for n, count in Counter(names).items() if count > 1)
    if dupes:
        raise DataError(
            f"{where} has duplicate column names: {', '.join(repr(d) for d in dupes)}; expected each "
            "name once. Rename or drop the repeats."
        )


def check_rows(frame: pd.DataFrame, where: str) -> None:
    if len(frame) == 0:
        raise DataError(
            f"{where} has no rows; expected at least one example. Add rows, or check that this is the right table."
        )
