"""The search space of ``polymodal tune``: config keys and the values each may take, from YAML.

::

    fusion.name: [concat, gated, low_rank]       # categorical: one of these values
    training.learning_rate: {log: [1e-4, 1e-2]}  # a number drawn on a log scale
    training.batch_size: {int: [16, 128]}        # an integer in [a, b]
    fusion.dropout: {float: [0.0, 0.5]}          # a number in [a, b]

Keys are dotted config paths (nested mappings are read the same way: ``training:
{learning_rate: {log: [...]}}``). ``parse_space`` checks every key and value against the base
config before any trial: each categorical value and both bounds of a range are put into the
base config and validated as ``load_config`` does, and every problem is reported in one
``ConfigError`` naming the key and what it allows.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from polymodal.config import Config, load_config
from polymodal.config.load import read_config_file
from polymodal.errors import ConfigError
from polymodal.tune.allowed import allowed_at, model_field_at

__all__ = ["Dimension", "SearchSpace", "parse_space", "read_space", "with_values", "value_at"]

RANGES = ("log", "int", "float")
# Keys a search cannot vary: they change the task or the rows each trial is scored on.
_FIXED = {"label": "every trial predicts the same label", "problem_type": "every trial solves the same task",
          "columns": "every trial reads the same columns",
          "presets": "a preset applies to the base config (presets: in --config, or --presets)",
          "training.tuning_fraction": "every trial is scored on the same tuning rows"}
_MISSING = object()


@dataclass(frozen=True)
class Dimension:
    """One searched key: ``kind`` is ``categorical`` (``choices``) or a range (``log``, ``int``,
    ``float``: ``low`` to ``high``, both included)."""

    key: str
    kind: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0

    @property
    def labels(self) -> tuple[Any, ...]:
        """The categorical values as Optuna stores them: the values, or JSON text for lists and mappings."""
        if all(c is None or isinstance(c, (bool, int, float, str)) for c in self.choices):
            return self.choices
        return tuple(json.dumps(c, sort_keys=True) for c in self.choices)

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna ``trial`` draws for this key."""
        if self.kind == "categorical":
            label = trial.suggest_categorical(self.key, list(self.labels))
            return self.choices[list(self.labels).index(label)]
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")

    def label_of(self, value: Any) -> Any:
        """``value`` as this dimension's Optuna parameter, or ``None`` when it lies outside the space."""
        if self.kind == "categorical":
            return self.labels[self.choices.index(value)] if value in self.choices else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return None
        return int(value) if self.kind == "int" else float(value)

    def to_dict(self) -> dict[str, Any]:
        return {"choices": list(self.choices)} if self.kind == "categorical" else {self.kind: [self.low, self.high]}


@dataclass(frozen=True)
class SearchSpace:
    """The searched keys, in the order they were written."""

    dimensions: tuple[Dimension, ...]

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.dimensions]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """``{key: value}`` drawn by an Optuna ``trial``."""
        return {d.key: d.suggest(trial) for d in self.dimensions}

    def base_params(self, base: Config) -> dict[str, Any]:
        """The base config's own values as Optuna parameters (the keys whose value lies in the space)."""
        dump = base.model_dump(mode="json")
        params = {d.key: d.label_of(value_at(dump, d.key)) for d in self.dimensions}
        return {k: v for k, v in params.items() if v is not None}

    def config_for(self, base: Config, values: Mapping[str, Any]) -> Config:
        """The base config with ``values`` set, validated as ``load_config`` does."""
        return load_config(with_values(base.model_dump(mode="json"), values))

    def to_dict(self) -> dict[str, Any]:
        return {d.key: d.to_dict() for d in self.dimensions}


def read_space(path: str | Path) -> dict[str, Any]:
    """The raw search space in the YAML file ``path``.

    Raises:
        ConfigError: the file is missing, not YAML, or not a mapping.
    """
    return read_config_file(path)


def parse_space(raw: Mapping[str, Any], base: Config) -> SearchSpace:
    """Check a raw search space against ``base`` and build it.

    Raises:
        ConfigError: every problem at once, each naming its key and what the key allows.
    """
    problems: list[str] = []
    dimensions = []
    flat = _flatten(raw)
    if not flat:
        problems.append("it names no key; write e.g. 'training.learning_rate: {log: [1e-4, 1e-2]}'")
    dump = base.model_dump(mode="json")
    for key, spec in flat.items():
        if key in _FIXED:
            problems.append(f"{key}: cannot be searched ({_FIXED[key]})")
            continue
        dim, shape_problem = _dimension(key, spec)
        if dim is None:
            problems.append(f"{key}: {shape_problem}")
            continue
        found = _key_problem(dump, key)
        if found:
            problems.append(found)
            continue
        values = dim.choices if dim.kind == "categorical" else (dim.low, dim.high)
        bad = [f"{v!r} ({why})" for v in values for why in [_value_problem(dump, key, v)] if why]
        if bad:
            what = "value" if dim.kind == "categorical" else "bound"
            problems.append(f"{key}: {what}{'s' if len(bad) > 1 else ''} {', '.join(bad)} not allowed; "
                            f"allowed: {allowed_at(dump, key)}")
            continue
        dimensions.append(dim)
    if problems:
        raise ConfigError("the search space has " + (f"{len(problems)} problems:\n  - " if len(problems) > 1
                                                     else "a problem: ") + "\n  - ".join(problems))
    return SearchSpace(tuple(dimensions))


def with_values(dump: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the config mapping ``dump`` with each dotted key of ``values`` set (mappings on the
    way created)."""
    out = json.loads(json.dumps(dump))
    for key, value in values.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    return out


def value_at(dump: Mapping[str, Any], key: str) -> Any:
    """The value at the dotted ``key`` of the config mapping ``dump`` (``None`` when absent)."""
    node: Any = dump
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys → specs; a mapping that is not a range spec is a level of keys."""
    flat: dict[str, Any] = {}
    for key, spec in raw.items():
        path = f"{prefix}{key}"
        if isinstance(spec, Mapping) and not (len(spec) == 1 and next(iter(spec)) in RANGES) and spec:
            flat.update(_flatten(spec, path + "."))
        else:
            flat[path] = spec
    return flat


def _dimension(key: str, spec: Any) -> tuple[Dimension | None, str]:
    """The dimension ``spec`` describes, or None and what is wrong with its shape."""
    if isinstance(spec, list):
        if not spec:
            return None, "an empty list of values; list the values to try"
        if len({json.dumps(c, sort_keys=True) for c in spec}) < len(spec):
            return None, f"a value is listed twice in {spec}; list each once"
        return Dimension(key, "categorical", choices=tuple(spec)), ""
    if not isinstance(spec, Mapping):
        return None, (f"expected a list of values or one of {{log: [a, b]}}, {{int: [a, b]}}, {{float: [a, b]}}, "
                      f"got {spec!r}")
    kind, bounds = next(iter(spec.items()))
    if isinstance(bounds, list):  # YAML 1.1 reads 1e-4 (no dot) as text
        bounds = [_number(b) for b in bounds]
    if not (isinstance(bounds, list) and len(bounds) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
        return None, f"{{{kind}: ...}} needs two numbers [low, high], got {bounds!r}"
    low, high = bounds
    if not all(math.isfinite(b) for b in bounds) or not low < high:
        return None, f"{{{kind}: [{low}, {high}]}}: the low bound must be below the high one"
    if kind == "log" and low <= 0:
        return None, f"{{log: [{low}, {high}]}}: a log range needs a low bound above 0"
    if kind == "int" and not all(float(b).is_integer() for b in bounds):
        return None, f"{{int: [{low}, {high}]}}: an integer range needs integer bounds"
    return Dimension(key, kind, low=low, high=high), ""


def _number(value: Any) -> Any:
    """``value``, or the number its text spells (``'1e-4'``)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _key_problem(dump: Mapping[str, Any], key: str) -> str:
    """Why ``key`` names no config key ('' when it does or may: component options are checked by value)."""
    parts = key.split(".")
    node: Any = dump
    for depth, part in enumerate(parts):
        model = model_field_at(parts[:depth])
        here = ".".join(parts[:depth]) or "the config"
        if model is not None and part not in model:
            return f"{key}: not a config key; {here} takes {', '.join(model)}"
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif model is None and isinstance(node, Mapping):
            return ""  # a component's options (fusion, encoder, preprocess): validated with each value
        elif not isinstance(node, Mapping) and depth > 0:
            return f"{key}: {'.'.join(parts[:depth])} is a value ({node!r}), not a section of keys"
        else:
            node = None
    return ""


def _value_problem(dump: Mapping[str, Any], key: str, value: Any) -> str:
    """Why the base config with ``key`` set to ``value`` does not validate ('' when it does)."""
    try:
        load_config(with_values(dump, {key: value}))
    except ConfigError as exc:
        lines = [line.strip().removeprefix("- ") for line in str(exc).splitlines()]
        lines = [line.removeprefix("config: ") for line in lines if line and not line.startswith("config has")]
        return "; ".join(lines)
    return ""
