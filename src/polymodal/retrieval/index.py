"""A vector index over unit vectors (faiss, inner product), stored beside its item ids.

Kinds:
    flat   exact search (``IndexFlatIP``); the default, right up to about a million items. A
           single query scans 8-bit codes first and re-ranks the candidates exactly (see
           ``retrieval.exact``): the same neighbours, a quarter of the memory traffic.
    hnsw   approximate graph search (``IndexHNSWFlat``): fast on large collections, no training.
    ivf    approximate inverted lists (``IndexIVFFlat``): trained on the vectors; ``nprobe``
           lists are searched per query.

An index folder holds ``index.faiss`` (+ ``scan.faiss`` for flat; faiss's own format,
reading it runs no code),
``ids.json``, ``index.json`` (what was indexed, by which model, how) and a checksummed
``manifest.json``; it is written atomically like a model directory. faiss is an optional
dependency: ``pip install 'polymodal[retrieval]'``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np

from polymodal.errors import ConfigError, DataError, ModelDirError
from polymodal.modeldir import MANIFEST, atomic_directory, verify_manifest, write_manifest
from polymodal.retrieval.exact import build_scan, exact_top_k
from polymodal.retrieval.index_meta import FORMAT as _FORMAT
from polymodal.retrieval.index_meta import KINDS, check_meta, read_faiss
from polymodal.untrusted import read_json

__all__ = ["VectorIndex", "KINDS", "model_fingerprint", "import_faiss"]

_HNSW_M = 32


def import_faiss() -> Any:
    """The faiss module, or a ``ConfigError`` that says how to install it."""
    try:
        import faiss
    except ImportError:
        raise ConfigError("vector indexes need the faiss-cpu package, which is not installed; install it "
                          "with `pip install 'polymodal[retrieval]'` (or `pip install faiss-cpu`)") from None
    return faiss


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 of a model directory's ``manifest.json``: changes whenever any model file does."""
    path = Path(model_dir) / MANIFEST
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        raise ModelDirError(f"{model_dir} is not a polymodal model directory (no {MANIFEST}); "
                            "pass the folder that fit/save wrote") from None


@contextlib.contextmanager
def _threads(n: int | None, faiss: Any) -> Iterator[None]:
    """faiss's OpenMP thread count set to ``n`` for the block, then restored."""
    if n is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def check_vectors(vectors: np.ndarray, what: str, dim: int | None = None) -> np.ndarray:
    """``vectors`` as C-contiguous float32 ``[N, D]``; raises ``DataError`` on NaN/inf or a bad shape."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise DataError(f"{what}: expected a 2-d array [N, D] of vectors, got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise DataError(f"{what}: vectors have {array.shape[1]} dimensions, the index holds {dim}-d "
                        "vectors; embed with the model the index was built from")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise DataError(f"{what}: {int(bad.sum()):,} of {len(array):,} vectors hold NaN or inf (first at "
                        f"row {int(np.flatnonzero(bad)[0])}); the model or the input produced invalid "
                        "numbers: drop those rows or check the model")
    return np.ascontiguousarray(array)


class VectorIndex:
    """Unit vectors searchable by inner product (= cosine similarity), with their item ids.

    Build with ``VectorIndex.build``, write with ``save``, read with ``VectorIndex.load``.

    Attributes:
        ids: the item id of each stored vector, in insertion order.
        meta: what ``index.json`` records (column, modality, space, model, kind, dim, ...).
    """

    def __init__(self, index: Any, ids: list[Any], meta: dict[str, Any], scan: Any = None):
        self._index = index
        self._scan = scan  # flat: the 8-bit scan index of ``retrieval.exact``
        self.ids = ids
        self.meta = meta
        self._position = {str(i): p for p, i in enumerate(ids)}

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, vectors: np.ndarray, ids: Sequence[Any] | None = None,
              kind: Literal["flat", "hnsw", "ivf"] = "flat", meta: dict[str, Any] | None = None,
              nlist: int | None = None, nprobe: int | None = None, ef_search: int = 64) -> "VectorIndex":
        """Index ``vectors [N, D]`` (scaled to unit length) under ``ids`` (default ``0..N-1``).

        Args:
            kind: ``flat`` (exact), ``hnsw`` or ``ivf`` (approximate).
            nlist: IVF lists (default ``4·√N``); nprobe: lists searched per query (default nlist/8).
            ef_search: HNSW search breadth (higher = more exact, slower).

        Raises:
            DataError: no vectors, NaN/inf, ids of the wrong length or repeated.
            ConfigError: unknown kind, or faiss not installed.
        """
        faiss = import_faiss()
        if kind not in KINDS:
            raise ConfigError(f"unknown index kind {kind!r}; expected one of {', '.join(KINDS)}")
        array = check_vectors(vectors, "index")
        n, dim = array.shape
        if n == 0:
            raise DataError("nothing to index: no row has a vector (is the column empty, or every row "
                            "skipped?); index a table with at least one usable row")
        ids = list(range(n)) if ids is None else [_plain(i) for i in ids]
        if len(ids) != n:
            raise DataError(f"index: {n:,} vectors but {len(ids):,} ids; pass one id per vector")
        counts = Counter(str(i) for i in ids)
        if len(counts) != n:
            repeated = sorted(t for t, c in counts.items() if c > 1)[:3]
            raise DataError(f"index: item ids must be unique, but {', '.join(repeated)} repeat; use an "
                            "id column with one value per row")
        array = array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)
        index, settings = _make(faiss, kind, dim, n, nlist, nprobe, ef_search)
        if kind == "ivf":
            index.train(array)
        index.add(array)
        if kind == "ivf":
            index.make_direct_map()  # so an item's vector can be read back (more-like-this)
        scan = None
        if kind == "flat":  # one query at a time: a compressed scan, then an exact re-ranking
            scan, settings["error_bound"] = build_scan(faiss, array)
        info = {"format": _FORMAT, "kind": kind, "metric": "inner_product", "dim": dim, "count": n,
                "settings": settings, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(meta or {})}
        return cls(index, ids, info, scan)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the index folder atomically (an interrupted save leaves the old one)."""
        faiss = import_faiss()
        path = Path(path)
        with atomic_directory(path) as tmp:
            faiss.write_index(self._index, str(tmp / "index.faiss"))
            if self._scan is not None:
                faiss.write_index(self._scan, str(tmp / "scan.faiss"))
            (tmp / "ids.json").write_text(json.dumps(self.ids))
            (tmp / "index.json").write_text(json.dumps(self.meta, indent=2))
            write_manifest(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "VectorIndex":
        """Read an index folder written by ``save``.

        Raises:
            ModelDirError: not an index folder, or its files are missing or were changed.
        """
        faiss = import_faiss()
        path = Path(path)
        if not (path / "index.json").is_file():
            raise ModelDirError(f"{path} is not a polymodal index (no index.json); pass the folder that "
                                "`polymodal index --out` wrote")
        try:
            verify_manifest(path)
        except ModelDirError as exc:
            raise ModelDirError(f"index {path}: {exc}; build the index again") from None
        meta = read_json(path / "index.json", dict, fix="build the index again")
        ids = read_json(path / "ids.json", list, fix="build the index again")
        check_meta(path / "index.json", meta, path / "ids.json", ids)
        index = read_faiss(faiss, path / "index.faiss", meta["kind"], meta, len(ids))
        scan = read_faiss(faiss, path / "scan.faiss", "scan", meta, len(ids)) \
            if (path / "scan.faiss").is_file() else None
        if index.ntotal != len(ids) or (scan is not None and scan.ntotal != len(ids)) or index.d != meta["dim"]:
            raise ModelDirError(f"index {path} is damaged: index.faiss holds {index.ntotal:,} {index.d}-d vectors, "
                                f"ids.json {len(ids):,} ids, index.json records {meta['dim']}-d; build it again")
        if meta.get("kind") in ("ivf", "hnsw"):
            try:
                _restore_search_settings(faiss, index, meta)
            except (AttributeError, OverflowError, RuntimeError, TypeError, ValueError):
                raise ModelDirError(f"{path / 'index.json'} is damaged: its kind {meta['kind']!r} or settings "
                                    "do not match index.faiss; build the index again") from None
        return cls(index, ids, meta, scan)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items of each query by inner product.

        Args:
            queries: ``[Q, D]`` (scaled to unit length here).

        Returns:
            ``scores [Q, k]`` float32 (cosine similarity, best first) and ``positions [Q, k]``
            int64 (indices into ``ids``).

        Raises:
            DataError: empty index, k < 1 or larger than the collection, NaN queries, wrong width.
        """
        faiss = import_faiss()
        n = len(self)
        if n == 0:
            raise DataError("the index is empty; build it from a table with at least one usable row")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise DataError(f"k must be a positive whole number, got {k!r}")
        if k > n:
            raise DataError(f"k={k} is larger than the collection ({n:,} items); pass k <= {n:,}")
        array = check_vectors(queries, "query", self.dim)
        array = array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)
        # One query: OpenMP start-up costs more than it saves (faiss's own advice).
        with _threads(1 if len(array) == 1 else None, faiss):
            if self._scan is not None and len(array) == 1:
                bound = float(self.meta["settings"]["error_bound"])
                return exact_top_k(self._index, self._scan, bound, array, int(k))
            scores, positions = self._index.search(array, int(k))
        return scores, positions.astype(np.int64)

    def position(self, item_id: Any) -> int:
        """Where ``item_id`` is stored (ids compare as text, so ``"7"`` finds ``7``).

        Raises:
            DataError: the id is not in the index.
        """
        found = self._position.get(str(_plain(item_id)))
        if found is None:
            examples = ", ".join(map(str, self.ids[:3]))
            raise DataError(f"item id {item_id!r} is not in the index ({len(self.ids):,} items, e.g. {examples})")
        return found

    def vector(self, item_id: Any) -> np.ndarray:
        """The stored unit vector ``[D]`` of one item."""
        return np.asarray(self._index.reconstruct(self.position(item_id)), dtype=np.float32)


def _plain(value: Any) -> Any:
    """An id as a JSON scalar (numpy ints → int; everything else but int/float → str)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _make(faiss: Any, kind: str, dim: int, n: int, nlist: int | None, nprobe: int | None,
          ef_search: int) -> tuple[Any, dict[str, Any]]:
    if kind == "flat":
        return faiss.IndexFlatIP(dim), {}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, _HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = ef_search
        return index, {"M": _HNSW_M, "ef_search": ef_search}
    lists = nlist or max(1, min(n, int(4 * math.sqrt(n))))
    if lists > n:
        raise DataError(f"an ivf index needs at least nlist={lists} vectors to train on, got {n:,}; "
                        "lower nlist or use kind flat")
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    index.nprobe = nprobe or max(1, lists // 8)
    return index, {"nlist": lists, "nprobe": index.nprobe}


def _restore_search_settings(faiss: Any, index: Any, meta: dict[str, Any]) -> None:
    """Search-time knobs are not part of faiss's file: set them again after reading."""
    settings = meta.get("settings", {})
    if meta.get("kind") == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = int(settings.get("nprobe", 1))
        ivf.make_direct_map()
    else:
        index.hnsw.efSearch = int(settings.get("ef_search", 64))
