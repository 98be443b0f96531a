"""Checks on where a command will write, made BEFORE the work starts, and JSON that is JSON.

A read-only folder, a path under a file or a file where a folder belongs is found in
milliseconds here rather than after an hour of training or scoring.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from polymodal.errors import ModelDirError

__all__ = ["check_output_file", "check_output_dir", "check_output_folder", "atomic_file", "finite_json"]


def check_output_file(path: str | Path, what: str) -> Path:
    """``path`` can be written as a file: not a folder, and its folder is writable.

    Raises:
        ModelDirError: naming the path, what is wrong and what to do.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelDirError(f"cannot write the {what} {path}: it is an existing folder; "
                            f"name a file instead (e.g. {path / ('out' + (path.suffix or '.csv'))})")
    _probe(path.parent, what, path)
    return path


def check_output_dir(path: str | Path, what: str) -> Path:
    """``path`` is (or can be made) a folder that files can be written into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ModelDirError(f"cannot write the {what} into {path}: a file of that name exists; choose a folder")
    _probe(path, what, path)
    return path


def check_output_folder(path: str | Path, what: str) -> Path:
    """``path`` can be written as a whole folder (a model directory, an index): a temporary
    sibling is renamed into place, so its parent must be writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ModelDirError(f"cannot write the {what} {path}: a file of that name exists; choose another path")
    _probe(path.absolute().parent, what, path)
    return path


@contextmanager
def atomic_file(path: str | Path, what: str) -> Iterator[Path]:
    """A temporary file's path beside ``path`` to write (a chunk at a time if need be), renamed to
    ``path`` once the block ends, and deleted if it raises: an error or a crash half-way leaves
    no half-written file under the final name (and a previous one unchanged).

    Raises:
        ModelDirError: the file cannot be written or renamed (full disk, read-only folder).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelDirError(f"could not write the {what} {path}: {exc.strerror or exc}; the previous one (if any) "
                            "is unchanged. Free disk space or choose a writable folder.") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _probe(folder: Path, what: str, path: Path) -> None:
    """Create ``folder`` if needed and write (and remove) an empty file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".polymodal-write-check-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ModelDirError(f"cannot write the {what} {path}: {folder} is not a writable folder "
                            f"({exc.strerror or exc}); choose another path") from None


def finite_json(value: Any, **dumps: Any) -> str:
    """``json.dumps`` with NaN and infinities written as ``null`` (bare NaN is not JSON)."""
    return json.dumps(_finite(value), allow_nan=False, **dumps)


def _finite(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy / torch scalars
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
