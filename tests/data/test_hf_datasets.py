"""A Hugging Face ``datasets.Dataset`` is a table: its Image and Audio features are read as
images and audio (the file's bytes), a ClassLabel as its class names."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from polymodal import Predictor
from polymodal.data.tables import read_table
from polymodal.datasets.av_digits import build_av_digits
from polymodal.errors import DataError

datasets = pytest.importorskip("datasets")

CONFIG = {"seed": 0, "image": {"preprocess": {"size": 16, "grayscale": True}, "encoder": {"name": "cnn", "channels": [8]}},
          "audio": {"preprocess": {"sample_rate": 8000, "max_seconds": 1.0, "n_mels": 20},
                    "encoder": {"name": "cnn", "channels": [8, 16]}},
          "training": {"max_epochs": 2, "batch_size": 32, "progress_bar": False, "precision": "32", "threads": 1}}


@pytest.fixture(scope="module")
def pairs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    tables = build_av_digits(data_dir, tmp_path_factory.mktemp("av"))
    frame = pd.read_csv(tables["train"]).groupby("label").head(12).reset_index(drop=True)
    base = tables["train"].parent
    data = datasets.Dataset.from_dict({
        "image": [{"bytes": (base / p).read_bytes(), "path": None} for p in frame["image"]],
        "audio": [{"bytes": (base / p).read_bytes(), "path": None} for p in frame["audio"]],
        "speaker": frame["speaker"].tolist(), "digit": frame["label"].tolist()})
    # as a dataset from the hub stores them (encoding audio here would need torchcodec)
    data = data.cast_column("image", datasets.Image()).cast_column("audio", datasets.Audio())
    data = data.cast_column("digit", datasets.ClassLabel(names=[f"d{i}" for i in range(10)]))
    return data, frame


def test_a_dataset_reads_as_a_table_of_images_audio_and_class_names(pairs):
    data, frame = pairs
    table = read_table(data)
    assert list(table.frame.columns) == ["image", "audio", "speaker", "digit"] and len(table.frame) == len(frame)
    assert set(table.frame["digit"]) == {f"d{i}" for i in range(10)}
    assert isinstance(table.frame["image"].iloc[0]["bytes"], bytes)


def test_fit_and_predict_on_a_dataset(pairs, tmp_path):
    data, frame = pairs
    predictor = Predictor(label="digit", config={**CONFIG, "columns": {"speaker": "ignore"}}, verbose=False).fit(data)
    roles = predictor.fitted_.schema.roles
    assert roles["image"] == "image" and roles["audio"] == "audio"
    predictor.save(tmp_path / "m")
    predicted = Predictor.load(tmp_path / "m").predict(data.remove_columns("digit"))
    assert len(predicted) == len(frame) and set(predicted) <= {f"d{i}" for i in range(10)}


def test_a_dataset_dict_asks_for_a_split(pairs):
    data, _ = pairs
    with pytest.raises(DataError, match=r"splits train, test: pass one of them, e.g. data\['train'\]"):
        read_table(datasets.DatasetDict({"train": data, "test": data}))


def test_cells_of_file_bytes_in_a_dataframe_are_images_and_audio(pairs):
    from polymodal.data.schema import infer_roles

    _, frame = pairs
    table = read_table(pairs[0])
    raw = pd.DataFrame({"picture": [c["bytes"] for c in table.frame["image"]],
                        "sound": [c["bytes"] for c in table.frame["audio"]],
                        "blob": [b"\x00\x01 not a file"] * len(frame), "digit": table.frame["digit"]})
    roles, reasons = infer_roles(raw, "digit")
    assert roles["picture"] == "image" and roles["sound"] == "audio" and roles["blob"] == "ignore"
    assert "file contents" in reasons["picture"] and "not supported" in reasons["blob"]


def test_in_memory_images_and_decoded_sounds_are_inputs(pairs, tmp_path):
    import io

    import numpy as np
    import soundfile as sf
    from PIL import Image

    from polymodal.data.schema import infer_roles

    _, frame = pairs
    table = read_table(pairs[0])
    pictures = [Image.open(io.BytesIO(c["bytes"])) for c in table.frame["image"]]
    sounds = []
    for c in table.frame["audio"]:
        array, rate = sf.read(io.BytesIO(c["bytes"]), dtype="float32")
        sounds.append({"array": array, "sampling_rate": rate, "path": None})  # datasets' decoded Audio
    raw = pd.DataFrame({"pil": pictures, "array": [np.asarray(p) for p in pictures], "sound": sounds,
                        "floats": [np.zeros((4, 4), np.float32)] * len(frame), "digit": table.frame["digit"]})
    roles, _ = infer_roles(raw, "digit")
    assert roles == {"pil": "image", "array": "image", "sound": "audio", "floats": "ignore"}
    config = {**CONFIG, "columns": {"pil": "image", "array": "image", "sound": "audio", "floats": "ignore"}}
    predictor = Predictor(label="digit", config=config, verbose=False).fit(raw)
    assert len(predictor.predict(raw)) == len(frame)
    pre = predictor.fitted_.preprocessors
    from_pil = pre["pil"].load({"pil": pictures[0]}, tmp_path)
    from_array = pre["array"].load({"array": np.asarray(pictures[0])}, tmp_path)
    assert from_pil.shape == (1, 16, 16) and (from_pil == from_array).all()  # the same pixels either way
    wav = pre["sound"].load({"sound": sounds[0]}, tmp_path)
    real = pre["sound"].load({"sound": table.frame["audio"].iloc[0]}, tmp_path)
    assert wav.shape == real.shape and float((wav - real).abs().max()) < 1e-3  # decoded = the file's samples


def test_an_array_that_is_no_image_is_a_bad_input(pairs, tmp_path):
    import numpy as np

    from polymodal.modalities.image.preprocess import ImagePreprocessor
    from polymodal.preprocessing import BadInput

    table = read_table(pairs[0])
    pre = ImagePreprocessor("x", ["x"], size=16).fit(pd.DataFrame({"x": table.frame["image"]}), tmp_path)
    for cell in (np.zeros((8, 8), np.float32), np.zeros((2, 8, 8, 3), np.uint8)):
        with pytest.raises(BadInput, match=r"is not an image \(uint8 \[H, W\] or \[H, W, 1\|3\|4\]\)"):
            pre.load({"x": cell}, tmp_path)


def test_a_streaming_dataset_is_refused_with_what_to_pass_instead(pairs):
    data, _ = pairs
    with pytest.raises(DataError, match="IterableDataset cannot be read as a table: pass a datasets.Dataset"):
        read_table(data.to_iterable_dataset())
