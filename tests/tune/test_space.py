"""The search space: its YAML forms, and every bad key or value reported before any trial."""
from __future__ import annotations

import pytest

from polymodal.config import load_config
from polymodal.errors import ConfigError
from polymodal.tune.space import parse_space, with_values

BASE = load_config({"label": "digit", "fusion": {"name": "concat", "hidden": 64},
                    "training": {"learning_rate": 3e-3, "max_epochs": 2}})


def test_the_three_forms_flat_and_nested():
    space = parse_space({"fusion.name": ["concat", "gated", "low_rank"],
                         "training": {"learning_rate": {"log": ["1e-4", 1e-2]}, "batch_size": {"int": [8, 64]}},
                         "fusion.dropout": {"float": [0.0, 0.5]}}, BASE)
    kinds = {d.key: d.kind for d in space.dimensions}
    assert kinds == {"fusion.name": "categorical", "training.learning_rate": "log",
                     "training.batch_size": "int", "fusion.dropout": "float"}
    assert space.dimensions[1].low == 1e-4  # YAML 1.1 reads 1e-4 as text; it is a number here
    # The base config's own values, where they lie in the space, become trial 0's parameters.
    assert space.base_params(BASE) == {"fusion.name": "concat", "training.learning_rate": 3e-3,
                                       "training.batch_size": 32}
    config = space.config_for(BASE, {"fusion.name": "gated", "training.batch_size": 16})
    assert config.fusion == {"name": "gated", "hidden": 64} and config.training.batch_size == 16
    assert config.training.learning_rate == 3e-3  # the rest stays the base's


def test_list_values_are_categorical_choices_too():
    space = parse_space({"image.encoder.channels": [[8, 16], [16, 32]]}, BASE)
    (dim,) = space.dimensions
    assert dim.labels == ("[8, 16]", "[16, 32]")  # what Optuna stores
    assert space.config_for(BASE, {"image.encoder.channels": [16, 32]}).section("image").encoder == \
        {"channels": [16, 32]}


@pytest.mark.parametrize("raw, expected", [
    ({"training.learnin_rate": {"log": [1e-4, 1e-2]}},
     ["training.learnin_rate: not a config key", "training takes max_epochs, batch_size, learning_rate"]),
    ({"trainin.max_epochs": [1, 2]}, ["trainin.max_epochs: not a config key", "the config takes label"]),
    ({"fusion.name": ["concat", "nope"]}, ["fusion.name: value 'nope'", "unknown fusion 'nope'",
                                           "allowed: one of attention, concat"]),
    ({"training.learning_rate": {"float": [0.0, 0.1]}}, ["bound 0.0", "allowed: a number > 0.0"]),
    ({"training.scheduler": ["cosine", "step"]}, ["value 'step'", "allowed: one of cosine, linear, constant"]),
    ({"fusion.rank": {"int": [2, 8]}}, ["not an option of fusion 'concat'"]),
    ({"training.batch_size": {"int": [0, 64]}}, ["bound 0 ", "allowed: an integer ≥ 1"]),
    ({"training.learning_rate": {"log": [0, 0.1]}}, ["a log range needs a low bound above 0"]),
    ({"training.learning_rate": {"log": [0.1, 0.01]}}, ["the low bound must be below the high one"]),
    ({"training.batch_size": {"int": [8.5, 64]}}, ["an integer range needs integer bounds"]),
    ({"training.batch_size": {"int": [8]}}, ["needs two numbers [low, high]"]),
    ({"training.batch_size": 32}, ["expected a list of values or one of {log: [a, b]}"]),
    ({"training.batch_size": []}, ["an empty list of values"]),
    ({"training.batch_size": [16, 16]}, ["a value is listed twice"]),
    ({"training.max_epochs.x": [1]}, ["training.max_epochs is a value (2), not a section"]),
    ({"label": ["a", "b"]}, ["label: cannot be searched"]),
    ({"training.tuning_fraction": [0.1, 0.2]}, ["every trial is scored on the same tuning rows"]),
    ({}, ["it names no key"]),
])
def test_bad_spaces_name_the_key_and_what_it_allows(raw, expected):
    with pytest.raises(ConfigError) as err:
        parse_space(raw, BASE)
    for part in expected:
        assert part in str(err.value), str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_space({"training.epochz": [1, 2], "fusion.name": ["nope"], "head.dropout": {"float": [0.0, 1.5]}}, BASE)
    message = str(err.value)
    assert message.startswith("the search space has 3 problems")
    assert "training.epochz" in message and "'nope'" in message and "head.dropout: bound 1.5" in message


def test_with_values_sets_dotted_keys_on_a_copy():
    dump = {"training": {"max_epochs": 2}}
    assert with_values(dump, {"training.max_epochs": 5, "fusion.hidden": 8}) == \
        {"training": {"max_epochs": 5}, "fusion": {"hidden": 8}}
    assert dump == {"training": {"max_epochs": 2}}
