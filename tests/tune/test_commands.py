"""``--time-limit`` durations."""
from __future__ import annotations

import pytest

from polymodal.errors import ConfigError
from polymodal.tune.commands import parse_duration


@pytest.mark.parametrize("text, seconds", [("90", 90), ("45s", 45), ("30m", 1800), ("2h", 7200),
                                           ("1h30m", 5400), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "3x", "0", "-5m"])
def test_bad_durations(text):
    with pytest.raises(ConfigError, match="--time-limit"):
        parse_duration(text)
