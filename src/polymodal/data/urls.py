"""Image and audio cells that are URLs, read over the network when the user allows it.

A cell of a file input (image, audio) that starts with a scheme (``https://``, ``http://``,
``s3://``, ``gs://``, ``memory://``, ...) names a file elsewhere. Reading it is off by default,
since a table should not make a run fetch whatever it names: ``allow_urls: true`` in the config,
``--allow-urls`` on the command line or ``Predictor(allow_urls=True)`` turns it on. Until then
such a cell is a bad input of its row whose reason says how to allow it.

An allowed URL is read through fsspec (``http(s)://`` through its aiohttp filesystem; ``s3://``
needs the s3fs package, ``gs://`` gcsfs), at most ``MAX_BYTES`` and, over HTTP, within
``TIMEOUT_S`` seconds; the cell becomes the file's bytes (``{"bytes", "path"}``), decoded as
any cell holding a file's content. A URL is no local path: ``--data-root`` bounds paths only,
and a ``file://`` URL is refused (write the path, which the data root then checks).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from polymodal.data.paths import reads_files
from polymodal.preprocessing import BadInput, OverLimit

__all__ = ["UrlReader", "is_url", "fetch_for_fit", "MAX_BYTES", "TIMEOUT_S"]

MAX_BYTES = 64 << 20  # 64 MiB: more than any image or clip a model reads
TIMEOUT_S = 30.0
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")  # two letters at least: C://x is a Windows path
_HOW = ("reading URLs is off; allow it with --allow-urls (allow_urls: true in the config, "
        "Predictor(allow_urls=True) in Python) or give the file's path")


def is_url(value: Any) -> bool:
    """Whether ``value`` is text that starts with a URL scheme (``https://``, ``s3://``, ...)."""
    return isinstance(value, str) and _URL.match(value.strip()) is not None


class UrlReader:
    """Replaces the URL cells of a row's file inputs with the files' bytes (or refuses them).

    Args:
        allowed: read URLs; when False a URL cell is a ``BadInput`` saying how to allow it.
        max_bytes: a larger file is a bad input. timeout: seconds per HTTP request.
    """

    def __init__(self, allowed: bool, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT_S) -> None:
        self.allowed, self.max_bytes, self.timeout = bool(allowed), int(max_bytes), float(timeout)

    def resolve(self, pre: Any, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """``record`` with the URL cells of a file input (image, audio) read; others unchanged.

        Raises:
            BadInput: a URL while reading them is off; a URL that cannot be read.
        """
        if not reads_files(pre):
            return record
        cells = {c: record.get(c) for c in pre.columns}
        urls = {c: v for c, v in cells.items() if is_url(v) or (isinstance(v, Mapping) and not v.get("bytes")
                                                              and is_url(v.get("path")))}
        if not urls:
            return record
        return {**record, **{c: self.fetch(v if isinstance(v, str) else v["path"]) for c, v in urls.items()}}

    def fetch(self, url: str) -> dict[str, Any]:
        """``{"bytes": content, "path": url}`` of the file at ``url``.

        Raises:
            BadInput: reading URLs is off, the scheme is unknown or needs a missing package,
                the file is missing, too large, or the request failed or timed out.
        """
        url = url.strip()
        if not self.allowed:
            raise BadInput(f"a URL: {_HOW}")
        protocol = _URL.match(url).group(1).lower()
        if protocol in ("file", "local"):
            raise BadInput("a file:// URL; write the file's path instead")
        fs = self._filesystem(protocol)
        try:
            with fs.open(url, "rb", **({"block_size": 0} if protocol in ("http", "https") else {})) as fh:
                content = fh.read(self.max_bytes + 1)
        except FileNotFoundError:
            raise BadInput("no file at this URL") from None
        except Exception as exc:  # noqa: BLE001 - timeouts, refused connections, HTTP errors, a client's own
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise BadInput(f"cannot read the URL ({type(exc).__name__}: {reason[:200]})") from None
        if len(content) > self.max_bytes:
            raise OverLimit(f"the file at this URL is larger than {self.max_bytes / 2**20:g} MiB")
        if not content:
            raise BadInput("the URL gave an empty file")
        return {"bytes": content, "path": url}

    def _filesystem(self, protocol: str) -> Any:
        import fsspec

        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise BadInput(f"unknown URL scheme {protocol}://; expected https://, http://, s3://, gs:// or "
                           "another fsspec protocol") from None
        except ImportError as exc:  # s3fs, gcsfs, ... not installed
            extra = "; pip install 'polymodal[s3]'" if protocol in ("s3", "s3a") else ""
            raise BadInput(f"reading {protocol}:// URLs needs a package that is not installed: "
                           f"{' '.join(str(exc).split())}{extra}") from None
        if protocol in ("http", "https"):
            import aiohttp

            return fsspec.filesystem(protocol, client_kwargs={"timeout": aiohttp.ClientTimeout(total=self.timeout)})
        return fsspec.filesystem(protocol)



def fetch_for_fit(frame: Any, preprocessors: Mapping[str, Any], allowed: bool) -> Any:
    """``frame`` with the URL cells that the file inputs' ``fit`` reads already read (when allowed):
    a preprocessor's ``fit_rows`` first rows (every row without one). A URL that cannot be read
    stays as it is: the fit skips it, and loading the rows reports it."""
    if not allowed:
        return frame
    reader, updates = UrlReader(True), {}
    for pre in preprocessors.values():
        if not reads_files(pre):
            continue
        limit = getattr(pre, "fit_rows", None)
        for column in pre.columns:
            values = list(updates.get(column, frame[column].tolist()))
            for i, value in enumerate(values[:len(values) if limit is None else limit]):
                if is_url(value):
                    try:
                        values[i] = reader.fetch(value)
                    except BadInput:
                        pass
            updates[column] = values
    return frame.assign(**updates) if updates else frame
