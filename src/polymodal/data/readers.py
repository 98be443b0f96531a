"""Read a table of examples from a file, a DataFrame, or a folder of class subfolders.

Every reader returns a ``Table``: the frame, the folder that relative file paths in it
are relative to, and a short description of where it came from (for messages). Readers
check the shape of the table (columns present, named, unique; at least one row) and
nothing about its meaning; that is ``schema.infer_schema``'s job.
"""
from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import pandas as pd

from polymodal.errors import ConfigError, DataError

__all__ = [
    "Table",
    "read_table",
    "read_folder",
    "MEDIA_EXTENSIONS",
    "TABLE_EXTENSIONS",
]

logger = logging.getLogger("polymodal")

# File kind -> extensions (lower case). Shared with schema inference of path columns.
MEDIA_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"),
    "audio": (".wav", ".flac", ".ogg", ".mp3", ".m4a"),
}
TABLE_EXTENSIONS = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip")  # pandas reads these for CSV/TSV
_METADATA_NAMES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")


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


def read_table(source: str | Path | pd.DataFrame, base_dir: Path | None = None) -> Table:
    """Read a table from a DataFrame, a file, or a folder (see ``read_folder``).

    Args:
        source: a ``pd.DataFrame``, or the path of a .csv, .tsv, .parquet/.pq,
            .jsonl/.ndjson or .json file (CSV/TSV may be compressed: .csv.gz, ...), or a folder.
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
    if isinstance(source, pd.DataFrame):
        _check_columns(list(source.columns), "the DataFrame")
        _check_rows(source, "the DataFrame")
        where = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
        return Table(frame=source, base_dir=where, source="DataFrame")

    path = Path(source).expanduser()
    if not path.exists():
        hint = f" (relative to the current folder {Path.cwd()})" if not path.is_absolute() else ""
        raise DataError(f"table not found: {path}{hint}. Check the path, or pass a DataFrame.")
    if path.is_dir():
        if base_dir is not None and Path(base_dir).resolve() != path.resolve():
            raise ConfigError(
                f"base_dir {base_dir} was given for the folder {path}, whose file paths are "
                "always relative to the folder itself; drop base_dir."
            )
        return read_folder(path)
    frame = _read_file(path)
    where = Path(base_dir).resolve() if base_dir is not None else path.resolve().parent
    return Table(frame=frame, base_dir=where, source=str(path))


def read_folder(root: Path) -> Table:
    """Read a folder laid out as Hugging Face ``imagefolder`` / ``audiofolder`` expects.

    ``root/<class>/<file>``: every image or audio file under a first-level folder gets
    that folder's name as ``label`` (deeper folders count towards their first-level
    folder). Optionally ``root/metadata.{csv,jsonl,parquet}`` has a ``file_name`` column
    (path relative to ``root``, e.g. ``cat/001.png``) and extra columns joined onto the
    files; its ``label`` column, where set, wins over the folder name. Files may also lie
    flat in ``root`` (or all in one folder) next to a metadata file; then no label is
    taken from folders. Hidden files and folders are skipped; other files are ignored.

    Returns:
        A ``Table`` whose frame has a column ``image`` or ``audio`` (posix paths relative
        to ``root``, sorted), then ``label`` (when there is one), then the metadata columns.

    Raises:
        DataError: no image/audio files; both kinds in one folder; the metadata file is
            unreadable, lacks ``file_name``, repeats a file, or names missing files.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"folder not found: {root}. Pass a folder of class subfolders.")
    files_by_kind, n_other = _scan(root)
    if n_other:
        logger.info("read_folder %s: ignored %d files that are not image/audio files", root, n_other)
    kinds = sorted(k for k, files in files_by_kind.items() if files)
    if not kinds:
        exts = " ".join(e for es in MEDIA_EXTENSIONS.values() for e in es)
        raise DataError(
            f"folder {root} holds no image or audio files (expected {root}/<class>/<file> "
            f"with one of: {exts}). Point at the right folder, or pass a table."
        )
    if len(kinds) > 1:
        counts = ", ".join(f"{len(files_by_kind[k])} {k}" for k in kinds)
        raise DataError(
            f"folder {root} holds files of more than one kind ({counts}); a folder becomes "
            "one column. Describe the examples in a table (CSV with one column per kind) instead."
        )
    kind = kinds[0]
    files = sorted(files_by_kind[kind])
    frame = pd.DataFrame({kind: files})

    meta, meta_name = _read_metadata(root, kind)
    folders = {PurePosixPath(f).parts[0] for f in files if len(PurePosixPath(f).parts) > 1}
    use_folders = bool(folders) and not (meta is not None and len(folders) == 1)
    if use_folders:
        frame["label"] = [_folder_label(f) for f in files]
        n_loose = int(frame["label"].isna().sum())
        if n_loose:
            logger.warning("read_folder %s: %d files lie outside class folders (no label)", root, n_loose)

    if meta is not None:
        frame = _join_metadata(frame, kind, meta, meta_name, root)
    n_classes = frame["label"].nunique() if "label" in frame else 0
    logger.info("read_folder %s: %d %s files, %d classes", root, len(frame), kind, n_classes)
    return Table(frame=frame, base_dir=root.resolve(), source=str(root))


# --- files ------------------------------------------------------------------------------


def _read_file(path: Path) -> pd.DataFrame:
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in _COMPRESSION_SUFFIXES and suffixes[-2] in (".csv", ".tsv"):
        ext = suffixes[-2]
    else:
        ext = suffixes[-1] if suffixes else ""
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
    _check_columns(list(frame.columns), str(path))
    _check_rows(frame, str(path))
    return frame


def _read_delimited(path: Path, sep: str) -> pd.DataFrame:
    # pandas renames a repeated header 'a' to 'a.1' and an empty one to 'Unnamed: 2', so
    # check the header row as written before reading the table.
    try:
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} has no columns (the file is empty). Write a header row and data.") from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from None
    _check_columns([str(v) for v in header.iloc[0].tolist()], str(path))
    try:
        return pd.read_csv(path, sep=sep, low_memory=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # ParserError is a ValueError
        raise _unreadable(path, exc) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        _check_columns(schema.names, str(path))
        # Parquet promises UTF-8 text but readers do not check it; a damaged file would fail
        # much later, cell by cell. Check the text columns here.
        text = [f.name for f in schema if pyarrow.types.is_string(f.type) or pyarrow.types.is_large_string(f.type)]
        if text:
            pq.read_table(path, columns=text).validate(full=True)
        return pd.read_parquet(path)
    except DataError:
        raise
    except (pyarrow.ArrowException, ValueError, OSError) as exc:
        raise _unreadable(path, exc) from None


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
        raise _unreadable(path, exc) from None


def _parse_lines(text: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_object_pairs)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, _DuplicateKey, too deep
            raise ValueError(f"line {number}: {exc}") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number} is a JSON {type(record).__name__}, not an object")
        records.append(record)
    return records


def _read_json_lines(path: Path) -> pd.DataFrame:
    try:
        records = _parse_lines(_read_text(path))
    except ValueError as exc:
        raise _unreadable(path, exc) from None
    return _frame_of(records, path)


def _read_json(path: Path) -> pd.DataFrame:
    text = _read_text(path)
    try:
        data = json.loads(text, object_pairs_hook=_object_pairs)
    except _DuplicateKey as exc:
        raise _unreadable(path, exc) from None
    except RecursionError:
        raise _unreadable(path, "JSON nested too deeply") from None
    except ValueError as whole_error:
        try:  # not one JSON document: maybe JSON lines
            data = _parse_lines(text)
        except ValueError as lines_error:
            if len(text.strip().splitlines()) <= 1:  # one line: the two errors are the same
                raise _unreadable(path, f"not valid JSON ({whole_error})") from None
            raise _unreadable(
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
    return _frame_of(data, path)


def _frame_of(records: list[dict[str, Any]], path: Path) -> pd.DataFrame:
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
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, reason: object) -> DataError:
    reason_text = " ".join(str(reason).split()) or type(reason).__name__
    if isinstance(reason, UnicodeDecodeError):
        reason_text += "; save the file as UTF-8"
    return DataError(f"cannot read {path}: {reason_text}. Repair or re-export the file.")


def _check_columns(names: list[Any], where: str) -> None:
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


def _check_rows(frame: pd.DataFrame, where: str) -> None:
    if len(frame) == 0:
        raise DataError(
            f"{where} has no rows; expected at least one example. Add rows, or check that this is the right table."
        )


# --- folders ----------------------------------------------------------------------------


def _kind_of(name: str) -> str | None:
    lower = name.lower()
    for kind, exts in MEDIA_EXTENSIONS.items():
        if lower.endswith(exts):
            return kind
    return None


def _scan(root: Path) -> tuple[dict[str, list[str]], int]:
    """Media files under ``root`` as posix paths relative to it, by kind; count of others."""
    by_kind: dict[str, list[str]] = {kind: [] for kind in MEDIA_EXTENSIONS}
    n_other = 0
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:  # a symlink loop, or a folder linked twice
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
        for name in filenames:
            if name.startswith("."):
                continue
            rel = (rel_dir / name).as_posix()
            kind = _kind_of(name)
            if kind is not None:
                by_kind[kind].append(rel)
            elif rel not in _METADATA_NAMES:
                n_other += 1
    return by_kind, n_other


def _folder_label(rel: str) -> str | None:
    parts = PurePosixPath(rel).parts
    return parts[0] if len(parts) > 1 else None


def _read_metadata(root: Path, kind: str) -> tuple[pd.DataFrame | None, str]:
    present = [n for n in _METADATA_NAMES if (root / n).is_file()]
    if not present:
        return None, ""
    if len(present) > 1:
        raise DataError(
            f"folder {root} has {len(present)} metadata files ({', '.join(present)}); expected at "
            "most one. Keep one of them."
        )
    name = present[0]
    meta = _read_file(root / name)
    if "file_name" not in meta.columns:
        raise DataError(
            f"{root / name} has no 'file_name' column; columns are: {', '.join(map(str, meta.columns))}. "
            "Add file_name with each file's path relative to the folder (e.g. cat/001.png)."
        )
    if kind in meta.columns:
        raise DataError(
            f"{root / name} has a column {kind!r}, which read_folder fills with the file paths; "
            "rename that column."
        )
    return meta, name


def _normalise_file_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    posix = value.strip().replace("\\", "/")
    return PurePosixPath(posix).as_posix().removeprefix("./")


def _join_metadata(frame: pd.DataFrame, kind: str, meta: pd.DataFrame, name: str, root: Path) -> pd.DataFrame:
    where = root / name
    keys = meta["file_name"].map(_normalise_file_name)
    if keys.isna().any():
        rows = [int(i) + 1 for i in keys[keys.isna()].index[:3]]
        raise DataError(
            f"{where}: {int(keys.isna().sum())} rows have an empty or non-text file_name (first at data "
            f"rows {', '.join(map(str, rows))}); expected a path like cat/001.png. Fill or drop them."
        )
    repeated = keys[keys.duplicated()].unique().tolist()
    if repeated:
        raise DataError(
            f"{where}: {len(repeated)} files are named by more than one row (first: "
            f"{', '.join(repeated[:3])}); expected one row per file. Drop the repeats."
        )
    known = set(frame[kind])
    missing = [k for k in keys if k not in known]
    if missing:
        raise DataError(
            f"{where}: {len(missing)} rows name {kind} files that are not in {root} (first: "
            f"{', '.join(missing[:3])}). Fix file_name (relative to the folder) or add the files."
        )
    extra = meta.drop(columns=["file_name"]).set_axis(keys.to_numpy(), axis=0)
    joined = extra.reindex(frame[kind].to_numpy()).reset_index(drop=True)
    n_unmatched = len(frame) - len(extra)
    if n_unmatched:
        logger.warning("read_folder %s: %d of %d files have no row in %s", root, n_unmatched, len(frame), name)
    if "label" in joined.columns:
        meta_label = joined.pop("label")
        if "label" in frame.columns:
            frame["label"] = meta_label.where(meta_label.notna(), frame["label"])
        else:
            frame["label"] = meta_label
    return pd.concat([frame, joined], axis=1)
