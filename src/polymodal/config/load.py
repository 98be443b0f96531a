"""Reading a config: a dict, a YAML file or nothing, into a validated ``Config``.

YAML files are read as UTF-8 with a loader that refuses a key given twice; structure problems
and every modality section's component-option problems are reported together in one
``ConfigError``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from polymodal.config.models import Config, ModalityConfig
from polymodal.config.presets import apply_presets
from polymodal.errors import ConfigError
from polymodal.validate import raise_problems, section_problems

__all__ = ["load_config", "read_config_file"]

log = logging.getLogger("polymodal")


def load_config(source: "Config | Mapping[str, Any] | str | Path | None", rows: int | None = None) -> Config:
    """Build a validated ``Config`` from a dict, a YAML file path, or nothing (defaults).

    Args:
        rows: the training table's rows, when known: a ``presets:`` preset chooses
            ``training.max_epochs`` and ``training.patience`` for it (``config.presets``).

    Raises:
        ConfigError: listing every problem found, each with its key path.
    """
    if source is None:
        return Config()
    if isinstance(source, Config):
        return source
    where = "config"
    if isinstance(source, (str, Path)):
        where = str(source)
        source = read_config_file(source)
    source, chosen = apply_presets(source, rows) if isinstance(source, Mapping) else (source, {})
    if chosen:  # the user's own keys were kept; say what the preset filled in
        size = "a table of unknown size" if rows is None else f"{rows:,} training rows"
        log.info(f"presets: {source['presets']} chose " + ", ".join(f"{k} {v}" for k, v in chosen.items())
                 + f" (for {size}; keys you set win)")
    # Structure first, then every modality section's component options, reported together;
    # column_overrides are checked once the table's schema is known (polymodal.validate).
    problems, config = [], None
    try:
        config = Config(**source)
    except ValidationError as exc:
        problems = [_format_error(e) for e in exc.errors()]
    problems += _section_problems(Config._gather_sections(source)["sections"])
    if problems:
        raise_problems(problems, where)
    return config


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in the YAML config file ``path``, unvalidated (``load_config`` validates it).

    Raises:
        ConfigError: the file is missing, not UTF-8, not YAML, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found; pass the path of a YAML file")
    source = _read_yaml(path)
    if not isinstance(source, dict):
        raise ConfigError(f"{path} must hold a mapping of keys, got {type(source).__name__}")
    return source


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (lines {seen[key] + 1} and "
                    f"{key_node.start_mark.line + 1}); keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a ``ConfigError`` naming the file for what cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}, line {line}); save the config "
                          "as UTF-8, or pass the right file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None


def _section_problems(sections: Mapping[str, Any]) -> list[str]:
    """Component-option problems of the modality sections that are well-formed."""
    problems = []
    for name, raw in sorted(sections.items()):
        try:
            section = raw if isinstance(raw, ModalityConfig) else ModalityConfig(**raw)
        except (ValidationError, TypeError):  # reported with the structure
            continue
        problems += [f"{name}.{p}" for p in section_problems(name, section)]
    return problems


def _format_error(error: Mapping[str, Any]) -> str:
    parts = list(error["loc"])
    if parts[:1] == ["sections"]:  # a modality section is written at the top level
        parts = parts[1:]
    loc = ".".join(str(p) for p in parts)
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see the documented options)"
    return f"{loc}: {msg}" if loc else msg
