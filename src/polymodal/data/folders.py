"""Read a folder of class subfolders (Hugging Face ``imagefolder`` / ``audiofolder``) into a frame."""
from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from polymodal.data.formats import read_file
from polymodal.errors import DataError
from polymodal.modalities import media_extensions

__all__ = ["folder_frame"]

logger = logging.getLogger("polymodal")

_METADATA_NAMES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")


def folder_frame(root: Path) -> pd.DataFrame:
    """Read a folder laid out as Hugging Face ``imagefolder`` / ``audiofolder`` expects.

    ``root/<class>/<file>``: every image or audio file under a first-level folder gets
    that folder's name as ``label`` (deeper folders count towards their first-level
    folder). Optionally ``root/metadata.{csv,jsonl,parquet}`` has a ``file_name`` column
    (path relative to ``root``, e.g. ``cat/001.png``) and extra columns joined onto the
    files; its ``label`` column, where set, wins over the folder name. Files may also lie
    flat in ``root`` (or all in one folder) next to a metadata file; then no label is
    taken from folders. Hidden files and folders are skipped; other files are ignored.

    Returns:
        A frame with a column ``image`` or ``audio`` (posix paths relative
        to ``root``, sorted), then ``label`` (when there is one), then the metadata columns.

    Raises:
        DataError: no image/audio files; both kinds in one folder; the metadata file is
            unreadable, lacks ``file_name``, repeats a file, or names missing files.
    """
    if not root.is_dir():
        raise DataError(f"folder not found: {root}. Pass a folder of class subfolders.")
    files_by_kind, n_other = _scan(root)
    if n_other:
        logger.info("read_folder %s: ignored %d files that are not image/audio files", root, n_other)
    kinds = sorted(k for k, files in files_by_kind.items() if files)
    if not kinds:
        exts = " ".join(e for es in media_extensions().values() for e in es)
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
    return frame


def _kind_of(name: str) -> str | None:
    lower = name.lower()
    for kind, exts in media_extensions().items():
        if lower.endswith(exts):
            return kind
    return None


def _scan(root: Path) -> tuple[dict[str, list[str]], int]:
    """Media files under ``root`` as posix paths relative to it, by kind; count of others."""
    by_kind: dict[str, list[str]] = {kind: [] for kind in media_extensions()}
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
    meta = read_file(root / name)
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
