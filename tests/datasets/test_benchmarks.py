"""The benchmark builders: FSDD presence/download/verification, av-digits, Fashion-MNIST.

Tests that read the real data use the ``data_dir`` fixture (skips without POLYMODAL_DATA).
Downloads use file:// archives built here from a handful of real clips: no network.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synthetic import write_tar_gz
from polymodal.datasets import fsdd
from polymodal.datasets.av_digits import build_av_digits
from polymodal.datasets.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist, make_fashion_folder
from polymodal.datasets.fsdd import FSDD_DIGEST, ensure_fsdd, recordings_digest
from polymodal.datasets.root import data_root
from polymodal.errors import DataError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the real ~/.cache/polymodal from a test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _tiny_data_dir(root: Path, pairs: pd.DataFrame) -> Path:
    (root / "av-digits").mkdir(parents=True)
    pairs.to_csv(root / "av-digits" / "pairs.csv", index=False)
    return root


def _real_pairs(data_dir: Path, n: int = 6) -> pd.DataFrame:
    pairs = pd.read_csv(data_dir / "av-digits" / "pairs.csv")
    return pairs.groupby("split").head(2).head(n).reset_index(drop=True)


def _release_archive(path: Path, clips: dict[str, bytes]) -> Path:
    """A tar.gz laid out like the FSDD GitHub release, plus files that are not clips."""
    members = {f"free-spoken-digit-dataset-1.0.10/recordings/{n}": b for n, b in clips.items()}
    members["free-spoken-digit-dataset-1.0.10/README.md"] = b"# FSDD\n"
    return write_tar_gz(path, members)


def test_data_root_prefers_the_argument_then_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYMODAL_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root(str(tmp_path / "..")) == tmp_path / ".."
    monkeypatch.delenv("POLYMODAL_DATA")
    with pytest.raises(DataError, match="(?i)set POLYMODAL_DATA.*--data-dir"):
        data_root()
    with pytest.raises(DataError, match="does not exist"):
        data_root(tmp_path / "missing")


def test_recordings_digest_covers_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"ab")
    (tmp_path / "b.wav").write_bytes(b"c")
    base = recordings_digest(tmp_path, ["b.wav", "a.wav"])
    assert base == recordings_digest(tmp_path, ["a.wav", "b.wav", "a.wav"])
    (tmp_path / "b.wav").write_bytes(b"C")
    assert recordings_digest(tmp_path, ["a.wav", "b.wav"]) != base
    with pytest.raises(DataError, match="cannot read clip"):
        recordings_digest(tmp_path, ["missing.wav"])


def test_fsdd_digest_matches_the_real_clips(data_dir: Path) -> None:
    names = pd.read_csv(data_dir / "av-digits" / "pairs.csv")["audio"].str.removeprefix("fsdd/")
    assert len(set(names)) == 3000
    assert recordings_digest(data_dir / "fsdd", names) == FSDD_DIGEST
    assert ensure_fsdd(data_dir) == data_dir / "fsdd"


def test_missing_clips_without_download_say_what_to_do(tmp_path: Path) -> None:
    pairs = pd.DataFrame({
        "audio": ["fsdd/0_theo_0.wav", "fsdd/1_theo_0.wav", "fsdd/2_theo_0.wav"],
        "digit_index": [0, 1, 2], "label": [0, 1, 2], "speaker": ["theo"] * 3,
        "split": ["train", "val", "test"],
    })
    root = _tiny_data_dir(tmp_path / "data", pairs)
    with pytest.raises(DataError, match=r"fsdd, but 3 are missing.*--download") as caught:
        ensure_fsdd(root)
    assert str(root / "fsdd") in str(caught.value)
    # a pairs.csv that is not the real benchmark cannot be checked against FSDD_DIGEST:
    # refuse before downloading anything
    with pytest.raises(DataError, match="FSDD_DIGEST cannot verify"):
        ensure_fsdd(root, download=True, url="http://127.0.0.1:9/never-fetched.tar.gz")


def test_download_verifies_and_installs_the_clips(tmp_path: Path, data_dir: Path) -> None:
    pairs = _real_pairs(data_dir)
    names = [a.removeprefix("fsdd/") for a in pairs["audio"]]
    clips = {n: (data_dir / "fsdd" / n).read_bytes() for n in names}
    clips["9_extra_0.wav"] = b"not listed in pairs.csv"
    archive = _release_archive(tmp_path / "fsdd.tar.gz", clips)
    root = _tiny_data_dir(tmp_path / "data", pairs)
    # the expected digest comes from the trusted shared copy, not from the archive
    trusted = recordings_digest(data_dir / "fsdd", names)

    got = ensure_fsdd(root, download=True, url=archive.as_uri(), expected_digest=trusted,
                      cache_dir=tmp_path / "cache")
    assert got == root / "fsdd"
    assert sorted(p.name for p in got.iterdir()) == sorted(names)
    assert all((got / n).read_bytes() == clips[n] for n in names)
    assert not any((tmp_path / "cache" / "downloads").iterdir())  # extraction cleaned up
    # now present: no download, and the URL is never touched
    assert ensure_fsdd(root, url="http://127.0.0.1:9/x.tar.gz") == got


def test_download_with_a_changed_clip_is_refused(tmp_path: Path, data_dir: Path) -> None:
    pairs = _real_pairs(data_dir)
    names = [a.removeprefix("fsdd/") for a in pairs["audio"]]
    clips = {n: (data_dir / "fsdd" / n).read_bytes() for n in names}
    clips[names[0]] = clips[names[0]][:-2] + b"\0\0"
    archive = _release_archive(tmp_path / "fsdd.tar.gz", clips)
    root = _tiny_data_dir(tmp_path / "data", pairs)
    with pytest.raises(DataError, match="do not match the av-digits benchmark: expected digest"):
        ensure_fsdd(root, download=True, url=archive.as_uri(),
                    expected_digest=recordings_digest(data_dir / "fsdd", names),
                    cache_dir=tmp_path / "cache")
    assert not (root / "fsdd").exists()


def test_read_only_data_dir_falls_back_to_the_cache(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = _real_pairs(data_dir, n=3)
    names = [a.removeprefix("fsdd/") for a in pairs["audio"]]
    archive = _release_archive(
        tmp_path / "fsdd.tar.gz", {n: (data_dir / "fsdd" / n).read_bytes() for n in names}
    )
    root = _tiny_data_dir(tmp_path / "data", pairs)
    monkeypatch.setattr(fsdd, "_writable", lambda folder: False)  # root ignores chmod
    got = ensure_fsdd(root, download=True, url=archive.as_uri(),
                      expected_digest=recordings_digest(data_dir / "fsdd", names))
    assert got == tmp_path / "xdg-cache" / "polymodal" / "fsdd"
    assert ensure_fsdd(root) == got


def test_build_av_digits_on_the_real_data(tmp_path: Path, data_dir: Path) -> None:
    from sklearn.datasets import load_digits

    paths = build_av_digits(data_dir, tmp_path / "av")
    tables = {split: pd.read_csv(path) for split, path in paths.items()}
    assert {s: len(t) for s, t in tables.items()} == {"train": 1800, "val": 200, "test": 1000}
    test = tables["test"]
    assert list(test.columns) == ["audio", "image", "label", "speaker"]
    assert set(test["speaker"]) == {"theo", "yweweler"}
    assert Path(test["audio"][0]).is_absolute() and Path(test["audio"][0]).is_file()

    digits = load_digits()
    for _, row in tables["train"].head(5).iterrows():
        index = int(row["image"].removeprefix("images/digit_").removesuffix(".png"))
        with Image.open(tmp_path / "av" / row["image"]) as image:
            assert image.mode == "L" and image.size == (8, 8)
            expected = np.clip(digits.images[index] * 16, 0, 255).astype(np.uint8)
            np.testing.assert_array_equal(np.asarray(image), expected)
        assert digits.target[index] == row["label"]

    image = tmp_path / "av" / tables["val"]["image"][0]
    before = image.stat().st_mtime_ns
    build_av_digits(data_dir, tmp_path / "av")  # idempotent: existing images untouched
    assert image.stat().st_mtime_ns == before


def test_load_fashion_mnist(data_dir: Path) -> None:
    images, labels = load_fashion_mnist(data_dir, "test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(len(FASHION_MNIST_CLASSES)))
    with pytest.raises(DataError, match="split must be one of"):
        load_fashion_mnist(data_dir, "validation")


def test_fashion_mnist_with_a_wrong_magic_number(tmp_path: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(folder / name, "wb") as handle:
            handle.write((2049).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\0")
    with pytest.raises(DataError, match="expected IDX magic number 2051.*got 2049"):
        load_fashion_mnist(tmp_path, "test")


def test_make_fashion_folder_layout(tmp_path: Path, data_dir: Path) -> None:
    dest = make_fashion_folder(data_dir, tmp_path / "shop", per_class=4, split="test", seed=1)
    meta = pd.read_csv(dest / "metadata.csv")
    assert list(meta.columns) == ["file_name", "description"] and len(meta) == 40
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == sorted(
        ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
    )
    assert "Trouser/0003.png" in set(meta["file_name"])
    for name in meta["file_name"]:
        with Image.open(dest / name) as image:
            assert image.size == (28, 28) and image.mode == "L"
    assert meta["description"].str.len().min() > 3
    assert meta["description"].nunique() > 10  # varied text, not one string per class

    again = make_fashion_folder(data_dir, tmp_path / "again", per_class=4, split="test", seed=1)
    pd.testing.assert_frame_equal(pd.read_csv(again / "metadata.csv"), meta)
    with pytest.raises(DataError, match="not empty"):
        make_fashion_folder(data_dir, dest, per_class=4, split="test")
