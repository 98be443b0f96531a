"""Uploaded files, checked by their content before any model sees them.

A file is what its bytes decode as, never what its name or content type says: each file
modality's ``check_upload`` decides (an image is whatever Pillow decodes, a clip whatever
soundfile decodes), with the service's bounds on bytes, pixels and seconds. Over
a bound is a 413; bytes that do not decode as the column's modality are a 422.
"""
from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import soundfile as sf
from PIL import Image

from polymodal.modalities import modalities
from polymodal.modalities.base import media_extensions
from polymodal.preprocessing import BadInput, OverLimit
from polymodal.serving.problems import Problem
from polymodal.serving.settings import Limits

__all__ = ["check_file", "file_roles", "free_text", "from_base64", "media_type"]


def file_roles() -> tuple[str, ...]:
    """The roles whose cells are files (uploaded here), as the registered modalities say."""
    return tuple(media_extensions())


def free_text(role: str) -> bool:
    """Whether ``role``'s cells are free text (its modality says so)."""
    return any(role in m.roles and m.free_text for m in modalities())


def from_base64(value: Any, where: str, limits: Limits) -> bytes:
    """The bytes of a ``{"base64": "..."}`` cell (a ``data:...;base64,`` prefix is allowed).

    Raises:
        Problem: 422 not base64; 413 over the per-file limit.
    """
    text = value.get("base64") if isinstance(value, dict) else None
    if not isinstance(text, str) or set(value) != {"base64"}:
        raise Problem(422, f"{where}: a file in JSON must be {{\"base64\": \"...\"}}; got {_kind(value)}")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if len(text) > limits.file_bytes * 4 // 3 + 4:
        raise Problem(413, f"{where}: the file is larger than the limit of {limits.file_bytes:,} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(422, f"{where}: the base64 text does not decode; send the file's bytes base64-encoded") from None


def check_file(blob: bytes, modality: str, where: str, limits: Limits) -> bytes:
    """``blob`` if it decodes as ``modality`` (image or audio) within the limits.

    Raises:
        Problem: 413 over a limit (bytes, pixels, seconds); 422 empty or not decodable as ``modality``.
    """
    if not isinstance(blob, (bytes, bytearray)):  # a path or a text is never opened
        raise Problem(422, f"{where}: expected the bytes of a file")
    blob = bytes(blob)
    if len(blob) > limits.file_bytes:
        raise Problem(413, f"{where}: the file has {len(blob):,} bytes, over the limit of {limits.file_bytes:,}")
    if not blob:
        raise Problem(422, f"{where}: the file is empty")
    check = next((m.check_upload for m in modalities() if modality in m.roles), None)
    if check is None:
        raise Problem(422, f"{where}: a {modality} input takes no file; send its value in the row")
    try:
        check(blob, limits)
    except OverLimit as exc:
        raise Problem(413, f"{where}: {exc}") from None
    except BadInput as exc:
        raise Problem(422, f"{where}: {exc}") from None
    return blob


def media_type(blob: bytes) -> str:
    """The content type of a file by its bytes (``application/octet-stream`` when unknown)."""
    try:
        with Image.open(io.BytesIO(blob)) as image:
            return Image.MIME.get(image.format or "", "application/octet-stream")
    except Exception:  # noqa: BLE001
        pass
    try:
        kind = sf.info(io.BytesIO(blob)).format
    except Exception:  # noqa: BLE001
        return "application/octet-stream"
    return {"WAV": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg"}.get(kind, "application/octet-stream")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object with keys " + ", ".join(sorted(map(str, value))) if value else "an empty object"
    return {str: "text", list: "a list", bool: "true/false", type(None): "null"}.get(type(value), "a number")
