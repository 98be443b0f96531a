"""The emoji benchmark builder renders real glyphs from the shared font."""
import pandas as pd
import pytest
from PIL import Image

from polymodal.datasets.emoji import build_emoji
from polymodal.errors import DataError


def test_build_emoji_renders_and_splits(data_dir, tmp_path):
    # A small copy of the benchmark: a few rows per split, the real font (linked, not copied).
    (tmp_path / "data" / "emoji").mkdir(parents=True)
    splits = pd.read_csv(data_dir / "emoji" / "splits.csv", dtype=str)
    small = pd.concat([splits[splits.split == s].head(3) for s in ("train", "val", "test")])
    small = pd.concat([small, splits[splits.codepoints.str.contains(" 200D ")].head(1)])  # a ZWJ sequence
    small.to_csv(tmp_path / "data" / "emoji" / "splits.csv", index=False)
    (tmp_path / "data" / "emoji" / "NotoColorEmoji.ttf").symlink_to(data_dir / "emoji" / "NotoColorEmoji.ttf")
    paths = build_emoji(tmp_path / "data", tmp_path / "work")
    tables = {k: pd.read_csv(v) for k, v in paths.items()}
    assert [len(tables[s]) for s in ("val", "test")] == [3, 3]
    assert list(tables["train"].columns) == ["image", "name", "label"]
    for row in pd.concat(tables.values()).itertuples():
        image = Image.open(tmp_path / "work" / row.image)
        assert image.mode == "RGB" and image.width == image.height > 64
        assert image.getpixel((0, 0)) == (255, 255, 255)  # composited on white
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 10  # a colour glyph, not a blank or a box


def test_missing_font_is_a_data_error(tmp_path):
    (tmp_path / "emoji").mkdir()
    (tmp_path / "emoji" / "splits.csv").write_text("codepoints,name,subgroup,group,split\n")
    with pytest.raises(DataError, match="NotoColorEmoji.ttf, which does not exist"):
        build_emoji(tmp_path, tmp_path / "work")
