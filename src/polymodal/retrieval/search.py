"""Index a column of a table with a fitted model, and search the index with a text, an image
or an audio clip.

``index_column`` embeds a column (``retrieval.embed.embed_column``) and builds a ``VectorIndex`` that
records the model it came from: its folder and the sha256 of its manifest. ``Searcher``
opens an index with that model, refuses a model whose files changed since, embeds a query
of any modality the model aligns with the indexed column, and returns the nearest items.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from polymodal.errors import DataError, ModelDirError
from polymodal.fitted import FittedModel, as_fitted
from polymodal.modalities import get_modality, modalities
from polymodal.modeldir import load_model
from polymodal.retrieval.embed import embed_column, embedding_space, query_table
from polymodal.retrieval.index import VectorIndex, model_fingerprint

__all__ = ["index_column", "Searcher", "results_frame"]

log = logging.getLogger("polymodal")

def index_column(fitted: Any, model_dir: str | Path, data: Any, column: str,
                 id_column: str | None = None, kind: str = "flat", progress: bool = False,
                 **options: Any) -> VectorIndex:
    """Embed ``column`` of every row of ``data`` and index the vectors under their ids.

    Args:
        fitted: the ``FittedModel`` (or fitted ``Predictor``) loaded from ``model_dir``.
        model_dir: the model directory (recorded, with its fingerprint, in the index).
        id_column: the column holding each item's id; default: the row number (0-based).
        kind: ``flat`` (exact), ``hnsw`` or ``ivf``; ``options`` go to ``VectorIndex.build``.

    Raises:
        DataError: the id column is missing, has empty or repeated ids; nothing to index.
    """
    fitted = as_fitted(fitted)
    table = fitted.read_table(data, fill_absent=False)
    if id_column is not None and id_column not in table.frame.columns:
        raise DataError(f"{table.source}: no id column {id_column!r}; columns present: "
                        f"{', '.join(map(str, table.frame.columns))}")
    embeddings = embed_column(fitted, table, column, progress=progress)
    if id_column is None:
        ids = embeddings.rows.tolist()
    else:
        values = table.frame[id_column].iloc[embeddings.rows]
        if values.isna().any():
            raise DataError(f"{table.source}: id column {id_column!r} is empty in {int(values.isna().sum()):,} "
                            "rows; give every row an id")
        ids = values.tolist()
    pre = next(p for p in fitted.preprocessors.values() if list(p.columns) == [column])
    meta = {
        "column": column, "modality": pre.modality, "space": embeddings.space, "id_column": id_column,
        "model": {"path": str(Path(model_dir).resolve()), "manifest_sha256": model_fingerprint(model_dir)},
        "source": str(table.source), "rows_without_vector": int(embeddings.n_rows - len(embeddings.rows)),
    }
    return VectorIndex.build(embeddings.vectors, ids, kind=kind, meta=meta, **options)


def results_frame(index: VectorIndex, scores: np.ndarray, positions: np.ndarray,
                  exclude: set[str] | None = None, k: int | None = None) -> pd.DataFrame:
    """``rank, id, score`` rows (one query), leaving out ``exclude`` ids, at most ``k`` rows."""
    rows = []
    for score, pos in zip(scores.tolist(), positions.tolist()):
        if pos < 0:  # faiss pads with -1 when an approximate index finds fewer than k
            continue
        item = index.ids[pos]
        if exclude and str(item) in exclude:
            continue
        rows.append({"rank": len(rows) + 1, "id": item, "score": round(float(score), 6)})
        if k is not None and len(rows) == k:
            break
    return pd.DataFrame(rows, columns=["rank", "id", "score"])


class Searcher:
    """An index together with the model that embeds its queries.

    Args:
        index: the ``VectorIndex``.
        fitted: the ``FittedModel`` the index was built with.
    """

    def __init__(self, index: VectorIndex, fitted: FittedModel):
        self.index = index
        self.fitted = fitted

    @classmethod
    def open(cls, index_dir: str | Path, model_dir: str | Path | None = None) -> "Searcher":
        """Open an index and its model (the folder the index records, or ``model_dir``).

        Raises:
            ModelDirError: the model is missing, or is not the version the index was built by.
        """
        index = VectorIndex.load(index_dir)
        recorded = index.meta.get("model", {})
        folder = Path(model_dir) if model_dir is not None else Path(recorded.get("path", ""))
        if not (folder / "manifest.json").is_file():
            raise ModelDirError(f"index {index_dir} was built with the model in {folder}, which is not there "
                                "any more; pass --model DIR with that model, or build the index again")
        found = model_fingerprint(folder)
        if found != recorded.get("manifest_sha256"):
            raise ModelDirError(
                f"index {index_dir} was built by another version of the model: the index records model "
                f"manifest {str(recorded.get('manifest_sha256'))[:12]}…, the model in {folder} has "
                f"{found[:12]}…. Its vectors do not match this model's; rebuild the index with "
                f"`polymodal index {folder} --data TABLE --column {index.meta.get('column')} --out {index_dir}`")
        return cls(index, load_model(folder))

    def query_columns(self) -> dict[str, list[str]]:
        """Modality -> the model's columns whose vectors share the indexed column's space."""
        model, column = self.fitted.model, self.index.meta["column"]
        if embedding_space(model, column) == "aligned":
            names = model.aligner.names
        else:
            names = [column]
        out: dict[str, list[str]] = {}
        for name in names:
            out.setdefault(self.fitted.preprocessors[name].modality, []).append(name)
        return out

    def embed_query(self, value: str | bytes, modality: str, column: str | None = None) -> np.ndarray:
        """``[1, E]`` vector of one query (a text; the path of an image / audio file, or its bytes).

        Raises:
            DataError: no column of this modality shares the index's space; the query is
                empty or unreadable.
        """
        choices = self.query_columns()
        where = ", ".join(f"{m} ({', '.join(c)})" for m, c in sorted(choices.items()))
        if modality not in choices:
            raise DataError(
                f"this index holds {self.index.meta.get('modality')} column "
                f"'{self.index.meta.get('column')}'; the model that built it can compare it with "
                f"{where} queries, not {modality}: query with " +
                " or ".join(f"--{m}" for m in sorted(choices)))
        if column is None:
            if len(choices[modality]) > 1:
                raise DataError(f"the model has several {modality} columns in this space "
                                f"({', '.join(choices[modality])}); pick one with --query-column")
            column = choices[modality][0]
        elif column not in choices[modality]:
            raise DataError(f"--query-column {column!r} is not a {modality} column in this index's space; "
                            f"choose from {where}")
        if get_modality(modality).cells_are_files and isinstance(value, (bytes, bytearray)):
            value = {"bytes": bytes(value)}  # the file's content (an upload): no path is opened
        elif get_modality(modality).cells_are_files:
            path = Path(value).expanduser()
            if not path.is_file():
                raise DataError(f"query {modality} file {str(path)!r} not found; give the path of a file")
            value = str(path.resolve())
        elif not value.strip():
            raise DataError("the text query is empty; give some words to search for")
        else:
            _check_unicode(value)
        embeddings = embed_column(self.fitted, query_table(column, value), column)
        if len(embeddings.rows) == 0:
            raise DataError(f"the {modality} query could not be used (see the log); try another one")
        return embeddings.vectors

    def search(self, k: int = 10, column: str | None = None, **query: str | bytes) -> pd.DataFrame:
        """Nearest items to one query: ``search(text="red apple")``, ``search(image="q.png")``
        or ``search(audio="q.wav")``; a file query may also be the file's bytes.

        Returns:
            ``rank, id, score`` (cosine similarity), best first.
        """
        given = {m: v for m, v in query.items() if v is not None}
        unknown = sorted(set(given) - {m.name for m in modalities() if m.one_column})
        if unknown or len(given) != 1:
            raise DataError("give exactly one query: text=..., image=... or audio=... "
                            f"(got {', '.join(sorted(given)) or 'none'})")
        (modality, value), = given.items()
        vector = self.embed_query(value, modality, column)
        scores, positions = self.index.search(vector, k)
        return results_frame(self.index, scores[0], positions[0])


def _check_unicode(text: str) -> None:
    """A text query must be valid Unicode: bytes that are not UTF-8 in a command line arrive as
    lone surrogates (``\\udcff`` for the byte 0xff), which nothing can encode.

    Raises:
        DataError: naming the first bad character and its position.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        what = f"the byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF else f"U+{ord(bad):04X}"
        raise DataError(f"the text query is not valid UTF-8 text: {what} at position {exc.start}; "
                        "give the query in UTF-8 (check the terminal's encoding)") from None
