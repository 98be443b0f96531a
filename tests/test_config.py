from pathlib import Path

import pytest

from polymodal.config import Config, load_config
from polymodal.errors import ConfigError

CONFIGS = sorted(Path(__file__).parents[1].glob("examples/**/*.yaml")) + sorted(
    (Path(__file__).parents[1] / "src" / "polymodal" / "configs").glob("*.yaml")
)


def test_defaults_are_valid():
    config = load_config(None)
    assert config.training.max_epochs >= 1
    assert config.fusion["name"] == "concat"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    assert isinstance(load_config(path), Config)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_config({
            "trainig": {},
            "training": {"max_epochs": 0},
            "image": {"encoder": {"name": "cnn", "chanels": [8]}},
            "audio": {"encoder": {"name": "resnet9000"}},
            "fusion": {"name": "concat", "hiden": 3},
            "columns": {"x": "picture"},
        })
    message = str(info.value)
    assert "6 problems" in message
    for needle in ("trainig", "max_epochs", "chanels", "resnet9000", "hiden", "picture"):
        assert needle in message


def test_unknown_encoder_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known: .*lstm"):
        load_config({"text": {"encoder": {"name": "nope"}}})


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        load_config({"seed": "abc"})


def test_column_override_merges_on_modality_defaults():
    config = load_config({"image": {"preprocess": {"size": 32}},
                          "column_overrides": {"photo": {"preprocess": {"grayscale": True}}}})
    merged = config.for_column("photo", "image")
    assert merged.preprocess == {"size": 32, "grayscale": True}
