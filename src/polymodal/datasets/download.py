"""Download an archive, check its checksum, and unpack it safely and atomically.

Used to fetch public data sets (e.g. the Free Spoken Digit Dataset) when they are not on
disk. Works with ``http(s)://`` and ``file://`` URLs; nothing is fetched at import time.

The archive is streamed to a temporary file next to ``dest``, verified, unpacked into a
temporary folder next to ``dest``, and only then renamed to ``dest``: an interrupted or
failed run never leaves a half-filled ``dest`` behind.
"""
from __future__ import annotations

import fnmatch
import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from polymodal.errors import DataError

__all__ = ["download_and_extract"]

_LOG = logging.getLogger("polymodal")
_CHUNK = 1 << 20  # 1 MiB per read
_USER_AGENT = "polymodal (+https://pypi.org/project/polymodal)"


def download_and_extract(
    url: str,
    dest: Path,
    sha256: str | None,
    members_glob: str | None = None,
    *,
    timeout: float = 60.0,
) -> Path:
    """Download a ``.tar.gz`` / ``.tgz`` / ``.zip`` archive and unpack it into ``dest``.

    Args:
        url: ``http://``, ``https://`` or ``file://`` URL of the archive.
        dest: folder to unpack into. Created; an existing ``dest`` is replaced only after
            the new contents are fully unpacked.
        sha256: expected hex SHA-256 of the archive bytes, or ``None`` to skip the check.
        members_glob: unpack only members whose path inside the archive matches this
            ``fnmatch`` pattern (e.g. ``"*/recordings/*.wav"``); ``None`` unpacks all.
        timeout: seconds to wait for the server on connect and on each read.

    Returns:
        ``dest``, holding the unpacked members at their paths inside the archive.

    Raises:
        DataError: the download failed (offline, 404, timeout), the checksum did not
            match, the archive is not a tar.gz/zip, a member would land outside ``dest``
            (absolute path or ``..``), or no member matched ``members_glob``.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".download")
    except OSError as exc:
        raise DataError(
            f"cannot download {url}: the folder {dest.parent} cannot be written "
            f"({exc.strerror or exc}); pass a writable destination"
        ) from exc
    archive = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, dest, timeout)
        if sha256 is not None and digest != sha256.strip().lower():
            archive.unlink(missing_ok=True)
            raise DataError(
                f"checksum mismatch for {url}: expected sha256 {sha256.strip().lower()}, "
                f"got {digest}. The downloaded file was removed. Check the URL (a changed "
                f"release or a proxy error page), or put the files in {dest} by hand."
            )
        _extract_atomically(archive, dest, members_glob, url)
    finally:
        archive.unlink(missing_ok=True)
    return dest


def _stream(url: str, out, dest: Path, timeout: float) -> str:
    """Copy ``url`` into the open file ``out``; return the hex SHA-256 of the bytes."""
    digest = hashlib.sha256()
    done = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            _LOG.info("downloading %s (%s)", url, _size(total) if total else "size unknown")
            started = last_report = time.monotonic()
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                now = time.monotonic()
                if now - last_report >= 2.0:  # a line every 2 s is enough to show life
                    last_report = now
                    share = f" ({done / total:.0%})" if total else ""
                    _LOG.info("  %s%s downloaded", _size(done), share)
            if total and done < total:
                raise OSError(f"connection closed after {done:,} of {total:,} bytes")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        # HTTPError reads best whole ("HTTP Error 404: Not Found"); URLError wraps the cause
        plain = isinstance(exc, urllib.error.HTTPError) or not getattr(exc, "reason", None)
        reason = exc if plain else exc.reason
        raise DataError(
            f"could not download {url}: {reason}; put the files in {dest} by hand"
        ) from exc
    _LOG.info("downloaded %s in %.1f s", _size(done), time.monotonic() - started)
    return digest.hexdigest()


def _extract_atomically(archive: Path, dest: Path, members_glob: str | None, url: str) -> None:
    """Unpack into a temporary sibling of ``dest``, then swap it into place."""
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".extract"))
    try:
        count = _extract(archive, staging, members_glob, url)
        _LOG.info("unpacked %d files into %s", count, dest)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
            os.replace(dest, old)
            os.replace(staging, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: Path, out_dir: Path, members_glob: str | None, url: str) -> int:
    """Write the regular-file members of ``archive`` under ``out_dir``; return how many."""
    with archive.open("rb") as handle:
        magic = handle.read(4)
    if magic[:2] == b"\x1f\x8b":
        return _extract_tar(archive, out_dir, members_glob, url)
    if magic == b"PK\x03\x04":
        return _extract_zip(archive, out_dir, members_glob, url)
    raise DataError(
        f"{url} is not a .tar.gz/.tgz or .zip archive (first bytes {magic!r}); "
        "check the URL, it may point at an HTML page"
    )


def _extract_tar(archive: Path, out_dir: Path, members_glob: str | None, url: str) -> int:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            _check_names([m.name for m in members], url)
            # Links and device files are never written: only regular files and folders.
            wanted = [m for m in members if m.isfile() and _wanted(m.name, members_glob)]
            _check_some(wanted, members_glob, [m.name for m in members], url)
            for member in wanted:
                source = tar.extractfile(member)
                assert source is not None  # isfile() members always have data
                _write(source, out_dir, member.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(
            f"{url}: could not unpack the tar.gz archive into {out_dir.parent} ({exc}); "
            "check free disk space, or download it again if the archive is damaged"
        ) from exc
    return len(wanted)


def _extract_zip(archive: Path, out_dir: Path, members_glob: str | None, url: str) -> int:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_names([i.filename for i in infos], url)
            wanted = [i for i in infos if not i.is_dir() and _wanted(i.filename, members_glob)]
            _check_some(wanted, members_glob, [i.filename for i in infos], url)
            for info in wanted:
                with zf.open(info) as source:
                    _write(source, out_dir, info.filename)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(
            f"{url}: could not unpack the zip archive into {out_dir.parent} ({exc}); "
            "check free disk space, or download it again if the archive is damaged"
        ) from exc
    return len(wanted)


def _check_names(names: list[str], url: str) -> None:
    """Reject the whole archive if any member would land outside the target folder."""
    bad = [n for n in names if _unsafe(n)]
    if bad:
        raise DataError(
            f"{url}: refusing to unpack an archive with {len(bad)} member(s) whose path leaves "
            f"the target folder (absolute path or '..'; first: {bad[0]!r}). Expected relative "
            "paths only; the archive may be malicious, get it from a trusted source"
        )


def _unsafe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return (
        name.startswith(("/", "\\"))
        or bool(PureWindowsPath(name).drive)
        or ".." in parts
        or PurePosixPath(name).is_absolute()
    )


def _wanted(name: str, members_glob: str | None) -> bool:
    return members_glob is None or fnmatch.fnmatchcase(name, members_glob)


def _check_some(wanted: list, members_glob: str | None, names: list[str], url: str) -> None:
    if not wanted:
        sample = ", ".join(repr(n) for n in names[:3]) or "none"
        pattern = f"matching {members_glob!r} " if members_glob else ""
        raise DataError(
            f"{url}: the archive has no files {pattern}(expected at least one; "
            f"{len(names)} members, first: {sample}); check the URL and the pattern"
        )


def _write(source, out_dir: Path, name: str) -> None:
    target = out_dir.joinpath(*PurePosixPath(name.replace("\\", "/")).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
