"""Optimiser parameter groups: weight decay by kind, learning rate by layer.

A module may set its own parameters' learning rates by defining
``parameter_learning_rates() -> Iterable[(parameter, lr)]`` (pretrained encoders do, for
layer-wise decay); every other parameter trains at the base learning rate.
"""
from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["param_groups"]


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
