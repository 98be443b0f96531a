"""A pretrained backbone as an encoder: frozen, fully fine-tuned, or its last N layers tuned.

The backbone (a transformers model, or another family's module with the same outputs)
reads the batch its backbone preprocessor collates, and its ``last_hidden_state`` becomes
``tokens [B, T, D]`` (a CNN's feature map ``[B, C, H, W]`` is flattened to ``[B, H*W, C]``).
``pooled [B, D]`` is the masked mean of the tokens (``pooling: mean``; for a CNN, its own
global pooling) or its summary vector (``pooling: cls``: the model's own pooled output, else
the first token).

A frozen encoder whose features are cached receives ``cached_pooled [B, D]``,
``cached_mask [B, T]`` (and ``cached_tokens [B, T, D]`` unless only pooled vectors are
stored; then T = 1) instead, and passes them through. Its backbone is then given as a
loader and kept outside the module tree: it is read only when some feature must be
computed, and is neither in the state dict nor trained (it is saved on its own).

Layer-wise learning rates: ``parameter_learning_rates`` gives block i of L (counted from the
input) ``learning_rate * layer_lr_decay ** (L - 1 - i)``, the layers before the blocks
(embeddings) ``learning_rate * layer_lr_decay ** L`` and those after (final norm) the
top rate; ``training.param_groups`` turns them into optimiser groups.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Literal, Mapping

import torch
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.encoders.pooling import masked_mean
from polymodal.errors import ConfigError

__all__ = ["PretrainedEncoder"]


class PretrainedEncoder(nn.Module):
    """One column's pretrained backbone.

    Args:
        backbone: the built backbone module; or, for a frozen backbone whose features are
            cached, a function that builds it (called on first use).
        modality: the column's modality (for messages and the tower's part).
        out_dim: its feature width D.
        summary: it has a [CLS]-like first token or its own pooled output.
        token_mask: the batch's ``attention_mask`` marks the output positions one to one
            (text tokens); else outputs are all real positions.
        name: the backbone's name, for messages.
        mode: ``"frozen"``, ``"full"`` or ``"last_n"``.
        last_n: blocks trained in ``last_n`` mode.
        layer_lr_decay: learning-rate factor per block going down (1.0 = no decay).
        learning_rate: the top block's learning rate.
        pooling: ``"mean"`` or ``"cls"``.
        embeddings: ``"frozen"``: the token embedding table (``get_input_embeddings()``, an
            ``nn.Embedding``) does not train, whatever ``mode`` says.

    Raises:
        ConfigError: ``pooling: cls`` on a backbone without a summary token, or ``last_n``
            larger than its number of blocks.
    """

    def __init__(self, backbone: nn.Module | Callable[[], nn.Module], *, modality: str, out_dim: int,
                 summary: bool = True, token_mask: bool = False,
                 name: str = "backbone", mode: Literal["frozen", "full", "last_n"] = "frozen",
                 last_n: int = 2, layer_lr_decay: float = 1.0, learning_rate: float = 5e-5,
                 pooling: Literal["mean", "cls"] = "mean", embeddings: Literal["train", "frozen"] = "train") -> None:
        super().__init__()
        if pooling == "cls" and not summary:
            raise ConfigError(f"backbone {name!r} has no [CLS] token or pooled output of its own, so "
                              f"tuning.pooling: cls has nothing to read; use pooling: mean")
        self.modality, self.out_dim, self.mode, self.pooling = modality, int(out_dim), mode, pooling
        self.token_mask = token_mask
        self.learning_rate, self.layer_lr_decay = learning_rate, layer_lr_decay
        if not isinstance(backbone, nn.Module):  # a loader: frozen and cached, outside the module tree
            assert mode == "frozen", "only a frozen backbone is loaded lazily"
            self._loader, self._detached = backbone, None
            return
        self.backbone = backbone
        self._depth = _depths(backbone)  # id(param) -> blocks below the top (0 = top / after)
        blocks = max(self._depth.values(), default=0)  # L: "before" params sit at depth L
        if mode == "last_n" and last_n > blocks:
            raise ConfigError(f"tuning.last_n={last_n} but backbone {name!r} has {blocks} layers; "
                              f"use last_n <= {blocks}, or mode: full")
        for p in backbone.parameters():  # weights the model itself keeps fixed (Whisper's positions) stay so
            trainable = mode == "full" or (mode == "last_n" and self._depth[id(p)] < last_n)
            p.requires_grad_(trainable and p.requires_grad)
        if embeddings == "frozen":
            table = _token_embeddings(backbone)
            if table is not None:
                table.weight.requires_grad_(False)
        self.train()

    @property
    def frozen(self) -> bool:
        return self.mode == "frozen"

    def tower(self) -> nn.Module:
        """The backbone module (built now if it is loaded lazily)."""
        if "backbone" in self._modules:
            return self.backbone
        if self._detached is None:
            tower = self._loader().eval()
            self.__dict__["_detached"] = tower.requires_grad_(False)  # not registered: no state, no training
        return self._detached

    def train(self, mode: bool = True) -> "PretrainedEncoder":
        """Frozen parts stay in eval mode: no dropout noise in cached features, and no
        BatchNorm statistics drifting in layers that are not trained."""
        super().train(mode)
        if "backbone" not in self._modules:
            return self  # a lazily loaded backbone is always in eval mode
        if self.frozen:
            self.backbone.eval()
        else:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                        p.requires_grad for p in module.parameters()):
                    module.eval()
        return self

    def parameter_learning_rates(self) -> Iterator[tuple[nn.Parameter, float]]:
        """``(parameter, learning rate)`` for each trainable backbone parameter."""
        if "backbone" not in self._modules:
            return
        for p in self.backbone.parameters():
            if p.requires_grad:
                yield p, self.learning_rate * self.layer_lr_decay ** self._depth[id(p)]

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        if "cached_pooled" in batch:  # a frozen backbone's stored features: pass through
            pooled, mask = batch["cached_pooled"], batch["cached_mask"]  # [B, D], [B, T]
            tokens = batch.get("cached_tokens", pooled.unsqueeze(1))  # [B, T, D]; T = 1 if pooled only
            return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)
        grad = contextlib.nullcontext() if not self.frozen else torch.no_grad()
        with grad:
            return self.features(batch)

    def features(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        """Run the backbone on its inputs (``input_ids``, ``pixel_values``, ...)."""
        inputs = {k: v for k, v in batch.items() if k != "lengths"}
        real = None
        if self.token_mask:  # the mask marks the output positions (text tokens)
            real = inputs["attention_mask"].bool()  # [B, T]
            # A row with no real token attends everywhere instead (its outputs are masked out).
            inputs["attention_mask"] = (real | ~real.any(dim=1, keepdim=True)).long()
        elif "attention_mask" in inputs:
            present = inputs["attention_mask"].bool()  # [B, S]
            inputs["attention_mask"] = (present | ~present.any(dim=1, keepdim=True)).long()
        tower = self.tower()
        if "backbone" not in self._modules:  # follow the batch to its device (the loader builds on CPU)
            tower.to(next(iter(inputs.values())).device)
        out = tower(**inputs)
        hidden = out.last_hidden_state
        own = getattr(out, "pooler_output", None)
        if own is not None:
            own = own.flatten(1)  # [B, D] (CNNs give [B, D, 1, 1])
        if hidden.dim() == 4:
            tokens = hidden.flatten(2).transpose(1, 2)  # [B, C, H, W] -> [B, H*W, C]
        else:
            tokens = hidden  # [B, T, D]
        b, t = tokens.shape[:2]
        if real is None:
            real = self._audio_mask(batch, t) if "lengths" in batch else tokens.new_ones((b, t), dtype=torch.bool)
        if self.pooling == "cls":
            pooled = own if own is not None else tokens[:, 0]  # [B, D]
        elif hidden.dim() == 4 and own is not None:
            pooled = own  # a CNN's own global pooling (with its final norm, if any)
        else:
            pooled = masked_mean(tokens, real)  # [B, D]
        pooled = pooled * real.any(dim=1, keepdim=True).to(pooled.dtype)  # rows with nothing real → 0
        return EncoderOutput(tokens=tokens, pooled=pooled, mask=real)

    def _audio_mask(self, batch: Mapping[str, torch.Tensor], frames: int) -> torch.Tensor:
        """Real output frames ``[B, frames]`` from each clip's input length."""
        lengths = batch["lengths"]  # [B], real positions along the input's time axis
        key = "input_values" if "input_values" in batch else "input_features"
        value = batch[key]
        tower = self.tower()
        if hasattr(tower, "_get_feat_extract_output_lengths") and value.dim() == 2:
            out = tower._get_feat_extract_output_lengths(lengths)  # wav2vec2 family: conv strides
        elif value.dim() == 3 and key == "input_features":
            out = torch.div(lengths * frames + value.shape[-1] - 1, value.shape[-1], rounding_mode="floor")  # Whisper
        else:
            out = torch.where(lengths > 0, torch.full_like(lengths, frames), lengths)  # AST: every patch
        return torch.arange(frames, device=lengths.device)[None, :] < out.clamp(max=frames)[:, None]  # [B, frames]


def _token_embeddings(backbone: nn.Module) -> nn.Embedding | None:
    """The token embedding table of a (transformers) backbone, or None."""
    for module in backbone.modules():
        get = getattr(module, "get_input_embeddings", None)
        if callable(get):
            try:
                table = get()
            except NotImplementedError:
                continue
            if isinstance(table, nn.Embedding):
                return table
    return None


def _depths(backbone: nn.Module) -> dict[int, int]:
    """id(param) -> depth: blocks above it (top block 0 … bottom L-1; before them L; after 0).

    The blocks are the children of the backbone's largest ``nn.ModuleList`` (BERT's
    ``encoder.layer``, ViT's, Swin's stages, ResNet's stages, EfficientNet's blocks).
    """
    best, size = None, 0
    for module in backbone.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1:
            n = sum(p.numel() for p in module.parameters())
            if n > size:
                best, size = module, n
    blocks = list(best) if best is not None else []
    count = len(blocks)
    in_block = {id(p): count - 1 - i for i, block in enumerate(blocks) for p in block.parameters()}
    depths, seen_block = {}, False
    for p in backbone.parameters():  # registration order ~ forward order
        if id(p) in in_block:
            seen_block, depths[id(p)] = True, in_block[id(p)]
        else:
            depths[id(p)] = 0 if seen_block else count
    return depths

