"""Request bodies → the table a model reads.

A body is JSON (``{"rows": [{column: value}, ...], ...}``) or multipart: a ``rows`` field
holding the same JSON list, other fields (``k``, ``column`` …) as text, and files in parts
named after their column — the i-th part of a name fills row i. In JSON an image or audio
cell is ``{"base64": "..."}``. A text in an image or audio cell is refused (422), never read
as a path: the service reads no file that a request names. Every file is checked by its
content (``serving.uploads``) before it becomes a ``{"bytes": ...}`` cell of the table.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping, TypeVar

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from polymodal.serving.problems import Problem
from polymodal.serving.settings import Limits
from polymodal.serving.uploads import check_file, file_roles, free_text, from_base64

__all__ = ["Body", "read_body", "build_frame", "off_loop", "integer", "text_field"]

T = TypeVar("T")


class _Upload:
    """A file part's bytes on their way into a row (never confused with a JSON value)."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes):
        self.blob = blob


class Body:
    """A parsed request: ``fields`` (the JSON object, or the multipart text fields with
    ``rows`` decoded), ``files`` (part name → the bytes of each part, in order) and ``size``
    (the bytes of the body's JSON or files)."""

    def __init__(self, fields: dict[str, Any], files: dict[str, list[bytes]], size: int = 0):
        self.fields = fields
        self.files = files
        self.size = size


async def read_body(request: Request, limits: Limits, json_fields: tuple[str, ...] = ("rows",)) -> Body:
    """Parse a JSON or multipart body (the byte limit is enforced while it is read).

    Raises:
        Problem: 415 another content type; 422 malformed JSON; 413 a file over the limit.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        raw = await request.body()
        try:
            fields = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise Problem(422, f"the body is not valid JSON ({exc})") from None
        if not isinstance(fields, dict):
            raise Problem(422, "the JSON body must be an object, e.g. {\"rows\": [{...}]}")
        return Body(fields, {}, len(raw))
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise Problem(415, f"send application/json or multipart/form-data, not {kind or 'no content type'}")
    try:
        form = await request.form(max_files=limits.rows * 4, max_fields=limits.rows * 4 + 16,
                                  max_part_size=limits.file_bytes)
    except Problem:
        raise
    except Exception as exc:  # noqa: BLE001 - python-multipart's errors on malformed bodies
        raise Problem(422, f"the multipart body cannot be read ({getattr(exc, 'detail', exc)})") from None
    fields: dict[str, Any] = {}
    files: dict[str, list[bytes]] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if value.size is not None and value.size > limits.file_bytes:
                    raise Problem(413, f"file part {name!r} has {value.size:,} bytes, over the limit of "
                                       f"{limits.file_bytes:,}")
                files.setdefault(name, []).append(await value.read())
            elif name in fields:
                raise Problem(422, f"field {name!r} is given twice")
            else:
                fields[name] = value
    finally:
        await form.close()
    for name in json_fields:
        if name in fields:
            try:
                fields[name] = json.loads(fields[name])
            except (ValueError, RecursionError) as exc:
                raise Problem(422, f"field {name!r} is not valid JSON ({exc})") from None
    return Body(fields, files, sum(len(b) for blobs in files.values() for b in blobs)
                + sum(len(v) for v in fields.values() if isinstance(v, str)))


# Bodies smaller than this are checked on the event loop: for a photo or a clip of a few kB the
# check takes well under a millisecond, less than handing it to a worker thread and back. Larger
# bodies (whose files take longer to check) go to a thread, so the loop keeps answering.
INLINE_BYTES = 256 << 10


async def off_loop(body: Body, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, in a worker thread unless ``body``'s files are small (see ``INLINE_BYTES``)."""
    if body.size <= INLINE_BYTES:
        return fn(*args)
    return await run_in_threadpool(fn, *args)


def build_frame(columns: Mapping[str, str], body: Body, limits: Limits, key: str = "rows",
                ignored: tuple[str, ...] = (), fill: bool = True) -> pd.DataFrame:
    """The rows of ``body.fields[key]`` and the files of ``body.files`` as a table.

    Args:
        columns: column → role (``text``, ``image``, ``audio``, ``numeric``, ``categorical``)
            of the columns a request may fill.
        ignored: other columns a row may hold (the label), passed on unchecked if plain values.
        fill: add every column of ``columns`` that no row has, empty (its input is absent).

    Raises:
        Problem: 413 too many rows or a file over a limit; 422 unknown columns, values of the
            wrong type, a path in a file column, files that do not decode.
    """
    rows = body.fields.get(key, [{}] if body.files else None)
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise Problem(422, f"{key!r} must be a list of objects, one per row: [{{\"column\": value, ...}}]")
    unknown = sorted(set(body.files) - {c for c, r in columns.items() if r in file_roles()})
    if unknown:
        raise Problem(422, f"file part(s) {', '.join(map(repr, unknown))} name no image or audio column of this "
                           f"model; its file columns: {_names(columns, file_roles())}")
    n = max([len(rows)] + [len(v) for v in body.files.values()])
    if n > limits.rows:
        raise Problem(413, f"{n:,} rows in one request, over the limit of {limits.rows:,}; send fewer")
    if n == 0:
        raise Problem(422, f"no rows: send {key!r} with at least one row")
    rows = [dict(r) for r in rows] + [{} for _ in range(n - len(rows))]
    for column, blobs in body.files.items():
        for i, blob in enumerate(blobs):
            if rows[i].get(column) is not None:
                raise Problem(422, f"row {i}: column {column!r} is given both in the row and as a file part")
            rows[i][column] = _Upload(blob)
    table = [{c: _cell(c, columns, ignored, v, f"row {i}, column {c!r}", limits) for c, v in row.items()}
             for i, row in enumerate(rows)]
    frame = pd.DataFrame(table, index=range(n), dtype=object)
    if fill:
        for column in columns:
            if column not in frame.columns:
                frame[column] = None
    return frame


def _cell(column: str, columns: Mapping[str, str], ignored: tuple[str, ...], value: Any, where: str,
          limits: Limits) -> Any:
    role = columns.get(column)
    if role is None:
        if column in ignored and _plain(value):
            return value
        raise Problem(422, f"{where}: this model reads no column {column!r}; its columns: "
                           f"{', '.join(sorted(columns))}")
    if value is None:
        return None
    if role in file_roles():
        if isinstance(value, _Upload):
            return {"bytes": check_file(value.blob, role, where, limits)}
        if isinstance(value, str):
            raise Problem(422, f"{where}: an {role} must be uploaded (a multipart file part named {column!r}) or "
                               "sent as {\"base64\": \"...\"}; the service reads no file named by a path")
        return {"bytes": check_file(from_base64(value, where, limits), role, where, limits)}
    if free_text(role):
        if not isinstance(value, str):
            raise Problem(422, f"{where}: expected a text (or null), got {_shown(value)}")
        return unicode(value, where)
    if role == "numeric":
        number = _finite(value)
        if number is None:
            raise Problem(422, f"{where}: expected a finite number (or null), got {_shown(value)}")
        return number
    if not _plain(value):
        raise Problem(422, f"{where}: expected a category (a text or number, or null), got {_shown(value)}")
    return unicode(value, where) if isinstance(value, str) else value


def unicode(text: str, where: str) -> str:
    """``text`` if it is valid Unicode (JSON's escapes can spell half a surrogate pair), else 422."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Problem(422, f"{where}: the text holds an unpaired surrogate (\\ud800-\\udfff); send valid "
                           "Unicode") from None
    return text


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range
        return None
    return number if math.isfinite(number) else None


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or _finite(value) is not None


def _shown(value: Any) -> str:
    text = json.dumps(value)[:60] if not isinstance(value, dict) else "an object"
    return text


def _names(columns: Mapping[str, str], roles: tuple[str, ...]) -> str:
    return ", ".join(sorted(c for c, r in columns.items() if r in roles)) or "none"


def integer(fields: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    """A whole-number field (JSON number or multipart text) within ``[low, high]``.

    Raises:
        Problem: 422 not a whole number or out of range.
    """
    value = fields.get(name, default)
    if isinstance(value, str) and len(value) < 20:
        try:
            value = int(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Problem(422, f"{name!r} must be a whole number from {low} to {high:,}, got {_shown(value)}")
    return value


def text_field(fields: Mapping[str, Any], name: str, required: bool = False) -> str | None:
    """A text field, or None when absent (422 when ``required``, or not a text)."""
    value = fields.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Problem(422, f"{name!r} must be a text" + (" and is required" if required else ""))
    return unicode(value, repr(name))
