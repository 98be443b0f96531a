"""What a config key allows, read from the pydantic models: the words of the search space's errors.

``model_field_at`` walks the config's models (``Config`` → ``TrainingConfig`` …, a modality
section → ``ModalityConfig``); ``allowed_at`` describes one key's values from its field (its
``Literal`` choices, its bounds, its type), for the built-in sections and for a fusion's or an
encoder's options.
"""
from __future__ import annotations

import types
import typing
from typing import Any, Mapping

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from polymodal.config import Config, ModalityConfig
from polymodal.encoders.base import ENCODERS
from polymodal.fusion.base import FUSIONS
from polymodal.modalities.base import get_modality, modality_names

__all__ = ["model_field_at", "allowed_at"]


def model_field_at(parts: list[str]) -> list[str] | None:
    """The keys the config model at the path ``parts`` takes, or None where the path is a free
    mapping (a fusion's, an encoder's options) or leads nowhere known."""
    model = _model_at(parts)
    if model is None:
        return None
    keys = [k for k in model.model_fields if not (model is Config and k == "sections")]
    return keys + modality_names() if model is Config else keys


def allowed_at(dump: Mapping[str, Any], key: str) -> str:
    """The values ``key`` accepts, in words (``one of concat, gated, ...``, ``a number > 0``)."""
    parts = key.split(".")
    field = _field_at(dump, parts)
    if parts == ["fusion", "name"]:
        return "one of " + ", ".join(sorted(FUSIONS))
    if len(parts) == 3 and parts[0] in modality_names() and parts[1:] == ["encoder", "name"]:
        return "one of " + ", ".join(sorted(n for m, n in ENCODERS if m == parts[0]))
    return _describe(field) if field is not None else "see the error above"


def _model_at(parts: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Config
    for depth, part in enumerate(parts):
        if model is Config and part in modality_names():
            model = ModalityConfig
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _model_of(model.model_fields[part].annotation)
    return model


def _field_at(dump: Mapping[str, Any], parts: list[str]) -> FieldInfo | None:
    """The pydantic field of the key ``parts``: a config model's, or a fusion's or encoder's option."""
    parent = _model_at(parts[:-1])
    if parent is not None:
        return parent.model_fields.get(parts[-1])
    if len(parts) == 2 and parts[0] == "fusion":
        cls = FUSIONS.get((dump.get("fusion") or {}).get("name", "concat"))
        return None if cls is None else cls.Options.model_fields.get(parts[1])
    if len(parts) == 3 and parts[0] in modality_names() and parts[1] in ("encoder", "preprocess"):
        plugin = get_modality(parts[0])
        if parts[1] == "preprocess":
            return plugin.preprocessor.Options.model_fields.get(parts[2])
        name = ((dump.get(parts[0]) or {}).get("encoder") or {}).get("name", plugin.default_encoder)
        cls = ENCODERS.get((parts[0], name))
        return None if cls is None else cls.Options.model_fields.get(parts[2])
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model in ``annotation`` (``X`` or ``X | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _describe(field: FieldInfo) -> str:
    """A field's values in words, from its type and its bounds."""
    words = []
    for option in _options(field.annotation):
        if typing.get_origin(option) is typing.Literal:
            words.append("one of " + ", ".join(map(str, typing.get_args(option))))
        elif option is bool:
            words.append("true or false")
        elif option in (int, float):
            noun = "an integer" if option is int else "a number"
            words.append(" ".join([noun, *_bounds(field.metadata + _inner_metadata(field.annotation))]))
        elif option is type(None):
            words.append("null")
        else:
            words.append(getattr(option, "__name__", str(option)))
    return " or ".join(words) or "any value"


def _options(annotation: Any) -> list[Any]:
    """The members of a union (``A | B``), with ``Annotated[...]`` unwrapped."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [o for a in typing.get_args(annotation) for o in _options(a)]
    if typing.get_origin(annotation) is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    return [annotation]


def _inner_metadata(annotation: Any) -> list[Any]:
    """The bounds written inside ``Annotated[int, Field(ge=1)]`` members of a union."""
    found = []
    for arg in typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
            else [annotation]:
        if typing.get_origin(arg) is typing.Annotated:
            for extra in typing.get_args(arg)[1:]:
                found += list(getattr(extra, "metadata", [extra]))
    return found


def _bounds(metadata: list[Any]) -> list[str]:
    signs = {annotated_types.Gt: (">", "gt"), annotated_types.Ge: ("≥", "ge"), annotated_types.Lt: ("<", "lt"),
             annotated_types.Le: ("≤", "le")}
    words = []
    for item in metadata:
        for kind, (sign, attribute) in signs.items():
            if isinstance(item, kind):
                words.append(f"{sign} {getattr(item, attribute)}")
    return [" and ".join(words)] if words else []
