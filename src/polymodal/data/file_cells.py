"""Cells that hold a file's content instead of its path: the file's bytes, or the
``{bytes, path}`` dicts of Hugging Face datasets' Image and Audio features."""
from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.modalities import media_extensions

__all__ = ["file_kind"]

# The first bytes of the encoded files a cell may hold.
_MAGIC = {"image": (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*"),
          "audio": (b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")}


def file_kind(value: Any) -> str | None:
    """``image`` / ``audio`` for a cell holding such a file's bytes (or a ``{bytes, path}``
    dict, as datasets' Image and Audio features give), an in-memory image (a Pillow image, a
    ``uint8`` array ``[H, W]`` / ``[H, W, 1|3|4]``) or a decoded sound (``{array,
    sampling_rate}``), else None."""
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):
        return "image"
    if isinstance(value, np.ndarray):
        image = value.dtype == np.uint8 and (value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (1, 3, 4)))
        return "image" if image else None
    if isinstance(value, dict) and value.get("array") is not None and value.get("sampling_rate"):
        return "audio"
    if isinstance(value, dict):
        blob, path = value.get("bytes"), value.get("path")
        if not blob and isinstance(path, str):
            lower = path.lower()
            return next((k for k, ext in media_extensions().items() if lower.endswith(ext)), None)
        value = blob
    if not isinstance(value, (bytes, bytearray)):
        return None
    head = bytes(value[:12])
    if head[:4] == b"RIFF":
        return {b"WAVE": "audio", b"WEBP": "image"}.get(head[8:12])
    return next((k for k, magics in _MAGIC.items() if head.startswith(magics)), None)
