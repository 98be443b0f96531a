"""What a vector index folder's ``index.json`` must hold: the kinds, the format, and a check of
a file read back from disk (untrusted: it may be damaged even when the manifest checks out).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from polymodal.errors import ModelDirError

__all__ = ["KINDS", "FORMAT", "check_meta", "read_faiss"]

KINDS = ("flat", "hnsw", "ivf")
FORMAT = 1


def check_meta(file: Path, meta: dict[str, Any], ids_file: Path, ids: list[Any]) -> None:
    """``index.json``: the keys that loading and searching read, each of its type; ``ids.json``:
    distinct numbers or texts.

    Raises:
        ModelDirError: naming the file and what is wrong with it.
    """
    if not all(isinstance(i, (int, float, str)) and not isinstance(i, bool) for i in ids) or \
            len({str(i) for i in ids}) != len(ids):
        raise ModelDirError(f"{ids_file} is damaged: expected a list of distinct numbers or texts; "
                            "build the index again")
    problem = None
    if meta.get("format") != FORMAT:
        problem = f"format {meta.get('format')!r}; this polymodal reads format {FORMAT}"
    elif meta.get("kind") not in KINDS:
        problem = f"kind {meta.get('kind')!r} is not one of {', '.join(KINDS)}"
    elif not isinstance(meta.get("dim"), int) or isinstance(meta.get("dim"), bool):
        problem = f"'dim' must be a whole number, got {meta.get('dim')!r}"
    elif not isinstance(meta.get("settings"), dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in meta["settings"].values()):
        problem = "'settings' must be an object of numbers"
    elif meta["kind"] == "flat" and not isinstance(meta["settings"].get("error_bound"), (int, float)):
        problem = "a flat index needs a number 'error_bound' in its settings"
    elif not isinstance(meta.get("model", {}), dict):
        problem = "'model' must be an object"
    elif any(k in meta and not isinstance(meta[k], str) for k in ("column", "modality", "space")):
        problem = "'column', 'modality' and 'space' must be text"
    if problem:
        raise ModelDirError(f"{file} is damaged: {problem}; build the index again")


def read_faiss(faiss: Any, file: Path) -> Any:
    """``faiss.read_index(file)``; a damaged file is a ``ModelDirError`` naming it."""
    try:
        return faiss.read_index(str(file))
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:  # bad_alloc: a damaged size field  # faiss: "Error in ... at x.cpp:N: what"
        reason = " ".join(str(exc).split()).rpartition(": ")[2][:200]
        raise ModelDirError(f"{file} is damaged: faiss cannot read it ({reason}); build the index again") from None
