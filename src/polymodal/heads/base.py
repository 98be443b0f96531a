"""The head registry (a leaf: it imports no head).

A head reads the fusion's output into the task's output and owns the loss. Each head class
registers itself with ``@register_head("<name>")``; a task builds its head by name, and a
fusion whose inputs each get their own head names the wrapper it needs (``head_wrapper``).
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from polymodal.errors import ConfigError

__all__ = ["register_head", "get_head", "head_names"]

_HEADS: dict[str, type[nn.Module]] = {}


def register_head(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a head available as ``get_head(name)``.

    Raises:
        RuntimeError: ``name`` is registered already.
    """

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _HEADS and _HEADS[name] is not cls:
            raise RuntimeError(f"head {name!r} registered twice")
        _HEADS[name] = cls
        return cls

    return wrap


def get_head(name: str) -> type[nn.Module]:
    """The head class registered as ``name``.

    Raises:
        ConfigError: no such head.
    """
    if name not in _HEADS:
        raise ConfigError(f"unknown head {name!r}; known: {', '.join(head_names()) or 'none'}")
    return _HEADS[name]


def head_names() -> list[str]:
    """Registered head names, sorted."""
    return sorted(_HEADS)
