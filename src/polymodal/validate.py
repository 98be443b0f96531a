"""One validation pass over a config and a table's schema, before anything is built.

``section_problems`` checks one modality section's component options against the classes its
names resolve to (``load_config`` runs it for every section). ``validate`` runs, once the
schema is known, every check that needs it (column overrides, the inputs the fusion gets, the
task's own checks) and raises one ``ConfigError`` listing every problem found, so a user fixes
them all in one go.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from polymodal.encoders.base import ENCODERS, encoder_names
from polymodal.errors import ConfigError
from polymodal.modalities.base import get_modality, modality_names, modality_of_role
from polymodal.options import option_problems

__all__ = ["section_problems", "column_override_problems", "validate", "raise_problems"]


def section_problems(modality: str, section: Any) -> list[str]:
    """Problems with one modality section's ``preprocess`` and ``encoder`` options.

    Args:
        section: a ``ModalityConfig`` (``preprocess``, ``encoder``, ``backbone``).
    """
    if modality not in modality_names():
        return [f"unknown key (check the spelling; modality sections are {', '.join(modality_names())})"]
    plugin = get_modality(modality)
    if section.backbone is not None:
        return _backbone_problems(plugin, section)
    problems = option_problems(plugin.preprocessor.Options, section.preprocess, "preprocess")
    options = dict(section.encoder)
    name = options.pop("name", plugin.default_encoder)
    if (modality, name) not in ENCODERS:
        problems.append(f"encoder.name: unknown {modality} encoder {name!r}; known: "
                        f"{', '.join(encoder_names(modality))}")
    else:
        problems += option_problems(ENCODERS[(modality, name)].Options, options, "encoder")
    return problems


def _backbone_problems(plugin: Any, section: Any) -> list[str]:
    """A section that sets ``backbone:`` (no file or network access)."""
    cls = plugin.backbone_preprocessor
    if cls is None:
        with_backbones = [n for n in modality_names() if get_modality(n).backbone_preprocessor is not None]
        return [f"backbone: {plugin.name} columns have no pretrained backbones; remove backbone: "
                f"(backbones exist for {', '.join(with_backbones)})"]
    problems = [f"{p} (with a backbone, preprocess takes {', '.join(cls.Options.model_fields)})"
                for p in option_problems(cls.Options, section.preprocess, "preprocess")]
    if section.encoder:
        problems.append("encoder: options do not apply with a backbone (the backbone is the encoder); "
                        "set tuning: options instead, or remove backbone: to use encoder:")
    return problems


def column_override_problems(config: Any, roles: dict[str, str]) -> list[str]:
    """Every ``column_overrides`` entry must name a one-column input and hold valid options."""
    problems = []
    for column, _ in config.column_overrides.items():
        plugin = modality_of_role(roles.get(column, "ignore"))
        if plugin is None or not plugin.one_column:
            what = "is not in the table" if column not in roles else f"has role {roles[column]!r}"
            one_column = [n for n in modality_names() if get_modality(n).one_column]
            problems.append(f"column_overrides.{column}: column {what}; overrides apply to "
                            f"{', '.join(one_column)} columns")
            continue
        merged = config.for_column(column, plugin.name)
        problems += [f"column_overrides.{column}.{p}" for p in section_problems(plugin.name, merged)]
    return problems


def validate(config: Any, schema: Any, checks: Iterable[Callable[[], list[str]]] = ()) -> None:
    """Run every schema-dependent check; raise one ``ConfigError`` listing all problems.

    Args:
        config: the loaded ``Config`` (its own options were checked by ``load_config``).
        schema: the table's ``Schema``.
        checks: further checks, each returning its problems (the task's, the fusion's inputs).
    """
    problems = column_override_problems(config, schema.roles)
    for check in checks:
        problems += check()
    raise_problems(problems, "config")


def raise_problems(problems: list[str], where: str) -> None:
    """Raise one ``ConfigError`` for ``problems`` (nothing when there are none): one problem
    reads as one line, ``<where>: <problem>``; several as a count and a list."""
    if len(problems) == 1:
        raise ConfigError(f"{where}: {problems[0]}")
    if problems:
        raise ConfigError(f"{where} has {len(problems)} problems:\n  - " + "\n  - ".join(problems))
