"""The fixed benchmarks of ``$POLYMODAL_DATA`` (see its README), turned into tables.

- av-digits: FSDD clips paired with ``load_digits()`` images by ``av-digits/pairs.csv``;
  :func:`build_av_digits` writes train/val/test CSVs (audio path, image path, label).
- fashion-mnist: :func:`load_fashion_mnist` reads the IDX files; :func:`make_fashion_folder`
  writes the image-folder + ``metadata.csv`` layout used by the end-to-end tests.

The data folder is always passed in or read from ``POLYMODAL_DATA`` when a function runs,
never at import, and nothing here writes into it except :func:`ensure_fsdd` with
``download=True`` (which falls back to a user cache folder when it is read-only).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from PIL import Image

from polymodal.datasets.download import download_and_extract
from polymodal.errors import DataError

__all__ = [
    "FSDD_URL",
    "FSDD_DIGEST",
    "FASHION_MNIST_CLASSES",
    "recordings_digest",
    "data_root",
    "ensure_fsdd",
    "build_av_digits",
    "load_fashion_mnist",
    "make_fashion_folder",
]

_LOG = logging.getLogger("polymodal")

FSDD_URL = (
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
)
# recordings_digest($POLYMODAL_DATA/fsdd, <the 3,000 clip names in av-digits/pairs.csv>),
# computed once over the copy of FSDD v1.0.10 in the shared data folder: SHA-256 over, for
# each file name in sorted order, name (UTF-8) + NUL + 8-byte big-endian length + bytes.
# It verifies the recordings, not the archive bytes: a re-packed or re-compressed release
# archive still verifies, while any changed, missing or renamed clip does not.
FSDD_DIGEST = "e0fb762c9bab2821a71965f6a9ac29ac25698541430c8a8b7c54ea3e49cc7afe"

# FSDD v1.0.10 is exactly this grid: {digit}_{speaker}_{take}.wav. The av-digits benchmark
# uses every clip, so FSDD_DIGEST applies when pairs.csv lists exactly these names.
_FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
_FSDD_NAMES = frozenset(
    f"{digit}_{speaker}_{take}.wav"
    for digit in range(10)
    for speaker in _FSDD_SPEAKERS
    for take in range(50)
)
_FSDD_MEMBERS = "*/recordings/*.wav"  # where the release archive keeps the clips

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_PAIRS_COLUMNS = ("audio", "digit_index", "label", "speaker", "split")
_SPLITS = ("train", "val", "test")


def data_root(data_dir: Path | str | None = None) -> Path:
    """The benchmark data folder: ``data_dir``, else ``$POLYMODAL_DATA``.

    Raises:
        DataError: neither is given, or the folder does not exist.
    """
    if data_dir is not None and str(data_dir) != "":
        root, source = Path(data_dir), "data_dir"
    elif os.environ.get("POLYMODAL_DATA"):
        root, source = Path(os.environ["POLYMODAL_DATA"]), "POLYMODAL_DATA"
    else:
        raise DataError(
            "no data folder given: expected --data-dir (data_dir=...) or the environment "
            "variable POLYMODAL_DATA, got neither. Set POLYMODAL_DATA=/path/to/data or pass "
            "--data-dir /path/to/data"
        )
    if not root.is_dir():
        raise DataError(
            f"data folder {root} (from {source}) does not exist or is not a folder; "
            "point POLYMODAL_DATA or --data-dir at the folder holding av-digits/, fsdd/, ..."
        )
    return root


def recordings_digest(folder: Path, names: Iterable[str]) -> str:
    """SHA-256 over the sorted clip names and their bytes: what verifies an FSDD copy.

    Each name is hashed with a separator and the byte length of its file, so no two
    different sets of (name, bytes) can produce the same stream. Duplicates count once.

    Raises:
        DataError: a named file is missing.
    """
    folder = Path(folder)
    return _digest_files((name, folder / name) for name in set(names))


def _digest_files(items: Iterable[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, path in sorted(items):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read clip {path} ({exc.strerror or exc})") from exc
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def ensure_fsdd(
    data_dir: Path,
    download: bool = False,
    url: str = FSDD_URL,
    *,
    expected_digest: str | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """The folder holding every FSDD clip listed in ``data_dir/av-digits/pairs.csv``.

    Looks in ``data_dir/fsdd``, then in ``<cache>/fsdd``. When clips are missing and
    ``download`` is set, fetches the release archive, checks the listed recordings against
    the expected digest, and only then copies them into ``data_dir/fsdd`` (or
    ``<cache>/fsdd`` when ``data_dir`` cannot be written); the unpacked archive is deleted.

    Args:
        data_dir: the benchmark data folder (holds ``av-digits/pairs.csv``).
        download: fetch FSDD when clips are missing.
        url: the release archive (``http(s)://`` or ``file://``).
        expected_digest: ``recordings_digest`` the listed clips must have. ``None`` means
            ``FSDD_DIGEST`` when pairs.csv lists the 3,000 clips of the real benchmark;
            any other pairs.csv must name its digest, or the download is refused.
        cache_dir: user cache, default ``$XDG_CACHE_HOME/polymodal`` or
            ``~/.cache/polymodal``; holds the download and the read-only fallback.

    Returns:
        The folder holding the clips.

    Raises:
        DataError: pairs.csv is missing or malformed; clips are missing and ``download``
            is off; the download fails; the recordings do not match the digest.
    """
    data_dir = Path(data_dir)
    names = sorted(_clip_names(_read_pairs(data_dir)))
    cache = Path(cache_dir) if cache_dir is not None else _user_cache_dir()
    primary, fallback = data_dir / "fsdd", cache / "fsdd"
    for folder in (primary, fallback):
        if not _missing(folder, names):
            return folder
    missing = _missing(primary, names)
    if not download:
        raise DataError(
            f"av-digits needs {len(names):,} FSDD clips in {primary}, but {len(missing):,} "
            f"are missing (first: {missing[0]}). Pass --download (download=True) to fetch "
            f"FSDD from {url}, or point POLYMODAL_DATA / --data-dir at a folder whose fsdd/ "
            "holds the recordings"
        )
    expected = _expected_digest(names, expected_digest)
    return _download_fsdd(names, url, expected, primary, cache)


def _expected_digest(names: list[str], given: str | None) -> str:
    if given is not None:
        return given.strip().lower()
    if set(names) == _FSDD_NAMES:
        return FSDD_DIGEST
    raise DataError(
        f"pairs.csv lists {len(names):,} clips, not the 3,000 of the av-digits benchmark, so "
        "FSDD_DIGEST cannot verify them; pass expected_digest=recordings_digest(folder, names) "
        "computed from a copy you trust"
    )


def _download_fsdd(names: list[str], url: str, expected: str, primary: Path, cache: Path) -> Path:
    try:
        release = download_and_extract(
            url, cache / "downloads" / "fsdd-release", sha256=None, members_glob=_FSDD_MEMBERS
        )
    except DataError as exc:
        raise DataError(f"{exc} (for FSDD: put the release's recordings/*.wav in {primary})") from exc
    try:
        found = {path.name: path for path in release.rglob("*.wav")}
        lacking = [name for name in names if name not in found]
        if lacking:
            raise DataError(
                f"the archive {url} lacks {len(lacking):,} of the {len(names):,} clips listed "
                f"in pairs.csv (first: {lacking[0]}); expected the FSDD release that "
                "av-digits was made from. Check the URL"
            )
        got = _digest_files((name, found[name]) for name in names)
        if got != expected:
            raise DataError(
                f"the recordings in {url} do not match the av-digits benchmark: expected "
                f"digest {expected}, got {got}. Nothing was copied. Check the URL (FSDD "
                "v1.0.10 is expected), or put the original clips in place by hand"
            )
        target = primary if _writable(primary) else cache / "fsdd"
        if target != primary:
            _LOG.warning("%s is read-only; putting the FSDD clips in %s", primary, target)
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (target / name).exists():
                part = target / f".{name}.part"
                shutil.copyfile(found[name], part)
                os.replace(part, target / name)  # a clip is either whole or absent
    finally:
        shutil.rmtree(release, ignore_errors=True)
    final = recordings_digest(target, names)
    if final != expected:
        raise DataError(
            f"clips already in {target} differ from the FSDD release (expected digest "
            f"{expected}, got {final}); remove the .wav files there and run again with --download"
        )
    _LOG.info("FSDD: %d clips ready in %s", len(names), target)
    return target


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "polymodal"


def _missing(folder: Path, names: list[str]) -> list[str]:
    try:
        present = set(os.listdir(folder))  # one directory read, not 3,000 stats
    except OSError:
        return list(names)
    return [name for name in names if name not in present]


def _read_pairs(data_dir: Path) -> pd.DataFrame:
    path = Path(data_dir) / "av-digits" / "pairs.csv"
    if not path.is_file():
        raise DataError(
            f"the av-digits benchmark file {path} does not exist; expected the data folder "
            "(POLYMODAL_DATA or --data-dir) to hold av-digits/pairs.csv"
        )
    pairs = pd.read_csv(path)
    lacking = [c for c in _PAIRS_COLUMNS if c not in pairs.columns]
    if lacking:
        raise DataError(
            f"{path}: expected columns {list(_PAIRS_COLUMNS)}, got {list(pairs.columns)} "
            f"(missing {lacking}); restore the benchmark file"
        )
    bad_split = sorted(set(pairs["split"]) - set(_SPLITS))
    if bad_split:
        raise DataError(f"{path}: split must be one of {list(_SPLITS)}, got {bad_split}")
    return pairs


def _clip_names(pairs: pd.DataFrame) -> list[str]:
    """Clip file names inside ``fsdd/`` (pairs.csv paths are relative to the data folder)."""
    audio = pairs["audio"].astype(str)
    bad = ~audio.str.fullmatch(r"fsdd/[^/\\]+")
    if bad.any():
        raise DataError(
            f"av-digits/pairs.csv: audio paths must look like 'fsdd/<name>.wav', got "
            f"{audio[bad].iloc[0]!r}; restore the benchmark file"
        )
    return audio.str.slice(len("fsdd/")).tolist()


def build_av_digits(data_dir: Path | None, work_dir: Path, download: bool = False) -> dict[str, Path]:
    """Write the av-digits tables: ``work_dir/{train,val,test}.csv`` and ``images/``.

    Each row has ``audio`` (absolute path to the FSDD clip), ``image`` (``images/digit_<i>.png``,
    relative to ``work_dir``: ``load_digits().images[i]``, 8×8 grey, 0–16 scaled ×16),
    ``label`` (the digit) and ``speaker``. Images already written are left alone, so a
    second call is cheap.

    Raises:
        DataError: no data folder, pairs.csv missing or inconsistent, FSDD clips missing.
    """
    from sklearn.datasets import load_digits  # heavy import, only needed here

    root = data_root(data_dir)
    pairs = _read_pairs(root)
    fsdd = ensure_fsdd(root, download=download)
    digits = load_digits()
    index = pairs["digit_index"].to_numpy()
    if index.min() < 0 or index.max() >= len(digits.images):
        raise DataError(
            f"av-digits/pairs.csv: digit_index must lie in [0, {len(digits.images) - 1}], got "
            f"[{index.min()}, {index.max()}]; restore the benchmark file"
        )
    wrong = np.flatnonzero(digits.target[index] != pairs["label"].to_numpy())
    if len(wrong):
        raise DataError(
            f"av-digits/pairs.csv: {len(wrong)} rows pair a clip with an image of another "
            f"digit (first: row {wrong[0]}); restore the benchmark file"
        )

    work_dir = Path(work_dir)
    (work_dir / "images").mkdir(parents=True, exist_ok=True)
    for i in np.unique(index):
        pixels = np.clip(digits.images[i] * 16, 0, 255).astype(np.uint8)  # [8, 8]
        _write_if_changed(work_dir / "images" / f"digit_{i}.png", _png_bytes(pixels))

    table = pd.DataFrame({
        "audio": [str((fsdd / name).absolute()) for name in _clip_names(pairs)],
        "image": [f"images/digit_{i}.png" for i in index],
        "label": pairs["label"].astype("int64"),
        "speaker": pairs["speaker"],
    })
    paths = {}
    for split in _SPLITS:
        paths[split] = work_dir / f"{split}.csv"
        table[pairs["split"].to_numpy() == split].to_csv(paths[split], index=False)
    return paths


def _png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a uint8 ``[H, W]`` greyscale image as PNG (deterministic for a Pillow version,
    so re-runs can compare bytes and skip files that are already right)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    path.write_bytes(data)


def load_fashion_mnist(data_dir: Path | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from its IDX gzip files.

    Args:
        data_dir: the data folder (holds ``fashion-mnist/``), or ``None`` for ``$POLYMODAL_DATA``.
        split: ``"train"`` (60,000) or ``"test"`` (10,000).

    Returns:
        images uint8 ``[N, 28, 28]`` and labels int64 ``[N]`` (indices into
        ``FASHION_MNIST_CLASSES``).

    Raises:
        DataError: unknown split, missing file, or a file that is not the expected IDX.
    """
    if split not in _FASHION_FILES:
        raise DataError(f"Fashion-MNIST split must be one of {list(_FASHION_FILES)}, got {split!r}")
    folder = data_root(data_dir) / "fashion-mnist"
    image_file, label_file = _FASHION_FILES[split]
    images = _read_idx(folder / image_file, magic=2051, ndim=3)
    labels = _read_idx(folder / label_file, magic=2049, ndim=1)
    if len(images) != len(labels):
        raise DataError(
            f"{folder}: {image_file} holds {len(images):,} images but {label_file} holds "
            f"{len(labels):,} labels; expected equal counts. Restore the files"
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise DataError(f"{folder / label_file}: expected labels 0–9, got up to {labels.max()}")
    return images, labels.astype(np.int64)


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as handle:
            data = bytearray(handle.read())
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} ({exc}); expected a gzip IDX file from Fashion-MNIST") from exc
    got = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if got != magic:
        raise DataError(
            f"{path}: expected IDX magic number {magic} (uint8, {ndim}-d), got {got}; the file "
            "is not the right Fashion-MNIST file, restore it"
        )
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise DataError(
            f"{path}: header says shape {shape} ({int(np.prod(shape)):,} bytes), file holds "
            f"{len(data) - header:,} bytes after the header; the file is truncated, restore it"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


# Text for make_fashion_folder: per class, words a shopper might use. Some words are
# shared between classes ("top", "shoe", "boot") so text alone cannot be perfect.
_NOUNS = {
    "T-shirt/top": ("t-shirt", "tee", "top", "short-sleeved top"),
    "Trouser": ("trousers", "pants", "slacks", "jeans"),
    "Pullover": ("pullover", "sweater", "jumper", "knitted top"),
    "Dress": ("dress", "gown", "frock", "summer dress"),
    "Coat": ("coat", "jacket", "overcoat", "parka"),
    "Sandal": ("sandal", "flip-flop", "open shoe", "strappy shoe"),
    "Shirt": ("shirt", "blouse", "button-up top", "long-sleeved top"),
    "Sneaker": ("sneaker", "trainer", "running shoe", "canvas shoe"),
    "Bag": ("bag", "handbag", "tote", "purse"),
    "Ankle boot": ("ankle boot", "boot", "bootie", "short boot"),
}
_ADJECTIVES = ("plain", "striped", "dark", "light", "patterned", "classic", "casual", "simple")
_TEMPLATES = (
    "{adj} {noun}", "{adj} {noun}, product photo", "photo: {adj} {noun}",
    "{noun} in a {adj} style", "catalogue image: {adj} {noun}",
)
_GENERIC = (
    "a fashion item", "product photo, grey background", "new arrival",
    "catalogue picture", "an item from the shop",
)
_GENERIC_SHARE = 0.2


def _folder_name(name: str) -> str:
    """A class name safe as a folder name: ``'T-shirt/top'`` → ``'T-shirt_top'``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)


def make_fashion_folder(
    data_dir: Path | None, dest: Path, per_class: int, split: str = "train", seed: int = 0
) -> Path:
    """Write ``dest/<class>/<i>.png`` from real Fashion-MNIST plus ``dest/metadata.csv``.

    ``metadata.csv`` has ``file_name`` (e.g. ``Trouser/0003.png``) and ``description``: a
    short noisy text, generic for about 20% of rows, so neither modality alone is perfect.

    Raises:
        DataError: ``per_class`` out of range, or ``dest`` exists and is not empty.
    """
    from PIL import Image

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"{dest} is not empty; expected a new or empty folder, pass another dest")
    images, labels = load_fashion_mnist(data_dir, split)
    smallest = int(np.bincount(labels, minlength=len(FASHION_MNIST_CLASSES)).min())
    if not 1 <= per_class <= smallest:
        raise DataError(f"per_class must lie in [1, {smallest:,}] for the {split} split, got {per_class}")
    rng = np.random.default_rng(seed)
    rows = []
    for label, name in enumerate(FASHION_MNIST_CLASSES):
        folder = dest / _folder_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        chosen = np.sort(rng.choice(np.flatnonzero(labels == label), per_class, replace=False))
        for i, row in enumerate(chosen):
            Image.fromarray(images[row]).save(folder / f"{i:04d}.png")
            rows.append({"file_name": f"{folder.name}/{i:04d}.png", "description": _describe(name, rng)})
    pd.DataFrame(rows).to_csv(dest / "metadata.csv", index=False)
    return dest


def _describe(name: str, rng: np.random.Generator) -> str:
    if rng.random() < _GENERIC_SHARE:
        return str(rng.choice(_GENERIC))
    template = str(rng.choice(_TEMPLATES))
    return template.format(adj=rng.choice(_ADJECTIVES), noun=rng.choice(_NOUNS[name]))
