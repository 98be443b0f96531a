"""The items of an index as the web page shows them: a text, or an image or clip to show or play.

An index records the table it was built from; the service reads that table once at start and
keeps, per item id, the indexed column's cell. A request names an item by its id, never by a
path, and only files inside the table's own folder are served (the data-root rule, with the
table's folder as the root).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from polymodal.data.paths import PathGuard
from polymodal.data.tables import read_table
from polymodal.errors import PolymodalError
from polymodal.modalities import get_modality
from polymodal.preprocessing import BadInput
from polymodal.serving.problems import Problem
from polymodal.serving.uploads import media_type

__all__ = ["Items"]

log = logging.getLogger("polymodal")


class Items:
    """Item id (as text) → the indexed cell; ``available`` is False when the table is gone."""

    def __init__(self, cells: dict[str, Any], modality: str, guard: PathGuard | None, max_bytes: int):
        self.cells, self.modality, self.guard, self.max_bytes = cells, modality, guard, max_bytes

    @property
    def available(self) -> bool:
        return bool(self.cells)

    @classmethod
    def of(cls, index: Any, max_bytes: int) -> "Items":
        """The items of a ``VectorIndex`` from the table it records (none when it cannot be read)."""
        meta = index.meta
        column, id_column, source = meta.get("column"), meta.get("id_column"), meta.get("source")
        modality = str(meta.get("modality"))
        if not source or not Path(str(source)).is_file():
            return cls({}, modality, None, max_bytes)
        try:
            table = read_table(str(source))
            frame = table.frame
            ids = frame[id_column].tolist() if id_column else list(range(len(frame)))
            cells = dict(zip((str(i) for i in ids), frame[column].tolist()))
            guard = PathGuard(table.base_dir, table.base_dir)
        except (PolymodalError, KeyError, OSError) as exc:
            log.warning("index items from %s cannot be shown (%s); search still works", source, exc)
            return cls({}, modality, None, max_bytes)
        wanted = {str(i) for i in index.ids}
        return cls({k: v for k, v in cells.items() if k in wanted}, modality, guard, max_bytes)

    def get(self, item_id: str) -> tuple[str, bytes | str]:
        """``("text", the text)`` or ``(content type, the file's bytes)`` of one item.

        Raises:
            Problem: 404 unknown id, no table, or a file that is not there or lies outside
                the table's folder.
        """
        if item_id not in self.cells:
            raise Problem(404, f"no item {item_id!r} to show" + ("" if self.cells else
                               ": the table this index was built from is not readable any more"))
        value = self.cells[item_id]
        if not get_modality(self.modality).cells_are_files:
            return "text", "" if value is None else str(value)
        try:
            path = Path(self.guard.check(value))
        except (BadInput, TypeError) as exc:
            raise Problem(404, f"item {item_id!r}: its file is not served ({exc})") from None
        if not path.is_file() or path.stat().st_size > self.max_bytes:
            raise Problem(404, f"item {item_id!r}: its file is missing or over the size limit")
        blob = path.read_bytes()
        return media_type(blob), blob
