"""Property-based tests (hypothesis) of the readers and preprocessors.

Each reader and preprocessor, given anything at all, either returns a well-formed result
or raises the error the data layer expects (``BadInput`` for one cell, ``DataError`` for a
table); never another exception, never a malformed tensor.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from polymodal.modalities.audio.preprocess import AudioPreprocessor
from polymodal.preprocessing import BadInput
from polymodal.modalities.image.preprocess import ImagePreprocessor
from polymodal.data.paths import PathGuard
from polymodal.data.tables import read_table
from polymodal.modalities.tabular.preprocess import TabularPreprocessor
from polymodal.modalities.text.preprocess import TextPreprocessor
from polymodal.errors import DataError
from polymodal.training.checkpoint import read_checkpoint, write_checkpoint

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HERE = Path(".")
pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------ tables
cells = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
names = st.text(min_size=0, max_size=8)


@SETTINGS
@given(columns=st.lists(names, min_size=1, max_size=4),
       rows=st.lists(st.lists(cells, min_size=4, max_size=4), min_size=0, max_size=6),
       ext=st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".parquet"]))
def test_tables_of_mixed_cells_read_or_raise_data_error(tmp_path_factory, columns, rows, ext):
    folder = tmp_path_factory.mktemp("tab")
    records = [dict(zip(columns, row)) for row in rows]
    path = folder / f"t{ext}"
    frame = pd.DataFrame([row[: len(columns)] for row in rows], columns=columns, dtype=object) \
        if len(set(columns)) == len(columns) else None
    try:
        if ext in (".csv", ".tsv"):
            sep = "," if ext == ".csv" else "\t"
            header = sep.join(columns)
            body = "\n".join(sep.join("" if v is None else str(v) for v in row[: len(columns)]) for row in rows)
            path.write_text(header + "\n" + body + "\n", encoding="utf-8", errors="surrogatepass")
        elif ext == ".jsonl":
            path.write_text("\n".join(pd.Series([r]).to_json(orient="records")[1:-1] for r in records))
        elif ext == ".json":
            path.write_text(pd.Series(records, dtype=object).to_json(orient="values"))
        else:
            assume(frame is not None)
            frame.astype(str).to_parquet(path)
    except (ValueError, UnicodeEncodeError, OverflowError):
        assume(False)  # hypothesis made something the writer itself refuses
    try:
        table = read_table(path)
    except DataError as exc:
        assert str(exc)
        return
    assert len(table.frame) >= 1 and list(table.frame.columns)


@SETTINGS
@given(blob=st.binary(max_size=600), ext=st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".parquet"]))
def test_arbitrary_bytes_as_a_table(tmp_path_factory, blob, ext):
    path = tmp_path_factory.mktemp("bytes") / f"t{ext}"
    path.write_bytes(blob)
    try:
        read_table(path)
    except DataError:
        pass


# ------------------------------------------------------------------------------ images
@pytest.fixture(scope="module")
def rgb():
    pre = ImagePreprocessor("photo", ["photo"], size=8, resize="pad")
    pre.grayscale_, pre.mean_, pre.std_ = False, [0.5] * 3, [0.25] * 3
    return pre


MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F", "YCbCr"]


@SETTINGS
@given(mode=st.sampled_from(MODES), width=st.integers(1, 60), height=st.integers(1, 60),
       fmt=st.sampled_from(["PNG", "TIFF", "BMP", "GIF", "JPEG", "WEBP"]), seed=st.integers(0, 2**16))
def test_any_image_decodes_to_the_right_shape(rgb, mode, width, height, fmt, seed):
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 4), dtype=np.uint8)
    buffer = io.BytesIO()
    try:
        Image.fromarray(pixels, "RGBA").convert(mode).save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        assume(False)  # Pillow cannot write this mode in this format
    item = rgb.load({"photo": buffer.getvalue()}, HERE)
    assert item.shape == (3, 8, 8) and item.dtype == torch.uint8


@SETTINGS
@given(blob=st.binary(max_size=2000), prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff", b"II*\x00", b"BM"]))
def test_any_bytes_as_an_image(rgb, blob, prefix):
    try:
        item = rgb.load({"photo": prefix + blob}, HERE)
    except BadInput as exc:
        assert str(exc)
        return
    assert item is None or (item.shape == (3, 8, 8) and item.dtype == torch.uint8)


# ------------------------------------------------------------------------------ audio
@pytest.fixture(scope="module")
def voice():
    return AudioPreprocessor("voice", ["voice"], max_seconds=0.5, n_mels=16)


@SETTINGS
@given(rate=st.sampled_from([8000, 11025, 16000, 22050, 32000, 44100, 48000]), channels=st.integers(1, 3),
       frames=st.integers(0, 6000), subtype=st.sampled_from(["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]),
       fmt=st.sampled_from(["WAV", "FLAC", "OGG"]), seed=st.integers(0, 2**16), loud=st.floats(0, 2))
def test_any_recording_gives_finite_frames(voice, rate, channels, frames, subtype, fmt, seed, loud):
    if fmt == "FLAC":
        subtype = subtype if subtype in ("PCM_16", "PCM_24") else "PCM_16"
    if fmt == "OGG":
        subtype = "VORBIS"
    samples = loud * np.random.default_rng(seed).uniform(-1, 1, (frames, channels)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    try:
        item = voice.load({"voice": buffer.getvalue()}, HERE)
    except BadInput as exc:
        assert "empty audio" in str(exc) or "cannot decode" in str(exc)
        return
    if item is None:  # no bytes at all (a codec writing nothing for no samples): absent
        assert frames == 0 and not buffer.getvalue()
        return
    assert 1 <= item.shape[0] <= voice.max_frames and item.shape[1] == 16
    assert torch.isfinite(item.float()).all()


@SETTINGS
@given(blob=st.binary(max_size=3000), header=st.booleans())
def test_any_bytes_as_audio(voice, blob, header):
    if header:
        buffer = io.BytesIO()
        sf.write(buffer, np.zeros(100, np.float32), 8000, format="WAV")
        blob = buffer.getvalue()[:44] + blob
    try:
        item = voice.load({"voice": blob}, HERE)
    except BadInput as exc:
        assert str(exc)
        return
    assert item is None or (item.shape[1] == 16 and torch.isfinite(item.float()).all())


# ------------------------------------------------------------------------------ text, tabular
@pytest.fixture(scope="module")
def text():
    frame = pd.DataFrame({"t": ["the cat sat on the mat", "a dog ran", "Ünïcödé wörds ✓"] * 5})
    return TextPreprocessor("t", ["t"], vocab_size=60, min_frequency=1, max_length=12).fit(frame, HERE)


@SETTINGS
@given(value=st.one_of(st.text(alphabet=st.characters(codec=None), max_size=300), st.binary(max_size=50),
                       st.none(), st.floats(), st.integers(), st.lists(st.integers(), max_size=3)))
def test_any_cell_tokenises_within_bounds(text, value):
    ids = text.load({"t": value}, HERE)
    if ids is None:
        return
    vocab = text.encoder_inputs()["vocab_size"]
    assert ids.dtype == np.int32 and 1 <= len(ids) <= 12 and ids.min() >= 0 and ids.max() < vocab


@SETTINGS
@given(column=st.lists(cells, min_size=1, max_size=12), probe=cells)
def test_tabular_fit_and_load_on_anything(column, probe):
    frame = pd.DataFrame({"x": pd.Series(column, dtype=object), "c": pd.Series(column, dtype=object)})
    pre = TabularPreprocessor("tabular", ["x", "c"], numeric=["x"], categorical=["c"]).fit(frame, HERE)
    assert np.isfinite(pre.mean_).all() and np.isfinite(pre.std_).all() and (pre.std_ > 0).all()
    try:
        item = pre.load({"x": probe, "c": probe}, HERE)
    except BadInput as exc:
        assert "is not a number" in str(exc)
        return
    if item is not None:
        assert np.isfinite(item["numeric"]).all() and item["categorical"].min() >= 0


# ------------------------------------------------------------------------------ paths, checkpoints
@SETTINGS
@given(parts=st.lists(st.sampled_from(["a", "b", "..", ".", "link", "", "x.png"]), min_size=1, max_size=6),
       absolute=st.booleans())
def test_a_checked_path_never_leaves_the_root(tmp_path_factory, parts, absolute):
    base = tmp_path_factory.getbasetemp() / "guard"
    root = base / "root"
    if not root.exists():
        (root / "a" / "b").mkdir(parents=True)
        (base / "out").mkdir()
        os.symlink(base / "out", root / "a" / "link")
    text = "/".join(parts)
    value = str(root / "a") + "/" + text if absolute else "a/" + text
    guard = PathGuard(root, root)
    try:
        resolved = guard.check(value)
    except BadInput:
        return
    real_root = os.path.realpath(root)
    assert resolved == real_root or resolved.startswith(real_root + os.sep)


json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**62, 2**62), st.floats(allow_nan=False), st.text(max_size=10),
              st.builds(lambda n: torch.arange(n, dtype=torch.float32), st.integers(0, 5))),
    lambda children: st.one_of(st.lists(children, max_size=3), st.tuples(children, children),
                               st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), children, max_size=3)),
    max_leaves=12,
)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isinf(a):
        return a == b
    return a == b and type(a) is type(b)


@SETTINGS
@given(tree=json_like)
def test_checkpoint_round_trip(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("ck") / "c.safetensors"
    write_checkpoint({"tree": tree}, path)
    assert _same(read_checkpoint(path)["tree"], tree)
