"""The retrieval verbs of the command line: ``polymodal embed | index | search | zero-shot``.

Plain functions with typer annotations; ``polymodal.cli`` registers them on its app (with its
error handling). Like every command they call the library and hold no logic of their own.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from polymodal.errors import DataError

__all__ = ["embed", "index", "search", "zero_shot"]


def embed(
    model: Path = typer.Argument(..., help="model directory"),
    data: str = typer.Option(..., "--data", help="table holding the column"),
    column: str = typer.Option(..., "--column", help="text, image or audio column to embed"),
    out: Path = typer.Option(..., "--out", help="Parquet file to write (row, [id], vector)"),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="also write this column as 'id'"),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="rows per forward pass"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the table must stay inside this folder"),
    shard_spec: Optional[str] = typer.Option(None, "--shard", help="I/N: embed only the I-th of N contiguous parts "
                                             "of the table (0 <= I < N); row stays the position in the whole table"),
    allow_urls: Optional[bool] = typer.Option(None, "--allow-urls/--no-allow-urls", help="image and audio cells may "
                                              "(may not) be URLs, read over the network (default: the model's config)"),
) -> None:
    """Write one unit vector per row of a column (in the shared space of an alignment model).

    A Parquet file (or folder of Parquet shards), CSV or JSON lines table is read and embedded a
    chunk of rows at a time, and the vectors written as they come: memory does not grow with
    the table's length.
    """
    from polymodal.cli_logging import quiet
    from polymodal.modeldir import load_model
    from polymodal.outputs import atomic_file, check_output_file
    from polymodal.retrieval.embed import progress_bar

    check_output_file(out, "embeddings file")
    fitted = load_model(model, data_root=data_root)
    if allow_urls is not None:
        fitted.allow_urls = allow_urls
    chunks, n_rows, columns = _chunks(fitted, data, [column] + ([id_column] if id_column else []), shard_spec)
    if id_column is not None and id_column not in columns:
        raise DataError(f"{data}: no id column {id_column!r}; columns present: {', '.join(map(str, columns))}")
    written = seen = 0
    space = width = None
    bar = progress_bar(not quiet(), n_rows, f"embedding {column}")
    with atomic_file(out, "embeddings file") as tmp, bar as advance:
        writer = None
        try:
            for table, first in chunks:
                frame, result = _vectors(fitted, table, first, column, id_column, batch_size)
                writer = writer or _writer(tmp, frame)
                writer.write_table(_arrow(frame, writer.schema))
                written, seen = written + len(frame), seen + result.n_rows
                space, width = result.space, result.vectors.shape[1]
                advance(result.n_rows)
        finally:
            if writer is not None:
                writer.close()
    typer.echo(f"wrote {written:,} vectors ({width}-d, {space} space) of column "
               f"'{column}' to {out}" + (f"; {seen - written:,} rows had no usable input" if seen > written else ""))


def _chunks(fitted, data: str, columns: list, shard_spec: Optional[str]):
    """``((table, position of its first row), ...)``, the number of rows and the table's columns:
    chunks of the shard's rows when the table file is read in parts, else the whole shard."""
    from polymodal.data.chunks import open_chunked
    from polymodal.data.tables import shard, shard_range

    stream = open_chunked(data, columns)
    if stream is None:
        table, start = shard(fitted.read_table(data, fill_absent=False), shard_spec)
        return [(table, start)], len(table.frame), list(table.frame.columns)
    start, stop = shard_range(stream.n_rows, shard_spec)
    return (((t, t.frame.index[0]) for t in stream.chunks(start, stop)) if stop > start else
            [(_empty(stream, start), start)]), stop - start, stream.columns


def _empty(stream, start: int):
    import pandas as pd

    from polymodal.data.tables import Table

    return Table(pd.DataFrame({c: pd.Series([], dtype=object) for c in stream.read}, index=pd.RangeIndex(start, start)),
                 stream.base_dir, stream.source)


def _vectors(fitted, table, first: int, column: str, id_column: Optional[str], batch_size: int):
    """The rows of the embeddings file for one chunk (``row``, [``id``], ``vector``), and its ``Embeddings``."""
    import numpy as np
    import pandas as pd

    from polymodal.retrieval.embed import embed_column

    result = embed_column(fitted, table, column, batch_size=batch_size)
    frame = pd.DataFrame({"row": np.asarray(result.rows, dtype=np.int64) + first})
    if id_column is not None:
        frame["id"] = table.frame[id_column].iloc[result.rows].to_numpy()
    frame["vector"] = list(result.vectors.astype(np.float32))
    return frame, result


def _writer(tmp: Path, frame):
    """A Parquet writer of the embeddings file's schema: ``row`` int64, [``id``], ``vector`` float32 lists."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [pa.field("row", pa.int64())]
    if "id" in frame.columns:
        ids = pa.array(frame["id"].tolist())
        fields.append(pa.field("id", pa.string() if pa.types.is_null(ids.type) else ids.type))
    fields.append(pa.field("vector", pa.list_(pa.float32())))
    return pq.ParquetWriter(str(tmp), pa.schema(fields))


def _arrow(frame, schema):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def index(
    model: Path = typer.Argument(..., help="model directory"),
    data: str = typer.Option(..., "--data", help="table of the items to index"),
    column: str = typer.Option(..., "--column", help="text, image or audio column to index"),
    out: Path = typer.Option(..., "--out", help="index folder to write"),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="item ids (default: row number)"),
    kind: str = typer.Option("flat", "--kind", help="flat (exact) | hnsw | ivf (approximate, large collections)"),
    nlist: Optional[int] = typer.Option(None, "--nlist", min=1, help="ivf: number of lists (default 4·√N)"),
    nprobe: Optional[int] = typer.Option(None, "--nprobe", min=1, help="ivf: lists searched per query"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the table must stay inside this folder"),
) -> None:
    """Build a vector index of a column, stored with the item ids and the model it came from."""
    from polymodal.cli_logging import quiet
    from polymodal.modeldir import load_model
    from polymodal.outputs import check_output_folder
    from polymodal.retrieval.search import index_column

    check_output_folder(out, "index folder")
    fitted = load_model(model, data_root=data_root)
    options = {k: v for k, v in (("nlist", nlist), ("nprobe", nprobe)) if v is not None}
    built = index_column(fitted, model, data, column, id_column=id_column, kind=kind, progress=not quiet(),
                         **options)
    built.save(out)
    skipped = built.meta["rows_without_vector"]
    typer.echo(f"indexed {len(built):,} items of column '{column}' ({built.dim}-d, {built.meta['space']} space, "
               f"{kind}) into {out}" + (f"; {skipped:,} rows had no usable input" if skipped else ""))


def search(
    index: Path = typer.Argument(..., help="index folder (from polymodal index)"),
    text: Optional[str] = typer.Option(None, "--text", help="query text"),
    image: Optional[Path] = typer.Option(None, "--image", help="query image file"),
    audio: Optional[Path] = typer.Option(None, "--audio", help="query audio file"),
    like: Optional[List[str]] = typer.Option(None, "--like", help="item id the user liked (repeat for a profile): "
                                             "recommend similar items"),
    seen: Optional[List[str]] = typer.Option(None, "--seen", help="item id to leave out of recommendations (repeatable)"),
    k: int = typer.Option(10, "-k", "--k", help="number of results"),
    model: Optional[Path] = typer.Option(None, "--model", help="model directory (default: the one the index records)"),
    query_column: Optional[str] = typer.Option(None, "--query-column", help="model column that embeds the query"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
) -> None:
    """Nearest items to a text, an image or an audio query; or items like --like ids."""
    from polymodal.retrieval import Searcher, VectorIndex, recommend

    queries = {"text": text, "image": None if image is None else str(image),
               "audio": None if audio is None else str(audio)}
    given = [m for m, v in queries.items() if v is not None]
    if len(given) + bool(like) != 1:
        raise DataError("give exactly one query: --text, --image, --audio, or --like ID (repeatable)")
    if seen and not like:
        raise DataError("--seen filters recommendations; use it with --like")
    if like:
        results = recommend(VectorIndex.load(index), like, seen or (), k=k)
    else:
        results = Searcher.open(index, model).search(k=k, column=query_column, **queries)
    if as_json:
        typer.echo(results.to_json(orient="records"))
        return
    typer.echo(results.to_string(index=False))


def zero_shot(
    model: Path = typer.Argument(..., help="model directory of an alignment model"),
    data: str = typer.Option(..., "--data", help="table holding the column"),
    column: str = typer.Option(..., "--column", help="aligned image or audio column to classify"),
    classes: List[str] = typer.Option(..., "--classes", metavar="A,B,...", help="class names, comma-separated (or the option repeated)"),
    template: str = typer.Option("{}", "--template", help="prompt of a class, {} where its name goes, "
                                 "e.g. 'a photo of a {}'"),
    out: Optional[Path] = typer.Option(None, "--out", help="CSV to write (row, [id], predicted, one column per class)"),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="also write this column of the table"),
    text_column: Optional[str] = typer.Option(None, "--text-column", help="aligned text column that embeds the "
                                              "prompts (when the model has several)"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the table must stay inside this folder"),
    as_json: bool = typer.Option(False, "--json", help="print the scores as JSON"),
) -> None:
    """Classify a column with class names alone (no trained head): prompt similarity, as CLIP does."""
    import pandas as pd

    from polymodal.modeldir import load_model
    from polymodal.outputs import atomic_file, check_output_file
    from polymodal.retrieval.zero_shot import zero_shot as class_scores

    names = [n.strip() for value in classes for n in value.split(",") if n.strip()]
    if not names:
        raise DataError("--classes: no class names given; pass two or more, e.g. --classes cat,dog,bird")
    if "{}" not in template:
        raise DataError(f"--template {template!r} has no {{}} where the class name goes, e.g. 'a photo of a {{}}'")
    if out is not None:
        check_output_file(out, "zero-shot scores file")
    fitted = load_model(model, data_root=data_root)
    table = fitted.read_table(data, fill_absent=False)
    if id_column is not None and id_column not in table.frame.columns:
        raise DataError(f"{data}: no id column {id_column!r}; columns present: {', '.join(map(str, table.frame.columns))}")
    scores = class_scores(fitted, table, column, names, template=template, text_column=text_column)
    scores.index = pd.RangeIndex(len(scores), name="row")
    if id_column is not None:
        scores.insert(0, id_column, table.frame[id_column].to_numpy())
    if out is not None:
        with atomic_file(out, "zero-shot scores file") as tmp:
            scores.to_csv(tmp)
    if as_json:
        typer.echo(scores.reset_index().to_json(orient="records"))
    else:
        typer.echo(scores.to_string(float_format=lambda v: f"{v:.4f}"))
    missing = int(scores["predicted"].isna().sum())
    typer.echo(f"{len(scores) - missing:,} rows scored against {len(names)} classes" +
               (f"; {missing:,} rows had no usable {column!r}" if missing else "") +
               (f"; scores: {out}" if out is not None else ""), err=True)
