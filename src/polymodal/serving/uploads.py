"""Uploaded files, checked by their content before any model sees them.

A file is what its bytes decode as, never what its name or content type says: an image is
whatever Pillow decodes (``modalities.image.decode``), a clip whatever soundfile decodes
(``modalities.audio.decode``), with the service's bounds on bytes, pixels and seconds. Over
a bound is a 413; bytes that do not decode as the column's modality are a 422.
"""
from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import soundfile as sf
from PIL import Image

from polymodal.modalities.audio.decode import read_audio
from polymodal.modalities.image.decode import open_image
from polymodal.preprocessing import BadInput
from polymodal.serving.problems import Problem
from polymodal.serving.settings import Limits

__all__ = ["check_file", "from_base64", "media_type"]


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
    if modality == "image":
        _check_image(blob, where, limits)
    elif modality == "audio":
        _check_audio(blob, where, limits)
    else:
        raise Problem(422, f"{where}: a {modality} input takes no file; send its value in the row")
    return blob


def _check_image(blob: bytes, where: str, limits: Limits) -> None:
    try:
        with Image.open(io.BytesIO(blob)) as header:  # the header only: no pixel decoded yet
            width, height = header.size
    except Image.DecompressionBombError:
        raise Problem(413, f"{where}: the image claims more pixels than the limit of {limits.pixels:,}") from None
    except Exception:  # noqa: BLE001 - undecodable content, whatever the decoder raises
        raise Problem(422, f"{where}: the file is not an image this service can decode "
                           "(PNG, JPEG, GIF, BMP, TIFF, WebP, ...)") from None
    if width * height > limits.pixels:
        raise Problem(413, f"{where}: the image has {width}x{height} pixels, over the limit of {limits.pixels:,}")
    try:
        open_image(io.BytesIO(blob), limits.pixels)
    except BadInput as exc:
        raise Problem(422, f"{where}: {exc}") from None


def _check_audio(blob: bytes, where: str, limits: Limits) -> None:
    try:
        info = sf.info(io.BytesIO(blob))
        seconds = info.frames / info.samplerate if info.samplerate > 0 else 0.0
    except Exception:  # noqa: BLE001 - undecodable content
        raise Problem(422, f"{where}: the file is not audio this service can decode (WAV, FLAC, OGG, ...); "
                           "a browser recording must be converted to WAV") from None
    if seconds > limits.audio_seconds:
        raise Problem(413, f"{where}: the clip lasts {seconds:.1f} s, over the limit of {limits.audio_seconds:g} s")
    try:
        samples, rate = read_audio(io.BytesIO(blob))
    except BadInput as exc:
        raise Problem(422, f"{where}: {exc}") from None
    if len(samples) / rate > limits.audio_seconds:
        raise Problem(413, f"{where}: the clip lasts {len(samples) / rate:.1f} s, over the limit of "
                           f"{limits.audio_seconds:g} s")


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
