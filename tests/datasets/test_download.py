"""download_and_extract on archives built in the test and fetched over file:// URLs."""
from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import pytest

from synthetic import write_tar_gz
from polymodal.datasets.download import download_and_extract
from polymodal.errors import DataError

FILES = {
    "pack-1.0/recordings/0_a_0.wav": b"RIFF-zero",
    "pack-1.0/recordings/1_a_0.wav": b"RIFF-one" * 1000,
    "pack-1.0/README.md": b"# readme\n",
}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_tar_gz_with_checksum(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    archive = write_tar_gz(tmp_path / "src" / "pack.tar.gz", FILES)
    dest = tmp_path / "out" / "pack"
    with caplog.at_level(logging.INFO, logger="polymodal"):
        got = download_and_extract(archive.as_uri(), dest, sha256=_sha(archive).upper())
    assert got == dest
    assert _files(dest) == FILES
    assert os.listdir(tmp_path / "out") == ["pack"]  # no temp file or folder left behind
    assert "downloading file://" in caplog.text


def test_zip_with_members_glob_replaces_old_dest(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "src" / "pack.zip", FILES)
    dest = tmp_path / "out" / "pack"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("old")
    download_and_extract(archive.as_uri(), dest, sha256=None, members_glob="*/recordings/*.wav")
    assert _files(dest) == {k: v for k, v in FILES.items() if k.endswith(".wav")}
    assert os.listdir(tmp_path / "out") == ["pack"]


def test_checksum_mismatch_removes_the_download(tmp_path: Path) -> None:
    archive = write_tar_gz(tmp_path / "src" / "pack.tar.gz", FILES)
    out = tmp_path / "out"
    with pytest.raises(DataError, match="expected sha256 0{64}, got [0-9a-f]{64}.*removed"):
        download_and_extract(archive.as_uri(), out / "pack", sha256="0" * 64)
    assert os.listdir(out) == []


@pytest.mark.parametrize("bad", ["../evil.txt", "/tmp/evil.txt", "pack/../../evil.txt"])
@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_path_traversal_is_rejected(tmp_path: Path, bad: str, kind: str) -> None:
    members = {**FILES, bad: b"owned"}
    build = write_tar_gz if kind == "tar.gz" else _zip
    archive = build(tmp_path / "src" / f"evil.{kind}", members)
    out = tmp_path / "deep" / "out"
    with pytest.raises(DataError, match="leaves the target folder"):
        download_and_extract(archive.as_uri(), out / "pack", sha256=None)
    assert os.listdir(out) == []
    assert not (tmp_path / "deep" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_offline_url_gives_an_actionable_error(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/x.tar.gz"  # discard port: nothing listens, refused at once
    with pytest.raises(DataError, match="could not download http://127.0.0.1:9/x.tar.gz: .*by hand"):
        download_and_extract(url, tmp_path / "out" / "x", sha256=None, timeout=5)
    assert os.listdir(tmp_path / "out") == []


def test_missing_file_url_and_non_archive(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download"):
        download_and_extract((tmp_path / "nope.tar.gz").as_uri(), tmp_path / "out" / "x", None)
    page = tmp_path / "page.tar.gz"
    page.write_text("<html>rate limited</html>")
    with pytest.raises(DataError, match="not a .tar.gz/.tgz or .zip"):
        download_and_extract(page.as_uri(), tmp_path / "out" / "x", None)
    with pytest.raises(DataError, match="no files matching"):
        archive = write_tar_gz(tmp_path / "src" / "pack.tgz", FILES)
        download_and_extract(archive.as_uri(), tmp_path / "out" / "x", None, members_glob="*.flac")
    assert os.listdir(tmp_path / "out") == []
