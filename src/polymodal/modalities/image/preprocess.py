"""Image column (file paths) → ``pixel_values Float[B, C, H, W]``.

``load`` decodes with Pillow (EXIF rotation, palette / alpha / CMYK / 16-bit / float
modes), converts to grey or RGB and resizes to ``size × size``; the cached item is a small
``uint8 [C, H, W]`` tensor. ``augment`` applies a random affine (shift, rotation, scale,
optional flip); ``collate`` normalises with the per-channel mean/std fitted on training
images.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from polymodal.modalities.image.decode import open_image, to_l_or_rgb
from polymodal.preprocessing import BadInput, file_source, read_state, write_state
from polymodal.options import parse_options
from polymodal.errors import ConfigError, DataError, NotFittedError

__all__ = ["ImagePreprocessor"]

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def _resize(image: Image.Image, size: int, how: str, resample: int) -> Image.Image:
    """Resize to ``size × size`` by centre crop, stretch, or pad (letterbox)."""
    width, height = image.size
    if how == "stretch":
        return image.resize((size, size), resample, reducing_gap=3.0)
    if how == "shorter_then_center_crop":
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
        box = (left, top, left + side, top + side)  # centre square, resized in one pass
        return image.resize((size, size), resample, box=box, reducing_gap=3.0)
    scale = size / max(width, height)  # "pad": longer side → size, keep aspect
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    content = image.resize(new, resample, reducing_gap=3.0)
    pixels = np.asarray(content).reshape(new[1], new[0], -1)  # [h, w, C]
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])  # [n, C]
    fill = tuple(int(v + 0.5) for v in border.mean(axis=0))
    canvas = Image.new(content.mode, (size, size), fill[0] if content.mode == "L" else fill)
    canvas.paste(content, ((size - new[0]) // 2, (size - new[1]) // 2))
    return canvas


def _is_single_channel(image: Image.Image) -> bool:
    if image.mode == "L":
        return True
    pixels = np.asarray(image)  # [H, W, 3]
    return bool((pixels[..., :1] == pixels[..., 1:]).all())  # R == G and R == B


def _affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, [R, C, H, W], align_corners=False)`` for ``theta [R, 2, 3]``.

    Written with element-wise ops: ``affine_grid``'s batched matmul starts BLAS threads,
    which costs milliseconds per call on a busy CPU.
    """
    xs = ((torch.arange(width, dtype=torch.float32) * 2 + 1) / width - 1)[None, None, :]  # [1, 1, W] centres
    ys = ((torch.arange(height, dtype=torch.float32) * 2 + 1) / height - 1)[None, :, None]  # [1, H, 1]
    t = theta[:, :, :, None, None]  # [R, 2, 3, 1, 1]
    gx = t[:, 0, 0] * xs + t[:, 0, 1] * ys + t[:, 0, 2]  # [R, H, W]
    gy = t[:, 1, 0] * xs + t[:, 1, 1] * ys + t[:, 1, 2]  # [R, H, W]
    return torch.stack([gx, gy], dim=-1)  # [R, H, W, 2]


def _affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``images [R, C, H, W]`` moved by ``theta [R, 2, 3]`` (output → input coordinates);
    pixels moved in from outside take each image's mean border colour."""
    border = torch.cat([images[:, :, 0], images[:, :, -1], images[:, :, :, 0], images[:, :, :, -1]], dim=2)
    fill = border.mean(dim=2)[:, :, None, None]  # [R, C, 1, 1]
    grid = _affine_grid(theta, images.shape[2], images.shape[3])  # [R, H, W, 2]
    moved = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved + fill  # zeros of the padding = the border colour


class ImagePreprocessor:
    """One image-path column → ``pixel_values Float[B, C, size, size]`` (C = 1 or 3)."""

    modality: ClassVar[str] = "image"

    @property
    def fit_rows(self) -> int:
        """The first rows ``fit`` reads (more only where some are unreadable)."""
        return self.options.fit_images

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        size: int = Field(64, ge=4, le=4096)
        resize: Literal["shorter_then_center_crop", "stretch", "pad"] = "shorter_then_center_crop"
        resample: Literal["bilinear", "bicubic"] = "bilinear"
        grayscale: bool | None = None  # None: True if every fitted image is single-channel
        mean: list[float] | None = None  # per channel, 0..1 scale; None: fitted
        std: list[float] | None = None
        fit_images: int = Field(200, ge=1)  # images read by fit for grayscale / mean / std
        max_pixels: int = Field(40_000_000, ge=1)  # larger images are rejected unread
        augment: bool = True
        shift: float = Field(0.1, ge=0.0, lt=1.0)  # fraction of the side
        rotate_degrees: float = Field(10.0, ge=0.0, le=180.0)
        scale: float = Field(0.1, ge=0.0, lt=1.0)  # zoom factor in 1 ± scale
        hflip: bool = False

    def __init__(self, name: str, columns: list[str], **options: Any) -> None:
        if len(columns) != 1:
            raise ConfigError(f"image input '{name}' reads one column, got {list(columns)}")
        self.options = parse_options(self.Options, options, f"image input '{name}'")
        for key in ("mean", "std"):
            given = getattr(self.options, key)
            if given is not None and len(given) not in (1, 3):
                raise ConfigError(f"image input '{name}': {key} needs 1 or 3 values, got {given}")
        if self.options.std is not None and min(self.options.std) <= 0:
            raise ConfigError(f"image input '{name}': std must be > 0, got {self.options.std}")
        self.name = name
        self.columns = list(columns)
        self.grayscale_: bool | None = None
        self.mean_: list[float] | None = None
        self.std_: list[float] | None = None

    # ------------------------------------------------------------------ fit / load
    def _decode(self, row: Mapping[str, Any], base_dir: Path) -> Image.Image | None:
        """The row's image as a ``size × size`` Pillow image in mode L or RGB."""
        source = file_source(row.get(self.columns[0]), base_dir)
        if source is None:
            return None
        image = to_l_or_rgb(open_image(source, self.options.max_pixels))
        o = self.options
        return _resize(image, o.size, o.resize, _RESAMPLE[o.resample])

    def fit(self, frame: Any, base_dir: Path) -> "ImagePreprocessor":
        """Decide grey vs RGB and the per-channel mean/std from up to ``fit_images`` images.

        Unreadable files are skipped here (the dataset reports them when it loads rows).

        Raises:
            DataError: none of the training images can be decoded.
        """
        o, column = self.options, self.columns[0]
        images, first_error = [], None
        for value in frame[column].tolist():
            try:
                image = self._decode({column: value}, base_dir)
            except BadInput as exc:
                first_error = first_error or f"{value}: {exc}"
                continue
            if image is not None:
                images.append(image)
            if len(images) >= o.fit_images:
                break
        if not images:
            raise DataError(
                f"column '{column}': no training image could be read"
                + (f" (first: {first_error})" if first_error else " (the column is empty)")
                + f". Check the paths; they are relative to {base_dir}."
            )
        grey = o.grayscale
        if grey is None:
            grey = all(_is_single_channel(image) for image in images)
        mode, channels = ("L", 1) if grey else ("RGB", 3)
        total, total_sq, count = np.zeros(channels), np.zeros(channels), 0
        for image in images:  # running sums: no stack of every image in memory
            pixels = np.asarray(image.convert(mode), dtype=np.float64).reshape(-1, channels) / 255
            total += pixels.sum(axis=0)  # [C]
            total_sq += np.square(pixels).sum(axis=0)  # [C]
            count += len(pixels)
        fitted_mean = total / count
        fitted_std = np.sqrt(np.maximum(total_sq / count - np.square(fitted_mean), 0.0))
        mean = o.mean if o.mean is not None else fitted_mean.tolist()
        std = o.std if o.std is not None else fitted_std.tolist()
        if len(mean) not in (1, channels) or len(std) not in (1, channels):
            raise ConfigError(
                f"image input '{self.name}': mean/std have {len(mean)}/{len(std)} values "
                f"but the images have {channels} channel(s); give 1 or {channels} values"
            )
        self.mean_ = [float(v) for v in (mean * channels if len(mean) == 1 else mean)]
        std = std * channels if len(std) == 1 else std
        self.std_ = [float(v) if v > 1e-6 else 1.0 for v in std]  # flat images: no scaling
        self.grayscale_ = grey
        return self

    def _check_fitted(self) -> None:
        if self.grayscale_ is None:
            raise NotFittedError(f"image input '{self.name}': call fit() before load()")

    def load(self, row: Mapping[str, Any], base_dir: Path) -> torch.Tensor | None:
        """Decoded image ``UInt8[C, size, size]``, or ``None`` when the cell is empty.

        Raises:
            BadInput: missing, empty, oversized or undecodable file.
        """
        self._check_fitted()
        image = self._decode(row, base_dir)
        if image is None:
            return None
        if self.grayscale_ and image.mode != "L":
            image = image.convert("L")
        pixels = np.asarray(image)  # [H, W] or [H, W, 3]
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]  # [H, W, 1]
        if not self.grayscale_ and pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)  # [H, W, 3]
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy())  # [C, H, W]

    # ------------------------------------------------------------------ train / batch
    def _theta(self, generator: torch.Generator) -> list[list[float]]:
        """One random affine (output → input coordinates) of ``augment``'s options."""
        o = self.options
        u = [2 * v - 1 for v in torch.rand(5, generator=generator).tolist()]  # 5 draws in [-1, 1)
        angle = math.radians(o.rotate_degrees) * u[0]
        zoom = 1.0 + o.scale * u[1]
        tx, ty = 2 * o.shift * u[2], 2 * o.shift * u[3]  # normalised coords
        flip = -1.0 if (o.hflip and u[4] < 0) else 1.0
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        return [[flip * cos, -sin, tx], [flip * sin, cos, ty]]

    def augment(self, item: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random shift / rotation / scale (/ flip); returns ``Float32[C, H, W]`` in 0..255.

        Pixels moved in from outside the image take the mean colour of its border. Training
        batches take ``augment_batch`` instead: the same draws, one call for the batch.
        """
        if not self.options.augment:
            return item
        theta = torch.tensor([self._theta(generator)])  # [1, 2, 3]
        return _affine(item.float()[None], theta)[0].clamp_(0.0, 255.0)

    def augment_batch(self, batch: dict[str, torch.Tensor],
                      generators: list[torch.Generator | None]) -> dict[str, torch.Tensor]:
        """``augment`` on a collated batch: row ``i`` moved by a draw of ``generators[i]``
        (None: the row as it is). Works on the normalised pixels: the affine is linear, and
        the clamp is to the normalised 0..255."""
        rows = [i for i, g in enumerate(generators) if g is not None]
        if not self.options.augment or not rows:
            return batch
        pixels = batch["pixel_values"].clone()  # [B, C, H, W]
        theta = torch.tensor([self._theta(generators[i]) for i in rows])  # [R, 2, 3]
        channels = pixels.shape[1]
        mean = torch.tensor(self.mean_).view(1, channels, 1, 1)
        std = torch.tensor(self.std_).view(1, channels, 1, 1)
        moved = _affine(pixels[rows], theta)  # [R, C, H, W]
        pixels[rows] = torch.maximum(torch.minimum(moved, (1.0 - mean) / std), -mean / std)
        return {**batch, "pixel_values": pixels}

    def collate(self, items: list[torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """``pixel_values Float[B, C, size, size]`` = (x / 255 - mean) / std; absent → 0."""
        self._check_fitted()
        channels, size = (1 if self.grayscale_ else 3), self.options.size
        pixels = torch.zeros((len(items), channels, size, size))  # [B, C, H, W]
        present = [i for i, item in enumerate(items) if item is not None]
        if present:
            stacked = torch.stack([torch.as_tensor(items[i]).float() for i in present])
            # stacked: [P, C, H, W], P = present rows
            mean = torch.tensor(self.mean_).view(1, channels, 1, 1)
            std = torch.tensor(self.std_).view(1, channels, 1, 1)
            pixels[present] = (stacked / 255.0 - mean) / std
        return {"pixel_values": pixels}

    def encoder_inputs(self) -> dict[str, Any]:
        self._check_fitted()
        return {"in_channels": 1 if self.grayscale_ else 3, "image_size": self.options.size}

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write ``state.json``: options and the fitted grayscale / mean / std."""
        self._check_fitted()
        write_state(
            Path(directory),
            {
                "modality": self.modality,
                "name": self.name,
                "columns": self.columns,
                "options": self.options.model_dump(),
                "fitted": {"grayscale": self.grayscale_, "mean": self.mean_, "std": self.std_},
            },
        )

    @classmethod
    def load_from(cls, directory: Path) -> "ImagePreprocessor":
        """Rebuild the fitted preprocessor from ``save``'s ``state.json``."""
        state = read_state(Path(directory))
        self = cls(state["name"], state["columns"], **state["options"])
        fitted = state["fitted"]
        self.grayscale_ = bool(fitted["grayscale"])
        self.mean_ = [float(v) for v in fitted["mean"]]
        self.std_ = [float(v) for v in fitted["std"]]
        return self
