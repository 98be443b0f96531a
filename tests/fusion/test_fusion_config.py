"""Fusion choices in the config: options checked up front, impossible set-ups refused before training."""
import pytest

from synthetic import FAST
from polymodal import Predictor
from polymodal.config import load_config
from polymodal.errors import ConfigError


@pytest.mark.parametrize("name", ["weighted", "gated", "attention", "cross_attention", "tensor", "low_rank", "late"])
def test_every_fusion_loads_by_name(name):
    assert load_config({"fusion": {"name": name}}).fusion["name"] == name


def test_an_option_of_another_fusion_is_refused():
    with pytest.raises(ConfigError, match=r"fusion: rank: not an option of fusion 'tensor'; its options are dropout, hidden, max_mib, proj_dim"):
        load_config({"fusion": {"name": "tensor", "rank": 4}})  # rank belongs to low_rank


def test_heads_that_do_not_divide_the_width_are_refused_at_load():
    with pytest.raises(ConfigError, match=r"d_model \(100\) must be divisible by num_heads \(3\)"):
        load_config({"fusion": {"name": "attention", "d_model": 100, "num_heads": 3}})


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_config({"fusion": {"name": "gated", "hidden": 0, "colour": "red"}})
    assert "hidden: Input should be greater than or equal to 1" in str(info.value)
    assert "colour: not an option of fusion 'gated'" in str(info.value)


def test_a_fusion_of_two_inputs_given_one_is_refused_before_loading_data(tmp_path):
    # One image column and a label: cross-attention has nothing to attend to. The image
    # files do not even exist: the check runs before any file is read.
    import pandas as pd

    pd.DataFrame({"photo": [f"img/{i}.png" for i in range(20)], "label": ["a", "b"] * 10}).to_csv(
        tmp_path / "train.csv", index=False)
    config = {**FAST, "columns": {"photo": "image"}, "fusion": {"name": "cross_attention"}}
    with pytest.raises(ConfigError, match=r"fusion 'cross_attention' combines at least 2 inputs, got 1 \(photo\)"):
        Predictor(label="label", config=config, verbose=False).fit(tmp_path / "train.csv")
