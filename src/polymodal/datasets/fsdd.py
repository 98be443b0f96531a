"""The FSDD recordings that av-digits uses: find them, or download and verify them.

``av-digits/pairs.csv`` lists the clips; :func:`ensure_fsdd` finds them in ``fsdd/`` (or a user
cache) and, with ``download=True``, fetches the release archive and checks the listed
recordings against a digest before copying them (falling back to the user cache when the data
folder is read-only).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import pandas as pd

from polymodal.datasets.download import download_and_extract
from polymodal.errors import DataError

__all__ = ["FSDD_URL", "FSDD_DIGEST", "SPLITS", "recordings_digest", "ensure_fsdd", "read_pairs", "clip_names"]

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

_PAIRS_COLUMNS = ("audio", "digit_index", "label", "speaker", "split")
SPLITS = ("train", "val", "test")


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
    names = sorted(clip_names(read_pairs(data_dir)))
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


def read_pairs(data_dir: Path) -> pd.DataFrame:
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
    bad_split = sorted(set(pairs["split"]) - set(SPLITS))
    if bad_split:
        raise DataError(f"{path}: split must be one of {list(SPLITS)}, got {bad_split}")
    return pairs


def clip_names(pairs: pd.DataFrame) -> list[str]:
    """Clip file names inside ``fsdd/`` (pairs.csv paths are relative to the data folder)."""
    audio = pairs["audio"].astype(str)
    bad = ~audio.str.fullmatch(r"fsdd/[^/\\]+")
    if bad.any():
        raise DataError(
            f"av-digits/pairs.csv: audio paths must look like 'fsdd/<name>.wav', got "
            f"{audio[bad].iloc[0]!r}; restore the benchmark file"
        )
    return audio.str.slice(len("fsdd/")).tolist()
