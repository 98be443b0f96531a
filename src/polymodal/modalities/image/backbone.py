"""Image column with a pretrained backbone → its image processor's ``pixel_values``.

Decoding is polymodal's (EXIF rotation, any Pillow mode → RGB, size limit); resizing,
cropping and normalisation are the backbone's own (``AutoImageProcessor`` with the Pillow
backend). ``size``, ``mean`` and ``std`` may be overridden, with a warning.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from polymodal.backbones import quiet_transformers
from polymodal.backbones.collate import padded_stack
from polymodal.backbones.family import get_family
from polymodal.backbones.preprocessor import (
    BackbonePreprocessor,
    file_bytes,
    override_note,
)
from polymodal.modalities.image.decode import open_image, to_l_or_rgb
from polymodal.errors import ConfigError
from polymodal.preprocessing import file_source

__all__ = ["BackboneImagePreprocessor"]


class BackboneImagePreprocessor(BackbonePreprocessor):
    """One image-path column → ``pixel_values Float[B, 3, H, W]`` as the backbone expects."""

    modality = "image"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        size: int | None = Field(None, ge=8, le=4096, description="override the backbone's input size")
        mean: list[float] | None = Field(None, min_length=3, max_length=3)
        std: list[float] | None = Field(None, min_length=3, max_length=3)
        max_pixels: int = Field(40_000_000, ge=1)
        augment: bool = False  # random flip / shift while training (fine-tuned backbones only)
        hflip: bool = True
        shift: float = Field(0.05, ge=0.0, lt=0.5)  # fraction of the side

    def _use_processor(self, folder: Path, fitting: bool) -> None:
        o = self.options
        try:
            with quiet_transformers():
                processor = self._processor_from(folder)
                overrides = _overrides(processor, o) if fitting else {}  # a saved processor holds them
                own = {"size": _side(processor), "mean": processor.image_mean, "std": processor.image_std}
                kwargs = {k: v for key, value in overrides.items() for k, v in value.items()}
                if kwargs:
                    processor = self._processor_from(folder, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"image input '{self.name}': backbone {self.backbone!r} has no usable "
                              f"image processor in {folder} ({exc}); use a model folder with "
                              f"preprocessor_config.json") from None
        for key in overrides:
            override_note(self.columns[0], key, getattr(o, key), own[key], self.backbone)
        self._processor = processor
        blank = self._pixels(_blank())
        self.pixel_shape_ = tuple(blank.shape)  # [3, H, W]

    def _processor_from(self, folder: Path, **kwargs: Any) -> Any:
        from transformers import AutoImageProcessor

        if self.family_ != "hf" and not (folder / "preprocessor_config.json").is_file():
            return get_family(self.family_, folder).image_processor(**kwargs)  # a non-HF family's own
        return AutoImageProcessor.from_pretrained(str(folder), backend="pil", local_files_only=True, **kwargs)

    def _pixels(self, image: Any) -> torch.Tensor:
        out = self._processor(images=[image], return_tensors="pt")["pixel_values"]  # [1, 3, H, W]
        return out[0].to(torch.float16)

    def pixel_scale(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(scale [3], offset [3])`` with ``pixel_values = pixels (0..255) * scale + offset``,
        or None when the processor does not say how it rescales and normalises."""
        p = self._processor
        scale = torch.ones(3) * (float(p.rescale_factor) if getattr(p, "do_rescale", False) else 1.0)  # [3]
        if not getattr(p, "do_normalize", False):
            return scale, torch.zeros(3)
        mean, std = getattr(p, "image_mean", None), getattr(p, "image_std", None)
        if mean is None or std is None:
            return None
        mean, std = torch.ones(3) * torch.as_tensor(mean), torch.ones(3) * torch.as_tensor(std)  # [3]
        return scale / std, -mean / std

    def _content(self, row: Mapping[str, Any], base_dir: Path) -> bytes | None:
        source = file_source(row.get(self.columns[0]), base_dir)
        return None if source is None else file_bytes(source)

    def _decode(self, content: bytes) -> tuple[torch.Tensor, bool]:
        image = to_l_or_rgb(open_image(io.BytesIO(content), self.options.max_pixels)).convert("RGB")
        return self._pixels(image), False

    def _augment(self, value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random horizontal flip and shift (edges replicated); ``Float16[3, H, W]``."""
        o = self.options
        if not o.augment:
            return value
        u = torch.rand(3, generator=generator)  # [3] in [0, 1)
        image = value.float()
        if o.hflip and float(u[0]) < 0.5:
            image = image.flip(-1)
        _, h, w = image.shape
        dy, dx = round((2 * float(u[1]) - 1) * o.shift * h), round((2 * float(u[2]) - 1) * o.shift * w)
        pad = (abs(dx), abs(dx), abs(dy), abs(dy))  # left, right, top, bottom
        padded = F.pad(image[None], pad, mode="replicate")[0]  # [3, H + 2|dy|, W + 2|dx|]
        top, left = abs(dy) + dy, abs(dx) + dx
        return padded[:, top : top + h, left : left + w].to(torch.float16)

    def _collate_values(self, values: list[torch.Tensor | None]) -> dict[str, torch.Tensor]:
        pixels, _ = padded_stack(values, self.pixel_shape_)  # [B, 3, H, W]
        return {"pixel_values": pixels}

    def _processor_state(self) -> Any:
        return self._processor.to_dict()

    def _save_processor(self, directory: Path) -> None:
        self._processor.save_pretrained(str(directory))


def _blank() -> Any:
    from PIL import Image

    return Image.new("RGB", (64, 48), (127, 127, 127))


def _overrides(processor: Any, options: Any) -> dict[str, dict[str, Any]]:
    """Processor kwargs for each overridden option: ``{option: {kwarg: value}}``."""
    out: dict[str, dict[str, Any]] = {}
    if options.size is not None and options.size != _side(processor):
        size = processor.size
        shortest = size.get("shortest_edge") if isinstance(size, dict) else getattr(size, "shortest_edge", None)
        side = options.size
        out["size"] = {"size": {"shortest_edge": side} if shortest else {"height": side, "width": side}}
        if getattr(processor, "crop_size", None) is not None:
            out["size"]["crop_size"] = {"height": side, "width": side}
    for key in ("mean", "std"):
        given, own = getattr(options, key), getattr(processor, f"image_{key}")
        if given is not None and [round(v, 6) for v in given] != [round(float(v), 6) for v in own]:
            out[key] = {f"image_{key}": list(given)}
    return out


def _side(processor: Any) -> int:
    """The side of the (square) input the processor produces."""
    return int(processor(images=[_blank()], return_tensors="pt")["pixel_values"].shape[-1])
