"""Tests of data/tables.py, formats.py and folders.py: every table format, folder layouts, and every reader error."""
from __future__ import annotations

import json
import logging
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polymodal.data.tables import Table, read_folder, read_table
from polymodal.errors import ConfigError, DataError

FRAME = pd.DataFrame({"text": ["a cat", "a dog", "two birds"], "n": [1, 2, 3], "y": ["cat", "dog", "bird"]})


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, dtype=np.uint8)).save(path)
    return path


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(8000)
        f.writeframes(np.zeros(80, dtype=np.int16).tobytes())
    return path


def _write(path: Path, fmt: str) -> Path:
    writers = {
        "csv": lambda p: FRAME.to_csv(p, index=False),
        "csv.gz": lambda p: FRAME.to_csv(p, index=False),
        "tsv": lambda p: FRAME.to_csv(p, sep="\t", index=False),
        "parquet": lambda p: FRAME.to_parquet(p, index=False),
        "pq": lambda p: FRAME.to_parquet(p, index=False),
        "jsonl": lambda p: FRAME.to_json(p, orient="records", lines=True),
        "ndjson": lambda p: FRAME.to_json(p, orient="records", lines=True),
        "json": lambda p: FRAME.to_json(p, orient="records"),
    }
    writers[fmt](path)
    return path


# --- formats --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "tsv", "parquet", "pq", "jsonl", "ndjson", "json"])
def test_each_format_reads(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path / f"train.{fmt}", fmt)
    table = read_table(path)
    assert isinstance(table, Table)
    pd.testing.assert_frame_equal(table.frame, FRAME, check_dtype=False)
    assert table.base_dir == tmp_path.resolve()
    assert table.source == str(path)


def test_json_file_holding_json_lines_reads(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    FRAME.to_json(path, orient="records", lines=True)
    pd.testing.assert_frame_equal(read_table(path).frame, FRAME, check_dtype=False)


def test_string_path_and_base_dir_override(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "csv")
    table = read_table(str(path), base_dir=tmp_path / "media")
    assert table.base_dir == (tmp_path / "media").resolve()


def test_dataframe_keeps_frame_and_uses_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    table = read_table(FRAME)
    assert table.frame is FRAME
    assert table.base_dir == Path.cwd()
    assert table.source == "DataFrame"
    assert read_table(FRAME, base_dir=tmp_path / "x").base_dir == (tmp_path / "x").resolve()


def test_column_names_are_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a, b\n1,2\n")
    assert list(read_table(path).frame.columns) == ["a", " b"]


# --- reader errors --------------------------------------------------------------------


def test_missing_relative_file_names_path_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="not found") as info:
        read_table("nope/train.csv")
    assert "nope/train.csv" in str(info.value) and str(tmp_path) in str(info.value)


def test_missing_absolute_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found: .*train.csv"):
        read_table(tmp_path / "train.csv")


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "train.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(DataError) as info:
        read_table(path)
    message = str(info.value)
    assert "'.xlsx'" in message and ".csv" in message and ".parquet" in message and ".jsonl" in message


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("t.csv", b"a,b\n1,2\n3,4,5\n", "Expected 2 fields"),
        ("t.parquet", b"not parquet at all", "t.parquet"),
        ("t.jsonl", b'{"a": 1}\n{"a": 2,\n', "line 2"),
        ("t.json", b'[{"a": 1}, {"a": ]', "not valid JSON (Expecting value"),
        ("t.json", b'[{"a": 1},\n {"a": ]', "not a JSON array of records"),
        ("t.json", b'{"a": [1, 2]}', "got a JSON dict"),
        ("t.json", b'[{"a": 1}, [2]]', "got list at item 1"),
        ("t.jsonl", b'{"a": 1}\n[1, 2]\n', "line 2 is a JSON list"),
        ("t.jsonl", b'{"a": 1, "a": 2}\n', "duplicate key 'a'"),
        ("t.csv", "a,b\ncaf\u00e9,1\n".encode("latin-1"), "UTF-8"),
    ],
)
def test_malformed_file_gives_parser_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match="cannot read") as info:
        read_table(path)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "content"), [("t.csv", "a,b\n"), ("t.json", "[]"), ("t.jsonl", "")])
def test_table_without_rows(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match="has no (rows|columns)"):
        read_table(path)


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n")
    with pytest.raises(DataError, match=r"t\.csv has no rows"):
        read_table(path)


def test_empty_file_has_no_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("")
    with pytest.raises(DataError, match="has no columns"):
        read_table(path)


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    FRAME.head(0).to_parquet(path)
    with pytest.raises(DataError, match="has no rows"):
        read_table(path)


@pytest.mark.parametrize(
    ("name", "content"), [("t.csv", "a,b,a,c,c\n1,2,3,4,5\n"), ("t.tsv", "a\tb\ta\tc\tc\n1\t2\t3\t4\t5\n")]
)
def test_duplicate_header_is_caught_before_pandas_mangles_it(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match="duplicate column names: 'a', 'c'"):
        read_table(path)


def test_duplicate_columns_in_dataframe() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["x", "x"])
    with pytest.raises(DataError, match="duplicate column names: 'x'"):
        read_table(frame)


def test_empty_column_name(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,,c\n1,2,3\n")
    with pytest.raises(DataError, match="empty column name at position 2"):
        read_table(path)


def test_saved_pandas_index_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    FRAME.to_csv(path)  # index=True writes an unnamed first column
    with pytest.raises(DataError, match="position 1 .*index=False"):
        read_table(path)


def test_dataframe_without_rows_or_columns() -> None:
    with pytest.raises(DataError, match="DataFrame has no rows"):
        read_table(FRAME.head(0))
    with pytest.raises(DataError, match="DataFrame has no columns"):
        read_table(pd.DataFrame())


def test_dataframe_with_non_text_column_names() -> None:
    with pytest.raises(DataError, match="not strings .*astype\\(str\\)"):
        read_table(pd.DataFrame(np.zeros((2, 2))))


def test_errors_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read_table(tmp_path / "missing.csv")


# --- folders --------------------------------------------------------------------------


def _image_folder(root: Path) -> Path:
    _png(root / "dog" / "b.png")
    _png(root / "cat" / "002.PNG")
    _png(root / "cat" / "001.jpg")
    _png(root / "cat" / "sub" / "003.png")
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "cat" / ".hidden.png").write_bytes(b"junk")
    _png(root / ".cache" / "x.png")
    (root / "README.txt").write_text("about")
    return root


def test_class_folders(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "pets")
    table = read_table(root)
    assert table.base_dir == root.resolve() and table.source == str(root)
    assert table.frame.to_dict("list") == {
        "image": ["cat/001.jpg", "cat/002.PNG", "cat/sub/003.png", "dog/b.png"],
        "label": ["cat", "cat", "cat", "dog"],
    }


def test_audio_class_folders(tmp_path: Path) -> None:
    for name in ["one/a.wav", "two/b.wav", "two/c.WAV"]:
        _wav(tmp_path / name)
    frame = read_folder(tmp_path).frame
    assert list(frame.columns) == ["audio", "label"]
    assert frame["label"].tolist() == ["one", "two", "two"]


def test_metadata_joins_text_and_keeps_files_without_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _image_folder(tmp_path)
    pd.DataFrame(
        {"file_name": ["dog/b.png", "./cat/001.jpg"], "caption": ["a dog", "a cat"], "size": [3, 4]}
    ).to_csv(root / "metadata.csv", index=False)
    with caplog.at_level(logging.INFO, logger="polymodal"):
        frame = read_folder(root).frame
    assert list(frame.columns) == ["image", "label", "caption", "size"]
    assert frame["caption"].tolist()[0] == "a cat" and frame["caption"].tolist()[3] == "a dog"
    assert frame["caption"].isna().sum() == 2 and frame["size"].isna().sum() == 2
    assert "2 of 4 files have no row in metadata.csv" in caplog.text


def test_metadata_label_wins_where_set(tmp_path: Path) -> None:
    root = _image_folder(tmp_path)
    rows = [{"file_name": "dog/b.png", "label": "puppy"}, {"file_name": "cat/001.jpg", "label": None}]
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    frame = read_folder(root).frame
    assert frame["label"].tolist() == ["cat", "cat", "cat", "puppy"]


def test_flat_layout_with_metadata(tmp_path: Path) -> None:
    for name in ["b.png", "a.png", "c.png"]:
        _png(tmp_path / name)
    pd.DataFrame({"file_name": ["a.png", "b.png", "c.png"], "kind": ["x", "y", "x"], "label": [0, 1, 0]}).to_parquet(
        tmp_path / "metadata.parquet"
    )
    frame = read_folder(tmp_path).frame
    assert frame.to_dict("list") == {"image": ["a.png", "b.png", "c.png"], "label": [0, 1, 0], "kind": ["x", "y", "x"]}


def test_files_in_one_folder_with_metadata_take_no_folder_label(tmp_path: Path) -> None:
    for name in ["a.png", "b.png"]:
        _png(tmp_path / "images" / name)
    pd.DataFrame({"file_name": ["images/a.png", "images/b.png"], "species": ["x", "y"]}).to_csv(
        tmp_path / "metadata.csv", index=False
    )
    assert list(read_folder(tmp_path).frame.columns) == ["image", "species"]


def test_folder_of_files_without_classes_or_metadata(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    assert read_folder(tmp_path).frame.to_dict("list") == {"image": ["a.png"]}


def test_metadata_naming_missing_files(tmp_path: Path) -> None:
    root = _image_folder(tmp_path)
    names = ["dog/b.png", "dog/x1.png", "dog/x2.png", "dog/x3.png", "dog/x4.png"]
    pd.DataFrame({"file_name": names, "t": list("abcde")}).to_csv(root / "metadata.csv", index=False)
    with pytest.raises(DataError, match="4 rows name image files that are not in") as info:
        read_folder(root)
    assert "dog/x1.png, dog/x2.png, dog/x3.png)" in str(info.value)


def test_metadata_without_file_name(tmp_path: Path) -> None:
    root = _image_folder(tmp_path)
    pd.DataFrame({"path": ["dog/b.png"]}).to_csv(root / "metadata.csv", index=False)
    with pytest.raises(DataError, match="no 'file_name' column; columns are: path"):
        read_folder(root)


def test_metadata_repeating_a_file(tmp_path: Path) -> None:
    root = _image_folder(tmp_path)
    pd.DataFrame({"file_name": ["dog/b.png", "dog/b.png"]}).to_csv(root / "metadata.csv", index=False)
    with pytest.raises(DataError, match="named by more than one row .*dog/b.png"):
        read_folder(root)


def test_two_metadata_files(tmp_path: Path) -> None:
    root = _image_folder(tmp_path)
    (root / "metadata.csv").write_text("file_name\ndog/b.png\n")
    (root / "metadata.jsonl").write_text('{"file_name": "dog/b.png"}\n')
    with pytest.raises(DataError, match="2 metadata files .*metadata.csv, metadata.jsonl"):
        read_folder(root)


def test_metadata_with_column_named_like_the_paths(tmp_path: Path) -> None:
    root = _image_folder(tmp_path)
    pd.DataFrame({"file_name": ["dog/b.png"], "image": ["x"]}).to_csv(root / "metadata.csv", index=False)
    with pytest.raises(DataError, match="column 'image'"):
        read_folder(root)


def test_images_and_audio_in_one_folder(tmp_path: Path) -> None:
    _png(tmp_path / "cat" / "a.png")
    _wav(tmp_path / "cat" / "a.wav")
    with pytest.raises(DataError, match=r"1 audio, 1 image.*table") as info:
        read_folder(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_folder_without_media(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="holds no image or audio files .*\\.png"):
        read_folder(tmp_path)


def test_folder_source_rejects_other_base_dir(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "pets")
    with pytest.raises(ConfigError, match="base_dir"):
        read_table(root, base_dir=tmp_path)
    assert read_table(root, base_dir=root).base_dir == root.resolve()
