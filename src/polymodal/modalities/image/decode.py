"""Decode one image file with Pillow: header size check, EXIF rotation, any mode → ``L`` / ``RGB``."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from polymodal.preprocessing import BadInput, OverLimit, check_file

__all__ = ["open_image", "to_l_or_rgb"]


def open_image(source: Path | io.BytesIO, max_pixels: int) -> Image.Image:
    """Open and fully decode one image, checking its header size first.

    Raises:
        BadInput: missing / empty file, not an image, too large, corrupt data.
    """
    if isinstance(source, Path):
        check_file(source, "image")
    try:
        image = Image.open(source)  # reads the header only
    except Image.DecompressionBombError as exc:
        raise BadInput(f"image too large ({exc})") from None
    except UnidentifiedImageError:
        raise BadInput("cannot decode image: not a recognised image format") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is bad file content
        raise BadInput(f"cannot decode image: {exc or type(exc).__name__}") from None
    with image:
        width, height = image.size  # from the header; no pixel decoded yet
        if width * height > max_pixels:
            raise BadInput(
                f"image too large: {width}x{height} pixels exceeds max_pixels={max_pixels:,}"
            )
        if width == 0 or height == 0:
            raise BadInput(f"empty image: {width}x{height} pixels")
        try:
            image.load()
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"cannot decode image: {exc or type(exc).__name__}") from None
        try:
            return ImageOps.exif_transpose(image)  # a (rotated) copy, detached from the file
        except Exception:  # noqa: BLE001 - a broken EXIF block should not lose the pixels
            return image.copy()


def _to_8bit(image: Image.Image) -> Image.Image:
    """Integer / float single-channel modes (I, I;16*, F) → 8-bit ``L``."""
    values = np.asarray(image, dtype=np.float32)  # [H, W]
    if image.mode.startswith("I;16"):
        values = values / 257.0  # 0..65535 → 0..255
    elif image.mode == "F" and np.nanmax(values) <= 1.0 and np.nanmin(values) >= 0.0:
        values = values * 255.0  # float images in 0..1
    elif np.nanmin(values) < 0.0 or np.nanmax(values) > 255.0:
        if image.mode == "I" and np.nanmin(values) >= 0.0 and np.nanmax(values) <= 65535.0:
            values = values / 257.0  # 16-bit data stored as 32-bit I
        else:  # arbitrary range: stretch to 0..255
            low, high = float(np.nanmin(values)), float(np.nanmax(values))
            values = (values - low) * (255.0 / max(high - low, 1e-12))
    values = np.nan_to_num(values, nan=0.0)
    return Image.fromarray(np.clip(values + 0.5, 0, 255).astype(np.uint8))  # mode L


def to_l_or_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode → ``L`` or ``RGB``; alpha is composited onto white."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        return _to_8bit(image)
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("LA", "La", "RGBa", "RGBA"):
        image = image.convert("RGBA")
    elif mode != "RGBA":  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        image = image.convert("RGB")
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image).convert("RGB")
    return image


def check_image_upload(blob: bytes, limits: Any) -> None:
    """An uploaded file's bytes must decode as an image of at most ``limits.pixels`` pixels.

    Raises:
        OverLimit: more pixels than the bound (read from the header, before any decoding).
        BadInput: not an image Pillow decodes.
    """
    try:
        with Image.open(io.BytesIO(blob)) as header:  # the header only: no pixel decoded yet
            width, height = header.size
    except Image.DecompressionBombError:
        raise OverLimit(f"the image claims more pixels than the limit of {limits.pixels:,}") from None
    except Exception:  # noqa: BLE001 - undecodable content, whatever the decoder raises
        raise BadInput("the file is not an image this service can decode (PNG, JPEG, GIF, BMP, TIFF, WebP, ...)") from None
    if width * height > limits.pixels:
        raise OverLimit(f"the image has {width}x{height} pixels, over the limit of {limits.pixels:,}")
    open_image(io.BytesIO(blob), limits.pixels)
