"""Everything a search is checked against before its first trial: the tables, the base config
(its preset applied for the training table's size), the search space and the tuning metric.

Without a tuning table the tuning rows are split off once, here, so that every trial (whatever
its seed) is trained on the same rows and scored on the same others.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from polymodal.config import Config, load_config
from polymodal.config.load import read_config_file
from polymodal.data.tables import Table
from polymodal.errors import ConfigError
from polymodal.fitted import as_table
from polymodal.pipeline import training_tables
from polymodal.tasks import Task, get_task, schema_of
from polymodal.tasks.base import MAXIMISED
from polymodal.training.resume import data_digest
from polymodal.tune.space import SearchSpace, parse_space

__all__ = ["Search", "prepare_search"]


@dataclass
class Search:
    """A checked search: ``base`` (trial 0, as is), ``space``, the tables and the tuning metric."""

    base: Config
    space: SearchSpace
    train: Table
    tuning: Table
    task: Task
    metric: str  # a key of the fitted model's reports["tuning"]["metrics"]
    direction: str  # maximize | minimize
    data_root: str | Path | None = None

    def signature(self) -> dict[str, Any]:
        """What a resumed search must share with the one it continues."""
        return {"config": self.base.model_dump(mode="json"), "space": self.space.to_dict(),
                "metric": self.metric, "direction": self.direction,
                "train": {"rows": len(self.train.frame), "digest": data_digest(self.train.frame)},
                "tuning": {"rows": len(self.tuning.frame), "digest": data_digest(self.tuning.frame)}}


def prepare_search(config: "str | Path | Mapping[str, Any] | None", space: "str | Path | Mapping[str, Any]",
                   train: Any, tuning: Any = None, label: str | None = None, presets: str | None = None,
                   data_root: str | Path | None = None, say: Callable[[str], None] = print) -> Search:
    """Read the tables and check the base config and the search space against them.

    Args:
        config: the base config (a YAML file, a mapping, or None for the defaults).
        space: the search space (a YAML file or a mapping; see ``tune.space``).
        train, tuning: tables (paths, DataFrames or ``Table``s); without ``tuning`` a seeded
            ``training.tuning_fraction`` of the training rows is split off once.
        label, presets: override ``label:`` and ``presets:`` of the config.

    Raises:
        ConfigError: a bad config or search space (every problem of the space at once).
        DataError: unusable tables.
    """
    raw = dict(read_config_file(config) if isinstance(config, (str, Path)) else (config or {}))
    if label is not None:
        raw["label"] = label
    if presets is not None:
        raw["presets"] = presets
    # The config without its preset (which needs the training rows, known after the split) gives
    # the label, the task and the split: a preset sets none of them.
    plain = load_config({**raw, "presets": None})
    if not plain.label:
        raise ConfigError("no label column given; pass --label, or set label: in the config")
    train_table = as_table(train, data_root)
    schema = schema_of(train_table.frame, plain)
    task = get_task(schema.problem_type)
    train_table, tuning_table = training_tables(train_table, tuning, schema, task, plain, data_root, say,
                                                ", the same for every trial")
    base = load_config(raw, rows=len(train_table.frame))
    base = base.model_copy(update={"training": base.training.model_copy(update={"progress_bar": False})})
    metric, direction = _metric(task)
    parsed = parse_space(read_config_file(space) if isinstance(space, (str, Path)) else space, base)
    return Search(base, parsed, train_table, tuning_table, task, metric, direction, data_root)


def _metric(task: Task) -> tuple[str, str]:
    """The task's main tuning metric (its summary's first) and the study's direction."""
    if not task.summary:
        raise ConfigError(f"the {task.name!r} task reports no tuning metric to search on; "
                          "polymodal tune searches classification, regression and multilabel models")
    metric = task.summary[0]
    return metric, "maximize" if f"val_{metric}" in MAXIMISED else "minimize"
