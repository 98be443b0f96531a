"""What a vector index folder's ``index.json`` must hold: the kinds, the format, and a check of
a file read back from disk (untrusted: it may be damaged even when the manifest checks out).

A ``.faiss`` file is checked before faiss reads it (``check_faiss``): faiss sizes each array
by the count the file states and fills it before reading, so one damaged count field costs
as much time and memory as it claims (2 GB took 4 s on a busy machine; one bad word can claim 16 GB).
The walk reads only the fixed-size fields of the layouts ``VectorIndex.save`` writes and checks
every count against the bytes left in the file and against ``index.json``.
"""
from __future__ import annotations

import contextlib
import struct
import threading
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from polymodal.errors import ModelDirError

__all__ = ["KINDS", "FORMAT", "check_meta", "check_faiss", "read_faiss"]

KINDS = ("flat", "hnsw", "ivf")
FORMAT = 1


def check_meta(file: Path, meta: dict[str, Any], ids_file: Path, ids: list[Any]) -> None:
    """``index.json``: the keys that loading and searching read, each of its type; ``ids.json``:
    distinct numbers or texts.

    Raises:
        ModelDirError: naming the file and what is wrong with it.
    """
    if not all(isinstance(i, (int, float, str)) and not isinstance(i, bool) for i in ids) or \
            len({str(i) for i in ids}) != len(ids):
        raise ModelDirError(f"{ids_file} is damaged: expected a list of distinct numbers or texts; "
                            "build the index again")
    problem = None
    if meta.get("format") != FORMAT:
        problem = f"format {meta.get('format')!r}; this polymodal reads format {FORMAT}"
    elif meta.get("kind") not in KINDS:
        problem = f"kind {meta.get('kind')!r} is not one of {', '.join(KINDS)}"
    elif not isinstance(meta.get("dim"), int) or isinstance(meta.get("dim"), bool) or meta["dim"] < 1:
        problem = f"'dim' must be a positive whole number, got {meta.get('dim')!r}"
    elif meta.get("count", len(ids)) != len(ids) or isinstance(meta.get("count"), bool):
        problem = f"'count' is {meta.get('count')!r} but {ids_file.name} holds {len(ids):,} ids"
    elif not isinstance(meta.get("settings"), dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in meta["settings"].values()):
        problem = "'settings' must be an object of numbers"
    elif meta["kind"] == "flat" and not isinstance(meta["settings"].get("error_bound"), (int, float)):
        problem = "a flat index needs a number 'error_bound' in its settings"
    elif not isinstance(meta.get("model", {}), dict):
        problem = "'model' must be an object"
    elif any(k in meta and not isinstance(meta[k], str) for k in ("column", "modality", "space")):
        problem = "'column', 'modality' and 'space' must be text"
    if problem:
        raise ModelDirError(f"{file} is damaged: {problem}; build the index again")


def read_faiss(faiss: Any, file: Path, layout: str, meta: dict[str, Any], count: int) -> Any:
    """``faiss.read_index(file)`` after ``check_faiss``; a damaged file is a ``ModelDirError``
    naming it.

    Args:
        layout: flat | hnsw | ivf | scan; meta: the checked ``index.json``; count: the ids.

    No array faiss allocates may be larger than the file itself (where faiss lets us say so).
    """
    nlist = meta["settings"].get("nlist") if layout == "ivf" else None
    check_faiss(file, layout, meta["dim"], count, nlist)
    try:
        with _byte_limit(faiss, file.stat().st_size):
            return faiss.read_index(str(file))
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:  # bad_alloc: a damaged size field  # faiss: "Error in ... at x.cpp:N: what"
        reason = " ".join(str(exc).split()).rpartition(": ")[2][:200]
        raise ModelDirError(f"{file} is damaged: faiss cannot read it ({reason}); build the index again") from None


_LIMIT_LOCK = threading.Lock()  # the limit is process-wide: one reader at a time changes it


@contextlib.contextmanager
def _byte_limit(faiss: Any, limit: int) -> Iterator[None]:
    """faiss's per-array read limit (faiss >= 1.15; 1 TiB by default) lowered for the block,
    then restored."""
    get = getattr(faiss, "get_deserialization_vector_byte_limit", None)
    if get is None:
        yield
        return
    with _LIMIT_LOCK:
        before = get()
        faiss.set_deserialization_vector_byte_limit(max(int(limit), 1))
        try:
            yield
        finally:
            faiss.set_deserialization_vector_byte_limit(before)


# ------------------------------------------------------------------ the .faiss layouts we write
_FOURCC = {"flat": b"IxFI", "scan": b"IxSQ", "hnsw": b"IHNf", "ivf": b"IwFl"}
_QT_8BIT, _INNER_PRODUCT = 0, 0


class _Damaged(Exception):
    """What is wrong with a .faiss file (becomes a ``ModelDirError`` naming it)."""


class _Walk:
    """Reads fixed-size fields of a .faiss file and skips its arrays, never past its end."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh, self.size = fh, size

    @property
    def left(self) -> int:
        return self.size - self.fh.tell()

    def field(self, fmt: str, what: str) -> Any:
        n = struct.calcsize(fmt)
        if self.left < n:
            raise _Damaged(f"it ends inside its {what} (truncated)")
        return struct.unpack(fmt, self.fh.read(n))[0]

    def count(self, itemsize: int, what: str, expected: int | None = None) -> int:
        """An array's element count, checked; the position moves to the array's first byte."""
        n = self.field("<Q", f"{what} count")
        if n * itemsize > self.left:
            raise _Damaged(f"its {what} count claims {n:,} values ({n * itemsize:,} bytes), more than "
                           f"the {self.left:,} bytes left in the file")
        if expected is not None and n != expected:
            raise _Damaged(f"its {what} count is {n:,}, {expected:,} expected")
        return n

    def skip(self, itemsize: int, what: str, expected: int | None = None) -> int:
        n = self.count(itemsize, what, expected)
        self.fh.seek(n * itemsize, 1)
        return n

    def array(self, dtype: str, what: str, expected: int | None = None) -> np.ndarray:
        n = self.count(np.dtype(dtype).itemsize, what, expected)
        return np.frombuffer(self.fh.read(n * np.dtype(dtype).itemsize), dtype=dtype)


def check_faiss(file: Path, layout: str, dim: int, count: int, nlist: int | None = None) -> None:
    """Check a ``.faiss`` file of ``layout`` (flat | hnsw | ivf | scan) before faiss reads it.

    Args:
        dim, count: what ``index.json`` and ``ids.json`` record: ``count`` ``dim``-d vectors.
        nlist: the IVF list count ``index.json`` records, if any.

    Raises:
        ModelDirError: naming the file and the first field that does not fit.
    """
    try:
        with open(file, "rb") as fh:
            walk = _Walk(fh, file.stat().st_size)
            _index(walk, layout, dim, count, nlist)
            if walk.left:
                raise _Damaged(f"{walk.left:,} bytes follow the end of the index")
    except _Damaged as exc:
        raise ModelDirError(f"{file} is damaged: {exc}; build the index again") from None
    except OSError as exc:
        raise ModelDirError(f"{file} cannot be read ({exc.strerror or exc}); build the index again") from None


def _index(walk: _Walk, layout: str, dim: int, count: int, nlist: int | None = None) -> None:
    fourcc = walk.field("4s", "type code")
    if fourcc != _FOURCC[layout]:
        raise _Damaged(f"type code {fourcc!r}, expected {_FOURCC[layout]!r} (a {layout} index)")
    d, ntotal = walk.field("<i", "dimension"), walk.field("<q", "vector count")
    if d != dim or ntotal != count:
        raise _Damaged(f"it holds {ntotal:,} {d}-d vectors, where index.json and ids.json record "
                       f"{count:,} {dim}-d")
    walk.field("<16s", "header")
    trained, metric = walk.field("<B", "header"), walk.field("<i", "metric")
    if trained != 1 or metric != _INNER_PRODUCT:
        raise _Damaged(f"its header says trained={trained}, metric={metric}; written as trained=1, "
                       f"metric={_INNER_PRODUCT} (inner product)")
    if layout == "flat":
        walk.skip(4, "vectors", count * dim)
    elif layout == "scan":
        qtype = walk.field("<i", "quantizer type")
        walk.field("<8s", "quantizer range")
        sq_dim, code_size = walk.field("<Q", "quantizer dimension"), walk.field("<Q", "code size")
        if qtype != _QT_8BIT or sq_dim != dim or code_size != dim:
            raise _Damaged(f"its quantizer (type {qtype}, {sq_dim}-d, {code_size}-byte codes) is not "
                           f"the 8-bit {dim}-d one written")
        walk.skip(4, "quantizer ranges", 2 * dim)
        walk.skip(1, "codes", count * dim)
    elif layout == "hnsw":
        _hnsw(walk, count)
        _index(walk, "flat", dim, count)
    else:
        _ivf(walk, dim, count, nlist)


def _hnsw(walk: _Walk, count: int) -> None:
    """The graph: per-level probabilities and neighbour counts, each item's level, its
    neighbour lists (ids in ``[-1, count)``), the entry point and the top level."""
    levels_p = walk.skip(8, "level probabilities")
    cum = walk.array("<i4", "neighbours per level", levels_p + 1).astype(np.int64)
    if cum[0] != 0 or (np.diff(cum) < 0).any():
        raise _Damaged("its neighbours-per-level table is not increasing from 0")
    levels = walk.array("<i4", "item levels", count)
    if len(levels) and (levels.min() < 1 or levels.max() > levels_p):
        raise _Damaged(f"an item level lies outside 1..{levels_p}")
    offsets = walk.array("<u8", "neighbour offsets", count + 1)
    if offsets[0] != 0 or (np.diff(offsets.astype(np.int64)) != cum[levels]).any():
        raise _Damaged("its neighbour offsets do not match the item levels")
    n = walk.count(4, "neighbour lists", int(offsets[-1]))
    for start in range(0, n, 1 << 22):  # bounded memory on large graphs
        ids = np.frombuffer(walk.fh.read(4 * min(1 << 22, n - start)), dtype="<i4")
        if len(ids) and (ids.min() < -1 or ids.max() >= count):
            raise _Damaged(f"a neighbour id lies outside -1..{count - 1}")
    entry, top = walk.field("<i", "entry point"), walk.field("<i", "top level")
    if not 0 <= entry < count or top != int(levels.max(initial=1)) - 1 or levels[entry] - 1 != top:
        raise _Damaged(f"entry point {entry} / top level {top} do not match the item levels")
    walk.field("<12s", "search settings")


def _ivf(walk: _Walk, dim: int, count: int, nlist: int | None) -> None:
    """Lists, the coarse quantizer (a flat index of the list centres), the direct map, and the
    inverted lists ("ilar": per list its codes, then its ids)."""
    lists = walk.field("<Q", "list count")
    if not 1 <= lists <= max(count, 1) or (nlist is not None and lists != nlist):
        raise _Damaged(f"it has {lists:,} lists; index.json records nlist={nlist}")
    walk.field("<Q", "nprobe")
    _index(walk, "flat", dim, lists)
    kind = walk.field("<B", "direct map type")
    if kind not in (0, 1):
        raise _Damaged(f"direct map type {kind}, expected 0 or 1")
    walk.skip(8, "direct map", count if kind == 1 else 0)
    if walk.field("4s", "list type code") != b"ilar" or walk.field("<Q", "list count") != lists:
        raise _Damaged("its inverted lists are not the array lists written")
    if walk.field("<Q", "code size") != 4 * dim:
        raise _Damaged(f"its code size is not {4 * dim} bytes ({dim} floats)")
    layout = walk.field("4s", "list layout")
    if layout not in (b"full", b"sprs"):
        raise _Damaged(f"list layout {layout!r}, expected b'full' or b'sprs'")
    sizes = walk.array("<u8", "list sizes", lists if layout == b"full" else None)
    if layout == b"sprs":
        if len(sizes) % 2 or (len(sizes) and sizes[0::2].max() >= lists):
            raise _Damaged("its sparse list sizes are not (list, size) pairs")
        sizes = sizes[1::2]
    held = sum(int(n) for n in sizes)  # Python ints: damaged sizes must not wrap around
    if held != count:
        raise _Damaged(f"its lists hold {held:,} items, {count:,} expected")
    if walk.left < count * (4 * dim + 8):
        raise _Damaged("it ends inside its lists (truncated)")
    walk.fh.seek(count * (4 * dim + 8), 1)
