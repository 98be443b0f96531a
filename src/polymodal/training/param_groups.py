"""Optimiser parameter groups (weight decay by kind, learning rate by layer) and the AdamW
that trains them.

A module may set its own parameters' learning rates by defining
``parameter_learning_rates() -> Iterable[(parameter, lr)]`` (pretrained encoders do, for
layer-wise decay); every other parameter trains at the base learning rate.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

__all__ = ["adamw", "clip_norm", "match_param_layouts", "param_groups"]


def adamw(params: Iterable[Any], scaled: bool = False, **options: Any) -> torch.optim.AdamW:
    """``torch.optim.AdamW``, fused (one kernel for every parameter) where torch can.

    The fused step is several times faster than the per-tensor ``foreach`` one on a CPU: 14
    against 66 ms for MiniLM's 22.7M parameters on 2 cores (``docs/benchmarks.md``). It steps
    a parameter's raw memory with its moments', so restored moments must have the parameter's
    layout (``match_param_layouts``). ``scaled``: fp16 training with a gradient scaler, which
    unscales the gradients before they are clipped only for an optimiser that is not fused.
    """
    params = list(params)
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    devices = {p.device.type for p in tensors}
    fusable = not scaled and bool(tensors) and len(devices) == 1 and devices <= {"cpu", "cuda"} and \
        all(p.dtype in (torch.float32, torch.float16, torch.bfloat16) for p in tensors)
    return torch.optim.AdamW(params, fused=True if fusable else None, **options)


def clip_norm(optimizer: Any, max_norm: float | None) -> None:
    """Clip the gradients of ``optimizer``'s parameters to a total norm of ``max_norm``.

    Lightning's mixed-precision plugin refuses to clip for a fused optimiser (it assumes a
    gradient scaler that unscales inside the step); bf16 autocast has no scaler, so the
    gradients are clipped as they are. ``max_norm`` None or 0: nothing.
    """
    if not max_norm:
        return
    optimizer = getattr(optimizer, "optimizer", optimizer)  # Lightning's wrapper
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if params:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def param_groups(model: nn.Module, learning_rate: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups keyed by (learning rate, weight decay), in a stable order.

    Norm scales, biases and other 1-d parameters are not decayed. Frozen parameters
    (``requires_grad=False``) are left out.
    """
    rates: dict[int, float] = {}
    for module in model.modules():
        own = getattr(module, "parameter_learning_rates", None)
        if callable(own):
            rates.update({id(p): float(lr) for p, lr in own()})
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = 0.0 if p.ndim <= 1 or name.endswith(".bias") else weight_decay
        groups.setdefault((rates.get(id(p), learning_rate), decay), []).append(p)
    return [{"params": params, "lr": lr, "weight_decay": decay}
            for (lr, decay), params in sorted(groups.items(), key=lambda kv: (-kv[0][0], -kv[0][1]))]


def match_param_layouts(optimizer: Any) -> None:
    """Give each restored optimiser state tensor its parameter's memory layout.

    A checkpoint stores tensors contiguous, but a channels-last convolution weight's moments
    must be channels-last too: the fused AdamW steps the raw memory of a parameter and its
    moments together, and with other strides it paired each weight with another's moments.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in (optimizer.state.get(param) or {}).items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
