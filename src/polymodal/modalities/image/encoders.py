"""Image encoders: a small configurable CNN (``cnn``) and a Vision Transformer (``vit``).

Both read ``pixel_values Float[B, C, H, W]`` (H = W = ``image_size``) and return
``EncoderOutput(tokens [B, T, D], pooled [B, D], mask [B, T])``; every position is real, so
the mask is all True.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput, register_encoder
from polymodal.errors import ConfigError

__all__ = ["CNNImageEncoder", "ViTImageEncoder"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


def _conv_block(c_in: int, c_out: int, convs: int, activation: str, pool: bool) -> nn.Sequential:
    """``convs`` × (conv3x3 → BatchNorm → activation), then a 2×2 max-pool when ``pool``."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            _ACTIVATIONS[activation](),
        ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


@register_encoder("image", "cnn")
class CNNImageEncoder(nn.Module):
    """Stacked conv blocks; tokens are the final feature map's positions, pooled is global.

    Each block halves the spatial size until a further halving would go below 2×2, so any
    ``image_size`` from 8 to 224 works (8 → 4 → 2 → 2; 224 → 112 → 56 → 28).
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        channels: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
        convs_per_block: int = Field(2, gt=0)
        activation: Literal["gelu", "relu"] = "gelu"
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        pooling: Literal["avg", "max", "avgmax"] = "avg"

    def __init__(self, *, in_channels: int, image_size: int, **options: Any) -> None:
        super().__init__()
        opts = self.options = self.Options(**options)
        if any(c <= 0 for c in opts.channels):
            raise ConfigError(f"image encoder 'cnn': channels must be positive, got {opts.channels}")
        blocks, size, c_in = [], image_size, in_channels
        for c_out in opts.channels:
            pool = size // 2 >= 2
            blocks.append(_conv_block(c_in, c_out, opts.convs_per_block, opts.activation, pool))
            size, c_in = (size // 2 if pool else size), c_out
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(opts.dropout)
        self.out_dim = opts.channels[-1]
        self.to(memory_format=torch.channels_last)  # its 4-D weights, to match the channels-last maps

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        # channels-last: oneDNN's convolutions and max-pooling run faster on these maps
        fmap = self.blocks(batch["pixel_values"].contiguous(memory_format=torch.channels_last))  # [B, C, H', W']
        tokens = self.dropout(fmap.flatten(2).transpose(1, 2))  # [B, H'*W', C]
        if self.options.pooling == "avg":
            pooled = tokens.mean(dim=1)  # [B, C]
        elif self.options.pooling == "max":
            pooled = tokens.amax(dim=1)  # [B, C]
        else:  # timm's "avgmax": the average of the two
            pooled = 0.5 * (tokens.mean(dim=1) + tokens.amax(dim=1))  # [B, C]
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)  # [B, H'*W']
        return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)


@register_encoder("image", "vit")
class ViTImageEncoder(nn.Module):
    """A Vision Transformer (``transformers.ViTModel``) built from a config, random weights.

    ``patch_size`` is clamped to ``image_size``. Tokens are ``[CLS] + patches``.
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        patch_size: int = Field(8, gt=0)
        hidden_size: int = Field(128, gt=0)
        num_layers: int = Field(4, gt=0)
        num_heads: int = Field(4, gt=0)
        intermediate_size: int = Field(256, gt=0)
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        pooling: Literal["cls", "mean"] = "cls"

    def __init__(self, *, in_channels: int, image_size: int, **options: Any) -> None:
        super().__init__()
        from transformers import ViTConfig, ViTModel

        opts = self.options = self.Options(**options)
        if opts.hidden_size % opts.num_heads:
            raise ConfigError(
                f"image encoder 'vit': hidden_size ({opts.hidden_size}) must be divisible by "
                f"num_heads ({opts.num_heads}); change one of them."
            )
        config = ViTConfig(
            image_size=image_size,
            patch_size=min(opts.patch_size, image_size),
            num_channels=in_channels,
            hidden_size=opts.hidden_size,
            num_hidden_layers=opts.num_layers,
            num_attention_heads=opts.num_heads,
            intermediate_size=opts.intermediate_size,
            hidden_dropout_prob=opts.dropout,
            attention_probs_dropout_prob=opts.dropout,
        )
        self.model = ViTModel(config, add_pooling_layer=False)
        self.out_dim = opts.hidden_size

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        tokens = self.model(pixel_values=batch["pixel_values"]).last_hidden_state  # [B, 1+P, D]
        if self.options.pooling == "cls":
            pooled = tokens[:, 0]  # [B, D]
        else:
            pooled = tokens[:, 1:].mean(dim=1)  # [B, D], patches only
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)  # [B, 1+P]
        return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)
