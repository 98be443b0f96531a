"""Keep the file paths of a table inside a data root.

With a data root set (``polymodal ... --data-root DIR``, ``Predictor(data_root=DIR)``) every
image or audio path in a table must lead, once joined to the table's folder and with every
symbolic link followed, to a place inside the root. A path that leaves it (``..``, an
absolute path elsewhere, a link pointing out) is a bad input of that row, with the reason,
so ``on_bad_input`` decides between one error listing the rows and skipping them. Cells
that hold the file's bytes (Hugging Face ``{"bytes": ...}``) name no path and pass.

The checked cell is replaced by the resolved real path, so the decoder opens the file that
was checked rather than following the link again.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from polymodal.preprocessing import BadInput
from polymodal.modalities import get_modality
from polymodal.errors import ConfigError

__all__ = ["PathGuard", "reads_files"]


def reads_files(pre: Any) -> bool:
    """Whether a preprocessor's cells are file paths (its modality says so)."""
    return get_modality(pre.modality).cells_are_files


def _absent(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


class PathGuard:
    """Checks that the file cells of a table stay inside ``data_root``.

    Args:
        base_dir: the folder relative paths in the table are relative to.
        data_root: the folder no path may leave.

    Raises:
        ConfigError: ``data_root`` is not an existing folder.
    """

    def __init__(self, base_dir: str | Path, data_root: str | Path) -> None:
        root = Path(data_root).expanduser()
        if not root.is_dir():
            raise ConfigError(f"data root {str(root)!r} is not an existing folder; pass the folder "
                              "that holds the data files")
        self.root = os.path.realpath(root)
        self.base_dir = Path(base_dir)

    def inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root.rstrip(os.sep) + os.sep)

    def check(self, value: Any) -> Any:
        """The cell with its path resolved, or unchanged when it holds no path.

        Raises:
            BadInput: the path leads outside the data root (the reason says how).
        """
        if isinstance(value, Mapping):  # Hugging Face {bytes, path}: the bytes win
            if value.get("bytes"):
                return value
            return {**value, "path": self.check(value.get("path"))}
        if isinstance(value, (bytes, bytearray)) or _absent(value):
            return value
        text = str(value).strip()
        if "\x00" in text:
            raise BadInput("the path holds a NUL character")
        path = Path(text)
        full = path if path.is_absolute() else self.base_dir / path
        try:
            real = os.path.realpath(full)
        except (OSError, ValueError) as exc:
            raise BadInput(f"cannot resolve the path: {exc}") from None
        if self.inside(real):
            return real
        lexical = os.path.normpath(os.path.abspath(full))
        if path.is_absolute() and not self.inside(lexical):
            how = "it is an absolute path elsewhere"
        elif not self.inside(lexical):
            how = "'..' leads out of it" if ".." in path.parts else "the table's folder is outside it"
        else:
            how = "a symbolic link points out of it"
        raise BadInput(f"path is outside the data root {self.root} ({how})")

    def confine(self, pre: Any, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """``record`` with the cells of a file input (image, audio) checked and resolved."""
        if not reads_files(pre):
            return record
        return {**record, **{c: self.check(record.get(c)) for c in pre.columns}}

    def confine_frame(self, frame: pd.DataFrame, preprocessors: Mapping[str, Any]) -> pd.DataFrame:
        """A copy of ``frame`` whose file cells outside the root are emptied (for ``fit``,
        which must not read them; loading reports those rows)."""
        out = frame.copy()
        for pre in preprocessors.values():
            if not reads_files(pre):
                continue
            for column in pre.columns:
                values = []
                for value in out[column].tolist():
                    try:
                        values.append(self.check(value))
                    except BadInput:
                        values.append(None)
                out[column] = pd.Series(values, index=out.index, dtype=object)
        return out
