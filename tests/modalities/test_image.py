"""ImagePreprocessor: decoding of every Pillow mode, bad files, resize, augment, persistence."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from polymodal.modalities import get_modality
from polymodal.preprocessing import BadInput
from polymodal.modalities.image.preprocess import ImagePreprocessor
from polymodal.errors import ConfigError, DataError, NotFittedError

SIZE = 32
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def fashion_dir(data_dir, tmp_path_factory) -> Path:
    """24 real Fashion-MNIST test images written as 28×28 grey PNGs."""
    folder = tmp_path_factory.mktemp("fashion")
    with gzip.open(data_dir / "fashion-mnist" / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read(16 + 24 * 28 * 28)
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(24, 28, 28)  # [N, H, W]
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def emoji_dir(data_dir, tmp_path_factory) -> Path:
    """4 emoji rendered from the real Noto colour font as transparent RGBA PNGs."""
    folder = tmp_path_factory.mktemp("emoji")
    font = ImageFont.truetype(str(data_dir / "emoji" / "NotoColorEmoji.ttf"), 109)
    for i, char in enumerate(["\U0001F600", "\U0001F34E", "\U0001F697", "\U0001F308"]):
        image = Image.new("RGBA", (136, 128), (0, 0, 0, 0))
        ImageDraw.Draw(image).text((0, 0), char, font=font, embedded_color=True)
        image.save(folder / f"e{i}.png")
    return folder


@pytest.fixture(scope="module")
def grey(fashion_dir) -> ImagePreprocessor:
    frame = pd.DataFrame({"photo": [f"{i}.png" for i in range(24)]})
    return ImagePreprocessor("photo", ["photo"], size=SIZE).fit(frame, fashion_dir)


@pytest.fixture(scope="module")
def rgb() -> ImagePreprocessor:
    pre = ImagePreprocessor("photo", ["photo"], size=SIZE)
    pre.grayscale_, pre.mean_, pre.std_ = False, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    return pre


def test_registered():
    assert get_modality("image").preprocessor is ImagePreprocessor


def test_grey_fit_load_collate(grey, fashion_dir):
    assert grey.grayscale_ is True
    assert grey.encoder_inputs() == {"in_channels": 1, "image_size": SIZE}
    assert 0.1 < grey.mean_[0] < 0.5 and 0.1 < grey.std_[0] < 0.5  # Fashion-MNIST: ~0.29, ~0.35
    item = grey.load({"photo": "3.png"}, fashion_dir)
    assert item.dtype == torch.uint8 and item.shape == (1, SIZE, SIZE)
    absolute = grey.load({"photo": str(fashion_dir / "3.png")}, Path("/elsewhere"))
    assert torch.equal(item, absolute)
    batch = grey.collate([item, None, grey.augment(item, torch.Generator().manual_seed(0))])
    pixels = batch["pixel_values"]
    assert pixels.shape == (3, 1, SIZE, SIZE) and pixels.dtype == torch.float32
    expected = (item.float() / 255 - grey.mean_[0]) / grey.std_[0]
    assert torch.allclose(pixels[0], expected, atol=1e-6)
    assert (pixels[1] == 0).all()


def test_absent_cells(grey, fashion_dir):
    for cell in [None, np.nan, "", "  "]:
        assert grey.load({"photo": cell}, fashion_dir) is None


def test_rgb_fit_composites_alpha_on_white(emoji_dir):
    frame = pd.DataFrame({"photo": [f"e{i}.png" for i in range(4)]})
    pre = ImagePreprocessor("photo", ["photo"], size=SIZE).fit(frame, emoji_dir)
    assert pre.grayscale_ is False and len(pre.mean_) == 3 and len(pre.std_) == 3
    assert pre.encoder_inputs()["in_channels"] == 3
    item = pre.load({"photo": "e0.png"}, emoji_dir)
    assert item.shape == (3, SIZE, SIZE) and item.dtype == torch.uint8
    assert (item[:, 0, 0] == 255).all()  # transparent corner → white


def test_mixed_grey_and_colour_fits_rgb(fashion_dir, emoji_dir):
    frame = pd.DataFrame({"photo": [str(fashion_dir / "0.png"), str(emoji_dir / "e1.png")]})
    pre = ImagePreprocessor("photo", ["photo"], size=SIZE).fit(frame, Path("."))
    assert pre.grayscale_ is False
    assert pre.load({"photo": str(fashion_dir / "0.png")}, Path(".")).shape == (3, SIZE, SIZE)


@pytest.mark.parametrize("how", ["shorter_then_center_crop", "stretch", "pad"])
def test_resize_modes_non_square(tmp_path, rgb, how):
    pixels = np.zeros((30, 90, 3), np.uint8)
    pixels[:, :45] = (255, 0, 0)  # left half red, right half blue
    pixels[:, 45:] = (0, 0, 255)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    pre = ImagePreprocessor("photo", ["photo"], size=SIZE, resize=how)
    pre.grayscale_, pre.mean_, pre.std_ = rgb.grayscale_, rgb.mean_, rgb.std_
    item = pre.load({"photo": "wide.png"}, tmp_path)
    assert item.shape == (3, SIZE, SIZE)
    assert item[0, SIZE // 2, 1] > 200 and item[2, SIZE // 2, -2] > 200  # red left, blue right


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def test_every_mode_decodes(tmp_path, rgb):
    rgb = ImagePreprocessor("photo", ["photo"], size=SIZE, resize="stretch")
    rgb.grayscale_, rgb.mean_, rgb.std_ = False, [0.5] * 3, [0.25] * 3
    ramp = np.tile(np.arange(40, dtype=np.uint16) * 1600, (30, 1))  # [30, 40], 0..62400
    files = {
        "cmyk.jpg": _save(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), tmp_path / "cmyk.jpg"),
        "cmyk.tif": _save(Image.new("CMYK", (40, 30), (255, 0, 0, 0)), tmp_path / "cmyk.tif"),
        "i16.png": _save(Image.fromarray(ramp), tmp_path / "i16.png"),  # 16-bit grey
        "i32.tif": _save(Image.fromarray(ramp.astype(np.int32)), tmp_path / "i32.tif"),
        "float.tif": _save(Image.fromarray(ramp.astype(np.float32) / 65535), tmp_path / "float.tif"),
        "p.png": _save(Image.new("RGB", (40, 30), (10, 200, 30)).convert("P"), tmp_path / "p.png"),
        "p.gif": _save(Image.new("P", (40, 30), 1), tmp_path / "p.gif", transparency=1),
        "rgba.png": _save(Image.new("RGBA", (40, 30), (255, 0, 0, 128)), tmp_path / "rgba.png"),
        "la.png": _save(Image.new("LA", (40, 30), (0, 0)), tmp_path / "la.png"),
        "1.bmp": _save(Image.new("1", (40, 30), 1), tmp_path / "1.bmp"),
        "rgb.webp": _save(Image.new("RGB", (40, 30), (0, 0, 255)), tmp_path / "rgb.webp"),
    }
    loaded = {name: rgb.load({"photo": name}, tmp_path) for name in files}
    for name, item in loaded.items():
        assert item.shape == (3, SIZE, SIZE) and item.dtype == torch.uint8, name
    assert loaded["cmyk.tif"][0].float().mean() < 20 and loaded["cmyk.tif"][1].float().mean() > 200  # cyan
    assert loaded["i16.png"][0, 0, 0] < 10 and loaded["i16.png"][0, 0, -1] > 220  # 16 → 8 bit
    assert torch.equal(loaded["i16.png"], loaded["i32.tif"])
    assert (loaded["float.tif"].float() - loaded["i16.png"].float()).abs().max() <= 1
    assert (loaded["p.gif"] == 255).all()  # fully transparent palette image → white
    assert abs(int(loaded["rgba.png"][1, 5, 5]) - 127) <= 1  # half-transparent red on white
    assert (loaded["la.png"] == 255).all()  # fully transparent → white
    assert (loaded["1.bmp"] == 255).all()


def test_exif_orientation_applied(tmp_path):
    pixels = np.zeros((20, 60, 3), np.uint8)  # stored 60 wide × 20 high
    pixels[:, :30] = (220, 0, 0)  # left red
    pixels[:, 30:] = (0, 0, 220)  # right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise: left → top
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif)
    pre = ImagePreprocessor("photo", ["photo"], size=SIZE, resize="stretch")
    pre.grayscale_, pre.mean_, pre.std_ = False, [0.5] * 3, [0.25] * 3
    item = pre.load({"photo": "rotated.jpg"}, tmp_path)
    assert item[0, 2, SIZE // 2] > 150 and item[2, 2, SIZE // 2] < 80  # top red
    assert item[2, -3, SIZE // 2] > 150 and item[0, -3, SIZE // 2] < 80  # bottom blue


def test_pad_fills_with_border_colour(tmp_path, rgb):
    Image.new("RGB", (60, 20), (0, 160, 0)).save(tmp_path / "wide.png")
    pre = ImagePreprocessor("photo", ["photo"], size=SIZE, resize="pad")
    pre.grayscale_, pre.mean_, pre.std_ = rgb.grayscale_, rgb.mean_, rgb.std_
    item = pre.load({"photo": "wide.png"}, tmp_path)
    assert (item[1] == 160).all() and (item[0] == 0).all()  # no black bars


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width × height`` grey pixels, with one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("zero.png", b"", "zero-byte file"),
        ("text.png", b"just some text, not pixels\n" * 20, "cannot decode image"),
        ("huge.png", _png_header_only(100_000, 100_000), "too large"),
        ("big.png", _png_header_only(8_000, 6_000), "exceeds max_pixels"),
        ("empty_idat.png", _png_header_only(300, 300), "cannot decode image"),
    ],
)
def test_bad_files_raise_bad_input(tmp_path, grey, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BadInput, match=reason):
        grey.load({"photo": name}, tmp_path)


def test_truncated_and_missing_files(tmp_path, grey, fashion_dir):
    pixels = np.random.default_rng(0).integers(0, 255, (120, 120), dtype=np.uint8)  # incompressible
    Image.fromarray(pixels).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="cannot decode image"):
        grey.load({"photo": "cut.png"}, tmp_path)
    with pytest.raises(BadInput, match="file not found"):
        grey.load({"photo": "nope.png"}, fashion_dir)
    with pytest.raises(BadInput, match="directory"):
        grey.load({"photo": "."}, fashion_dir)


def test_augment_reproducible_and_different(grey, fashion_dir):
    item = grey.load({"photo": "5.png"}, fashion_dir)
    a = grey.augment(item, torch.Generator().manual_seed(7))
    b = grey.augment(item, torch.Generator().manual_seed(7))
    c = grey.augment(item, torch.Generator().manual_seed(8))
    assert a.shape == item.shape and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - item.float()).abs().mean() > 1.0
    assert a.min() >= 0 and a.max() <= 255
    off = ImagePreprocessor("photo", ["photo"], augment=False)
    assert off.augment(item, torch.Generator()) is item


def test_save_load_from_same_pixels(grey, fashion_dir, tmp_path):
    grey.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    again = ImagePreprocessor.load_from(tmp_path)
    assert again.encoder_inputs() == grey.encoder_inputs()
    rows = [{"photo": f"{i}.png"} for i in range(6)]
    first = grey.collate([grey.load(r, fashion_dir) for r in rows])["pixel_values"]
    second = again.collate([again.load(r, fashion_dir) for r in rows])["pixel_values"]
    assert torch.equal(first, second)


def test_given_stats_and_grayscale_are_kept(fashion_dir):
    frame = pd.DataFrame({"photo": ["0.png", "1.png"]})
    pre = ImagePreprocessor("photo", ["photo"], grayscale=False, mean=[0.5], std=[0.5]).fit(frame, fashion_dir)
    assert pre.grayscale_ is False and pre.mean_ == [0.5] * 3 and pre.std_ == [0.5] * 3


def test_errors(tmp_path):
    with pytest.raises(NotFittedError):
        ImagePreprocessor("photo", ["photo"]).load({"photo": "x.png"}, tmp_path)
    with pytest.raises(ConfigError, match="resize"):
        ImagePreprocessor("photo", ["photo"], resize="crop")
    with pytest.raises(ConfigError, match="1 or 3 values"):
        ImagePreprocessor("photo", ["photo"], mean=[0.1, 0.2])
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="no training image could be read.*bad.png"):
        ImagePreprocessor("photo", ["photo"]).fit(pd.DataFrame({"photo": ["bad.png", None]}), tmp_path)
