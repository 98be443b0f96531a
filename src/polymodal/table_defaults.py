"""Defaults that follow the training table: settings a config leaves unset, chosen once the fit
knows how many training rows it has.

- ``presets:`` (``config/presets.py``): ``training.max_epochs`` and ``training.patience`` for
  the table's size, unless the config sets them.
- A small table's text: from-scratch text encoders need far more rows than a frozen pretrained
  sentence encoder (400 SST-2 rows: 52.4% from scratch, 75.2% with frozen MiniLM; bench/small_text.py). When the MiniLM package is installed, the config says nothing about text and the table
  has at most ``PRETRAINED_TEXT_ROWS`` training rows, the text columns use frozen MiniLM.

Each choice is said in the log with how to override it.
"""
from __future__ import annotations

from typing import Any, Callable

from polymodal.config import Config
from polymodal.config.models import ModalityConfig
from polymodal.config.presets import epochs_for_rows
from polymodal.data.schema import Schema
from polymodal.errors import ConfigError

__all__ = ["for_table", "PRETRAINED_TEXT_ROWS"]

PRETRAINED_TEXT_ROWS = 10_000


def for_table(config: Config, schema: Schema, rows: int, say: Callable[[str], None]) -> Config:
    """``config`` with the table-dependent defaults of the module docstring filled in."""
    config = _preset_epochs(config, rows, say)
    return _small_table_text(config, schema, rows, say)


def _preset_epochs(config: Config, rows: int, say: Callable[[str], None]) -> Config:
    if config.presets is None:
        return config
    unset = [k for k in ("max_epochs", "patience") if k not in config.training.model_fields_set]
    if not unset:
        return config
    epochs, patience = epochs_for_rows(config.presets, rows)
    chosen = {k: v for k, v in (("max_epochs", epochs), ("patience", patience)) if k in unset}
    say(f"presets: {config.presets} chose " + ", ".join(f"training.{k} {v}" for k, v in chosen.items())
        + f" for {rows:,} training rows (set them in training: to choose your own)")
    training = config.training.model_copy(update=chosen)
    training.__pydantic_fields_set__ |= set(chosen)  # explicit from now on (a saved config keeps them)
    return config.model_copy(update={"training": training})


def _said_nothing(section: ModalityConfig) -> bool:
    return not (section.preprocess or section.encoder or "backbone" in section.model_fields_set
                or section.tuning.model_fields_set)


def _small_table_text(config: Config, schema: Schema, rows: int, say: Callable[[str], None]) -> Config:
    text = schema.inputs("text")
    if not text or rows > PRETRAINED_TEXT_ROWS:
        return config
    if not _said_nothing(config.section("text")) or any(c in config.column_overrides for c in text):
        return config
    from polymodal.backbones.resolve import ALIASES

    try:
        ALIASES["minilm"]()
    except ConfigError:  # the package is not installed: the from-scratch encoder, as configured
        return config
    say(f"Text: {rows:,} training rows (at most {PRETRAINED_TEXT_ROWS:,}) and MiniLM is installed: "
        f"{', '.join(text)} use the pretrained MiniLM encoder, frozen (text: {{encoder: {{name: gru}}}} "
        "or text: {backbone: null} trains one from scratch)")
    sections = {**config.sections, "text": ModalityConfig(backbone="minilm")}
    return config.model_copy(update={"sections": sections})
