"""The emoji benchmark of ``$POLYMODAL_DATA`` (see its README), turned into tables.

:func:`build_emoji` renders every emoji of ``emoji/splits.csv`` with the Noto Color Emoji
font and writes train/val/test CSVs with ``image`` (the rendering), ``name`` (its CLDR
name) and ``label`` (its group, e.g. ``Smileys & Emotion``): predict the group from image
and name. The split is the benchmark's (by base emoji, so skin-tone variants of one emoji
stay together).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from polymodal.datasets.root import data_root
from polymodal.errors import DataError

__all__ = ["build_emoji", "render_emoji"]

FONT_SIZE = 109  # the one size the font's colour bitmaps come in
_COLUMNS = ("codepoints", "name", "group", "split")
_SPLITS = ("train", "val", "test")


def render_emoji(font: ImageFont.FreeTypeFont, text: str) -> Image.Image:
    """One emoji drawn in colour, cropped to its ink, centred on a white square (RGB).

    Raises:
        DataError: the font draws nothing for ``text``.
    """
    canvas = Image.new("RGBA", (3 * FONT_SIZE, 2 * FONT_SIZE), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((FONT_SIZE // 2, FONT_SIZE // 2), text, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    if box is None:
        raise DataError(f"the emoji font draws nothing for {' '.join(f'U+{ord(c):04X}' for c in text)}")
    glyph = canvas.crop(box)
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return square.convert("RGB")


def build_emoji(data_dir: Path | str | None, work_dir: Path | str) -> dict[str, Path]:
    """Write ``work_dir/{train,val,test}.csv`` and ``work_dir/images/<codepoints>.png``.

    Each row has ``image`` (relative to ``work_dir``), ``name`` and ``label`` (the group).
    Images already rendered are left alone, so a second call is cheap.

    Raises:
        DataError: no data folder, ``emoji/splits.csv`` or the font missing or malformed.
    """
    root = data_root(data_dir)
    folder = root / "emoji"
    splits_path, font_path = folder / "splits.csv", folder / "NotoColorEmoji.ttf"
    for path in (splits_path, font_path):
        if not path.is_file():
            raise DataError(f"the emoji benchmark needs {path}, which does not exist; point "
                            "POLYMODAL_DATA / --data-dir at the folder holding emoji/")
    table = pd.read_csv(splits_path, dtype=str, keep_default_na=False)
    lacking = [c for c in _COLUMNS if c not in table.columns]
    if lacking:
        raise DataError(f"{splits_path}: expected columns {list(_COLUMNS)}, got {list(table.columns)}; "
                        "restore the benchmark file")
    bad = sorted(set(table["split"]) - set(_SPLITS))
    if bad:
        raise DataError(f"{splits_path}: split must be one of {list(_SPLITS)}, got {bad}")
    font = ImageFont.truetype(str(font_path), FONT_SIZE)
    work_dir = Path(work_dir)
    (work_dir / "images").mkdir(parents=True, exist_ok=True)
    images = []
    for codepoints in table["codepoints"]:
        name = "images/" + codepoints.replace(" ", "_") + ".png"
        target = work_dir / name
        if not target.is_file():
            text = "".join(chr(int(cp, 16)) for cp in codepoints.split())
            buffer = io.BytesIO()
            render_emoji(font, text).save(buffer, format="PNG")
            partial = target.with_suffix(".png.part")
            partial.write_bytes(buffer.getvalue())
            partial.replace(target)  # an image is either whole or absent
        images.append(name)
    out = pd.DataFrame({"image": images, "name": table["name"], "label": table["group"]})
    paths = {}
    for split in _SPLITS:
        paths[split] = work_dir / f"{split}.csv"
        out[np.asarray(table["split"] == split)].to_csv(paths[split], index=False)
    return paths
