"""Presets: ready values laid under the user's keys, epochs and patience by the table's size."""
from __future__ import annotations

import logging

import pytest

from polymodal.config import load_config
from polymodal.config.presets import apply_presets, epochs_for_rows
from polymodal.errors import ConfigError


def test_a_preset_fills_what_the_user_left_out_and_says_so(caplog):
    with caplog.at_level(logging.INFO, logger="polymodal"):
        config = load_config({"presets": "fast", "training": {"learning_rate": 0.05}}, rows=500)
    assert config.training.learning_rate == 0.05  # the user's key wins
    assert config.training.batch_size == 64 and (config.training.max_epochs, config.training.patience) == (15, 4)
    assert config.presets == "fast"
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("presets:"))
    assert "training.max_epochs 15" in line and "500 training rows" in line and "learning_rate" not in line


def test_small_tables_get_more_epochs_and_patience_than_large_ones():
    for name in ("fast", "balanced", "best"):
        sizes = [epochs_for_rows(name, rows) for rows in (500, 10_000, 100_000, 2_000_000)]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    assert epochs_for_rows("best", 500)[0] > epochs_for_rows("balanced", 500)[0] > epochs_for_rows("fast", 500)[0]


def test_a_saved_config_read_again_is_unchanged():
    config = load_config({"presets": "best", "head": {"hidden": 32}}, rows=100)
    again = load_config(config.model_dump(mode="json"), rows=5_000_000)
    assert again.model_dump() == config.model_dump()  # every key is explicit once resolved
    assert config.head.hidden == 32 and config.head.dropout == 0.2 and config.training.modality_dropout == 0.1


def test_no_preset_and_a_bad_one():
    merged, chosen = apply_presets({"training": {"max_epochs": 3}})
    assert merged == {"training": {"max_epochs": 3}} and chosen == {}
    with pytest.raises(ConfigError, match="presets: Input should be 'fast', 'balanced' or 'best'"):
        load_config({"presets": "fastest"})
