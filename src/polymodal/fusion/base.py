"""The fusion contract and its registry.

A fusion module combines the encoders' outputs into one vector per example. It is built
as ``Cls(input_dims={name: D_i}, **options)`` and called with the encoder outputs and a
presence mask; inputs are always taken in sorted name order, so results never depend on
the order of the mapping.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

__all__ = ["FusionOutput", "FUSIONS", "register_fusion", "get_fusion", "check_fusion_inputs", "fusion_option_problems"]


@dataclass
class FusionOutput:
    """What a fusion returns.

    Attributes:
        fused: ``[B, D]`` one vector per example (what the head reads).
        weights: ``[B, M]`` per-example weight of each input (sorted name order, rows sum
            to 1, absent inputs usually 0) when the fusion has modality weights, else None.
        parts: ``[B, M, D]`` one vector per input, for fusions whose inputs each get their
            own head (late fusion); the model then combines the heads' outputs with
            ``weights`` instead of reading ``fused``.
    """

    fused: torch.Tensor
    weights: torch.Tensor | None = None
    parts: torch.Tensor | None = None


FUSIONS: dict[str, type[nn.Module]] = {}


def register_fusion(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a fusion available as ``fusion: {name: <name>}``.

    The class defines a nested pydantic ``Options`` model, takes ``input_dims`` plus its
    options as keywords, exposes ``out_dim`` and implements
    ``forward(outputs: Mapping[str, EncoderOutput], present: Bool[B, M]) -> FusionOutput``.
    It may set ``min_inputs`` (default 1: how many inputs it needs) and
    ``head_wrapper = "<registered head>"`` (it returns ``parts``; the builder wraps the task's
    head in that head, e.g. ``late``: one copy per input).
    An input absent for a row must not change that row's output through its values.
    """

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        FUSIONS[name] = cls
        return cls

    return wrap


def get_fusion(name: str) -> type[nn.Module]:
    from polymodal.errors import ConfigError

    if name not in FUSIONS:
        raise ConfigError(f"unknown fusion {name!r}; known: {', '.join(sorted(FUSIONS))}")
    return FUSIONS[name]


def check_fusion_inputs(options: Mapping[str, Any], input_names: Sequence[str]) -> None:
    """Refuse, before any data is loaded, a fusion that needs more inputs than the table has.

    Args:
        options: the config's ``fusion`` section (``name`` plus options).
        input_names: the model's inputs (text/image/audio columns, ``tabular``).

    Raises:
        ConfigError: e.g. ``fusion: cross_attention`` with only an image column.
    """
    from polymodal.fusion._parts import _check_min_inputs

    name = options.get("name", "concat")
    cls = get_fusion(name)
    _check_min_inputs(name, {n: 1 for n in input_names}, getattr(cls, "min_inputs", 1))


def fusion_option_problems(options: Mapping[str, Any]) -> list[str]:
    """Every problem with a ``fusion`` config section, each as ``<key>: <what>``.

    An option that belongs to another fusion (or to none) is named with the options the
    chosen fusion does take.
    """
    from pydantic import ValidationError

    name = options.get("name", "concat")
    if name not in FUSIONS:
        return [f"name: unknown fusion {name!r}; known: {', '.join(sorted(FUSIONS))}"]
    model = FUSIONS[name].Options
    given = {k: v for k, v in options.items() if k != "name"}
    known = sorted(model.model_fields)
    problems = [f"{key}: not an option of fusion {name!r}; its options are {', '.join(known)}"
                for key in given if key not in model.model_fields]
    try:
        model(**{k: v for k, v in given.items() if k in model.model_fields})
    except ValidationError as exc:
        for e in exc.errors():
            where = ".".join(map(str, e["loc"]))
            message = e["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
    return problems
