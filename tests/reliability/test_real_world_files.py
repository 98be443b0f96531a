"""Files as they come: odd formats, wrong extensions, hostile headers, messy cells.

Complements tests/modalities/test_image.py and test_audio.py (which cover the common modes and
codecs) with the cases a real folder of user files brings.
"""
from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image

from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.modalities.audio.preprocess import AudioPreprocessor
from polymodal.preprocessing import BadInput
from polymodal.modalities.image.preprocess import ImagePreprocessor
from polymodal.data.tables import read_table
from polymodal.errors import DataError

SIZE = 16
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rgb() -> ImagePreprocessor:
    pre = ImagePreprocessor("photo", ["photo"], size=SIZE, resize="stretch")
    pre.grayscale_, pre.mean_, pre.std_ = False, [0.5] * 3, [0.25] * 3
    return pre


@pytest.fixture(scope="module")
def voice() -> AudioPreprocessor:
    return AudioPreprocessor("voice", ["voice"], max_seconds=1.0, n_mels=32)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png16_rgb(width: int, height: int) -> bytes:
    """A real 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    rows = b"".join(b"\x00" + struct.pack(">" + "H" * 3 * width, *([40000, 1000, 65535] * width))
                    for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def _gif_bomb() -> bytes:
    """A GIF whose logical screen claims 65535 × 65535 pixels around a 1 × 1 image."""
    buffer = io.BytesIO()
    Image.new("P", (1, 1)).save(buffer, format="GIF")
    data = bytearray(buffer.getvalue())
    data[6:10] = struct.pack("<HH", 65535, 65535)  # the image descriptor stays 1 × 1
    return bytes(data)


def _tiff_bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    # Rewrite ImageWidth (256) and ImageLength (257) in the first IFD to 200,000.
    offset = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[offset:offset + 2])[0]):
        entry = offset + 2 + 12 * i
        tag, kind = struct.unpack("<HH", data[entry:entry + 4])
        if tag in (256, 257):
            data[entry + 2:entry + 4] = struct.pack("<H", 4)  # LONG
            data[entry + 8:entry + 12] = struct.pack("<I", 200_000)
    return bytes(data)


def test_images_with_odd_modes_and_wrong_extensions(tmp_path, rgb):
    grey = np.tile(np.arange(24, dtype=np.uint8) * 10, (20, 1))
    Image.fromarray(grey).save(tmp_path / "png_named.jpg", format="PNG")
    Image.fromarray(grey).convert("RGB").save(tmp_path / "jpeg_named.png", format="JPEG")
    Image.fromarray(grey).save(tmp_path / "no_extension", format="PNG")
    (tmp_path / "deep.png").write_bytes(_png16_rgb(12, 10))
    frames = [Image.new("P", (20, 20), c) for c in (1, 2)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    Image.new("RGB", (20, 20), (0, 90, 0)).save(tmp_path / "progressive.jpg", progressive=True, quality=80)
    Image.new("I;16", (20, 20), 30000).save(tmp_path / "grey16.tif")
    for name in ("png_named.jpg", "jpeg_named.png", "no_extension", "deep.png", "anim.gif",
                 "progressive.jpg", "grey16.tif"):
        item = rgb.load({"photo": name}, tmp_path)
        assert item.shape == (3, SIZE, SIZE) and item.dtype == torch.uint8, name
    deep = rgb.load({"photo": "deep.png"}, tmp_path)
    assert deep[2].float().mean() > 250 and deep[1].float().mean() < 10  # 16-bit channels scaled


@pytest.mark.parametrize(("name", "make"), [("bomb.gif", _gif_bomb), ("bomb.tif", _tiff_bomb)])
def test_bomb_headers_are_rejected_before_decoding(tmp_path, rgb, name, make):
    (tmp_path / name).write_bytes(make())
    start = time.perf_counter()
    with pytest.raises(BadInput, match="too large|cannot decode image"):
        rgb.load({"photo": name}, tmp_path)
    assert time.perf_counter() - start < 2.0  # nothing of billions of pixels was decoded


def test_other_files_in_an_image_column(tmp_path, rgb):
    sf.write(tmp_path / "sound.png", np.zeros(800, np.float32), 8000, format="WAV")
    (tmp_path / "one_byte.png").write_bytes(b"\x89")
    (tmp_path / "text.jpg").write_text("not an image")
    for name in ("sound.png", "one_byte.png", "text.jpg"):
        with pytest.raises(BadInput, match="cannot decode image"):
            rgb.load({"photo": name}, tmp_path)


def _tone(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 32000, 44100, 48000])
@pytest.mark.parametrize(("ext", "fmt", "subtype"), [
    (".ogg", "OGG", "VORBIS"), (".flac", "FLAC", "PCM_24"), (".wav", "WAV", "PCM_U8"),
    (".wav", "WAV", "PCM_24"), (".wav", "WAV", "FLOAT"),
])
def test_audio_codecs_and_rates(tmp_path, voice, rate, ext, fmt, subtype):
    samples = _tone(rate)
    stereo = np.stack([samples, samples * 0.5], axis=1) if subtype != "PCM_U8" else samples
    sf.write(tmp_path / f"a{ext}", stereo, rate, format=fmt, subtype=subtype)
    item = voice.load({"voice": f"a{ext}"}, tmp_path)
    assert item.shape[1] == 32 and 40 <= item.shape[0] <= voice.max_frames and torch.isfinite(item.float()).all()


def test_audio_with_the_wrong_extension_or_hostile_header(tmp_path, voice):
    sf.write(tmp_path / "flac_named.wav", _tone(16000), 16000, format="FLAC")
    assert voice.load({"voice": "flac_named.wav"}, tmp_path).shape[0] > 10
    buffer = io.BytesIO()
    sf.write(buffer, _tone(8000), 8000, format="WAV", subtype="PCM_16")
    wav = bytearray(buffer.getvalue())
    slow = wav.copy()
    slow[24:28] = struct.pack("<I", 1)  # 1 Hz: resampling to 16 kHz would multiply the length 16,000×
    (tmp_path / "one_hz.wav").write_bytes(bytes(slow))
    with pytest.raises(BadInput, match="implausible sample rate 1 Hz|cannot decode audio"):
        voice.load({"voice": "one_hz.wav"}, tmp_path)
    long = wav.copy()
    long[40:44] = struct.pack("<I", 0x7FFFFFF0)  # data chunk claims 2 GB
    (tmp_path / "long_claim.wav").write_bytes(bytes(long))
    start = time.perf_counter()
    item = voice.load({"voice": "long_claim.wav"}, tmp_path)  # reads what is there
    assert item.shape[0] > 10 and time.perf_counter() - start < 2.0
    no_channels = wav.copy()
    no_channels[22:24] = struct.pack("<H", 0)
    (tmp_path / "no_channels.wav").write_bytes(bytes(no_channels))
    with pytest.raises(BadInput):
        voice.load({"voice": "no_channels.wav"}, tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "picture.wav", format="PNG")
    with pytest.raises(BadInput, match="cannot decode audio"):
        voice.load({"voice": "picture.wav"}, tmp_path)


def test_messy_cells_train_and_predict(tmp_path):
    """NaN / inf / overflow / text among numbers, empty and odd text, unseen categories and labels."""
    frame = make_table(tmp_path, n=45)
    frame["size"] = frame["size"].astype(object)
    frame.loc[[1, 2, 3, 4], "size"] = [np.nan, np.inf, -np.inf, "1e400"]
    frame.loc[[5, 6, 7], "caption"] = [None, "   ", "\x00\x01 control \u202e chars"]
    frame["shop"] = frame["shop"].astype(object)
    frame.loc[8, "shop"] = 7  # an int among strings
    frame.to_csv(tmp_path / "train.csv", index=False)
    predictor = Predictor(label="label", config=FAST, verbose=False).fit(tmp_path / "train.csv")
    new = frame.drop(columns=["label"]).iloc[:4].copy()
    new["photo"] = [str(tmp_path / p) for p in new.photo]  # a DataFrame resolves paths from the cwd
    new["shop"] = ["west", None, 3.0, "north"]  # unseen categories are "unknown", not an error
    assert predictor.predict(new).notna().all()
    new["caption"] = new["caption"].astype(object)
    new.loc[1, "caption"] = "half an emoji \ud83d"  # a lone surrogate, as JSON can carry
    assert predictor.predict(new).notna().all()
    new.loc[0, "size"] = "twelve"
    with pytest.raises(DataError, match="'twelve' is not a number"):
        predictor.predict(new)
    report = predictor.predict_report(new, on_bad_input="skip_modality")
    assert report.predictions.notna().all() and report.skipped.input.tolist() == ["tabular"]
    labelled = frame.iloc[:6].copy()
    labelled["label"] = ["red", "never-seen", "blue", "green", "never-seen", "red"]
    labelled["photo"] = [str(tmp_path / p) for p in labelled.photo]
    assert predictor.evaluate(labelled)["n"] == 4  # unseen labels are left out, with a warning


def test_tables_that_are_not_utf8_or_have_repeated_columns(tmp_path):
    (tmp_path / "latin1.csv").write_bytes("caption,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match="save the file as UTF-8"):
        read_table(tmp_path / "latin1.csv")
    (tmp_path / "twice.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match="duplicate column names: 'a'"):
        read_table(tmp_path / "twice.csv")
    (tmp_path / "surrogate.jsonl").write_text('{"caption": "a\\ud800b", "label": "x"}\n')
    with pytest.raises(DataError, match="not valid Unicode"):
        read_table(tmp_path / "surrogate.jsonl")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_table(tmp_path / "empty.csv")
    surrogate = pd.DataFrame({"a": pd.Series(["x\ud800"], dtype=object), "b": [1]})
    assert read_table(surrogate).frame is surrogate  # object cells may hold any str
    Path(tmp_path / "ok.csv").write_text("caption,label\nhi,a\n")
    assert len(read_table(tmp_path / "ok.csv").frame) == 1


def test_paths_the_os_refuses_are_bad_inputs(tmp_path, rgb, voice):
    for value in ("a" * 5000, "x/" * 3000 + "y.png", "nul\x00byte.png"):
        with pytest.raises(BadInput, match="cannot open the file|file not found"):
            rgb.load({"photo": value}, tmp_path)
        with pytest.raises(BadInput, match="cannot open the file|file not found"):
            voice.load({"voice": value}, tmp_path)


def test_deeply_nested_json_is_a_data_error(tmp_path):
    for ext in (".json", ".jsonl"):
        (tmp_path / f"deep{ext}").write_text("[" * 100_000)
        with pytest.raises(DataError, match="nested too deeply|recursion"):
            read_table(tmp_path / f"deep{ext}")


def test_parquet_text_that_is_not_utf8_is_a_data_error(tmp_path):
    """Parquet marks a column as UTF-8 text without readers checking it (found by bench/fuzz.py)."""
    path = tmp_path / "t.parquet"
    pd.DataFrame({"caption": ["qqqqqqqq", "fine"], "label": ["a", "b"]}).to_parquet(path, compression=None)
    data = path.read_bytes()
    assert b"qqqqqqqq" in data
    path.write_bytes(data.replace(b"qqqqqqqq", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"))
    with pytest.raises(DataError, match="Invalid UTF8"):
        read_table(path)
