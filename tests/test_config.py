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


def test_a_misspelt_key_of_a_hugging_face_config_is_refused():
    # transformers would keep `hiden_size` silently and build a 768-wide BERT-base instead.
    with pytest.raises(ConfigError, match=r"config\.hiden_size: not an option of the bert configuration; "
                                          r"did you mean 'hidden_size'\?"):
        load_config({"text": {"encoder": {"name": "hf", "config": {"hiden_size": 8}}}})
    with pytest.raises(ConfigError, match="'bertt' is not a Hugging Face model type"):
        load_config({"text": {"encoder": {"name": "hf", "model_type": "bertt"}}})
    load_config({"text": {"encoder": {"name": "hf", "config": {"hidden_size": 8, "num_hidden_layers": 1}}}})


def test_an_unknown_problem_type_names_the_registered_tasks():
    from polymodal.tasks import task_names

    with pytest.raises(ConfigError, match="unknown problem_type 'regresion'; expected auto or one of "
                                          + ", ".join(task_names())):
        load_config({"problem_type": "regresion"})
    assert {"classification", "multilabel", "multioutput", "regression", "alignment"} <= set(task_names())


def _table_for_every_shipped_config(folder: Path) -> Path:
    """A small table with every column the shipped configs name: text, two images, audio."""
    import numpy as np
    import pandas as pd
    import soundfile as sf
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        label = i % 2
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"d{i}.png")
        wave = np.sin(np.arange(4000) * (0.05 + 0.05 * label)) * 0.3 + rng.normal(0, 0.01, 4000)
        sf.write(folder / f"a{i}.wav", wave.astype(np.float32), 8000)
        rows.append({"caption": f"item {'red' if label else 'blue'} number {i}", "photo": f"p{i}.png",
                     "image": f"d{i}.png", "audio": f"a{i}.wav", "speaker": f"s{i % 3}", "label": label})
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    return folder / "train.csv"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_builds_and_trains(path, tmp_path):
    """Each shipped config trains for an epoch on a table with the columns it names."""
    from polymodal import Predictor

    config = load_config(path).model_dump()
    config["training"].update(max_epochs=1, progress_bar=False, cache_dir=str(tmp_path / "cache"))
    label = None if config["problem_type"] == "alignment" else "label"
    predictor = Predictor(label=label, config=config, verbose=False).fit(_table_for_every_shipped_config(tmp_path))
    assert len(predictor.history_) == 1 and predictor.model_ is not None
