"""Tables read a chunk at a time: every chunk has the whole table's columns and dtypes, rows are
numbered as in the whole table, a range reads only its rows."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from polymodal.data.chunks import open_chunked
from polymodal.data.tables import read_table
from polymodal.errors import DataError

N = 500


def _frame() -> pd.DataFrame:
    """Columns whose dtype a chunk alone would get wrong: a gap, words, booleans with a gap, a
    column that empties, numbers then words."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "i": np.arange(N),
        "gap": [None if k == 450 else k for k in range(N)],  # ints, one missing near the end: float
        "txt": [f"{k:03d}" if k < 400 else f"w{k}" for k in range(N)],  # "007" must stay text
        "flag": [True, False] * (N // 2),
        "flag_gap": [None if k == 470 else bool(k % 2) for k in range(N)],
        "late_empty": [None if k > 250 else "x" for k in range(N)],
        "f": rng.normal(size=N),
        "label": rng.choice(["a", "b"], N),
    })


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chunks")
    frame = _frame()
    frame.to_csv(folder / "t.csv", index=False)
    with gzip.open(folder / "t.tsv.gz", "wt") as fh:
        frame.to_csv(fh, sep="\t", index=False)
    frame.to_json(folder / "t.jsonl", orient="records", lines=True)
    frame.to_parquet(folder / "t.parquet", row_group_size=64)
    (folder / "shards").mkdir()
    for k, start in enumerate(range(0, N, 180)):
        frame.iloc[start:start + 180].to_parquet(folder / "shards" / f"part-{k}.parquet", row_group_size=50)
    (folder / "shards" / "_SUCCESS").write_text("")
    return folder


@pytest.mark.parametrize("name", ["t.csv", "t.tsv.gz", "t.jsonl", "t.parquet", "shards"])
def test_every_chunk_has_the_whole_tables_dtypes_and_rows(files, name):
    whole = read_table(files / name).frame.reset_index(drop=True)
    stream = open_chunked(files / name)
    assert stream.n_rows == N and stream.columns == list(whole.columns)
    chunks = list(stream.chunks(chunk_rows=60))
    assert [len(c.frame) for c in chunks] == [60] * 8 + [20]
    for chunk in chunks:
        frame = chunk.frame
        assert frame.dtypes.to_dict() == whole.dtypes.to_dict(), chunk.source
        pd.testing.assert_frame_equal(frame, whole.loc[frame.index])  # index = position in the whole table
    assert chunks[1].source.endswith("(rows 60 to 119)")
    assert chunks[0].frame["txt"].iloc[7] == "007" and chunks[0].frame["gap"].dtype == np.float64


@pytest.mark.parametrize("name", ["t.csv", "t.jsonl", "shards"])
def test_a_range_reads_its_rows_and_a_column_subset_its_columns(files, name):
    whole = read_table(files / name).frame.reset_index(drop=True)
    stream = open_chunked(files / name, columns=["txt", "gap", "nope"])
    assert stream.read == ["gap", "txt"]  # in the table's order; what it lacks is not read
    part = pd.concat([c.frame for c in stream.chunks(start=167, stop=333, chunk_rows=50)])
    assert list(part.index) == list(range(167, 333))
    pd.testing.assert_frame_equal(part, whole.loc[167:332, ["gap", "txt"]])
    assert list(stream.chunks(start=N, stop=N)) == []


def test_a_folder_of_parquet_shards_is_one_table(files, tmp_path):
    table = read_table(files / "shards")
    assert table.base_dir == (files / "shards").resolve()
    pd.testing.assert_frame_equal(table.frame, _frame().astype({"gap": float}))
    (tmp_path / "mixed").mkdir()
    _frame().to_parquet(tmp_path / "mixed" / "a.parquet")
    (tmp_path / "mixed" / "notes.txt").write_text("not a shard")
    assert open_chunked(tmp_path / "mixed") is None  # not a Parquet folder: read as a class folder


def test_shards_whose_columns_conflict_are_one_clear_error(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "p0.parquet")
    pd.DataFrame({"a": ["x", "y"]}).to_parquet(tmp_path / "p1.parquet")
    with pytest.raises(DataError, match=f"cannot read {tmp_path}"):
        read_table(tmp_path)


def test_an_integer_gap_in_a_later_shard_makes_every_chunk_float(tmp_path):
    pd.DataFrame({"n": [1, 2, 3]}).to_parquet(tmp_path / "p0.parquet")
    pd.DataFrame({"n": pd.array([4, None], dtype="Int64")}).to_parquet(tmp_path / "p1.parquet")
    pd.DataFrame({"other": [1.0]}).to_parquet(tmp_path / "p2.parquet")  # a shard without the column
    first = next(open_chunked(tmp_path).chunks(chunk_rows=2)).frame
    assert first["n"].dtype == np.float64 and first["n"].tolist() == [1.0, 2.0]


def test_a_bad_json_line_is_named_by_its_line_in_the_whole_file(tmp_path):
    lines = [f'{{"a": {k}}}' for k in range(300)] + ["{not json"]
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 301"):
        open_chunked(tmp_path / "t.jsonl")


def test_what_cannot_be_read_in_parts_is_read_whole(tmp_path):
    _frame().to_json(tmp_path / "t.json", orient="records")
    assert open_chunked(tmp_path / "t.json") is None
    assert open_chunked(_frame()) is None
    assert open_chunked(tmp_path / "absent.csv") is None
