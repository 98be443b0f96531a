"""The benchmark data folder: passed in, or ``$POLYMODAL_DATA`` (read when called, never at import)."""
from __future__ import annotations

import os
from pathlib import Path

from polymodal.errors import DataError

__all__ = ["data_root"]


def data_root(data_dir: Path | str | None = None) -> Path:
    """The benchmark data folder: ``data_dir``, else ``$POLYMODAL_DATA``.

    Raises:
        DataError: neither is given, or the folder does not exist.
    """
    if data_dir is not None and str(data_dir) != "":
        root, source = Path(data_dir), "data_dir"
    elif os.environ.get("POLYMODAL_DATA"):
        root, source = Path(os.environ["POLYMODAL_DATA"]), "POLYMODAL_DATA"
    else:
        raise DataError(
            "no data folder given: expected --data-dir (data_dir=...) or the environment "
            "variable POLYMODAL_DATA, got neither. Set POLYMODAL_DATA=/path/to/data or pass "
            "--data-dir /path/to/data"
        )
    if not root.is_dir():
        raise DataError(
            f"data folder {root} (from {source}) does not exist or is not a folder; "
            "point POLYMODAL_DATA or --data-dir at the folder holding av-digits/, fsdd/, ..."
        )
    return root
