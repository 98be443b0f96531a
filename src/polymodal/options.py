"""Options models to problems: the one place a component's options become messages.

Every component (preprocessor, encoder, fusion, backbone preprocessor) declares a nested
pydantic ``Options`` model that forbids unknown keys. ``option_problems`` lists what is wrong
with a dict of options, one ``<key>: <what>`` line each, naming the options the component does
take when a key is unknown; ``parse_options`` builds the model or raises one ``ConfigError``
listing every problem.
"""
from __future__ import annotations

from typing import Any, Mapping, TypeVar

from pydantic import BaseModel, ValidationError

from polymodal.errors import ConfigError

__all__ = ["option_problems", "parse_options"]

M = TypeVar("M", bound=BaseModel)


def option_problems(model: type[BaseModel], options: Mapping[str, Any], where: str = "") -> list[str]:
    """Every problem with ``options`` for ``model``, each as ``<where>.<key>: <what>``."""
    prefix = f"{where}." if where else ""
    try:
        model(**options)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(map(str, error["loc"]))
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown option; the options are {', '.join(sorted(model.model_fields)) or 'none'}"
            problems.append(f"{prefix}{key}: {message}" if key else f"{where}: {message}" if where else message)
        return problems
    return []


def parse_options(model: type[M], options: Mapping[str, Any], what: str) -> M:
    """``model(**options)``, or one ``ConfigError`` naming ``what`` and every problem.

    Args:
        what: the component, for the message (``"text input 'review'"``).
    """
    problems = option_problems(model, options)
    if problems:
        raise ConfigError(f"{what}: invalid options: {'; '.join(problems)}")
    return model(**options)
