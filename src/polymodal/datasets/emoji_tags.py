"""The emoji benchmark with its CLDR keywords and both levels of its grouping, for multi-label
and multi-output models: each rendered emoji with ``image``, ``name``, ``keywords`` (the CLDR
annotation keywords that at least ``min_count`` training emoji share; a list, possibly empty),
``group`` and ``subgroup``. Only emoji that ``cldr-annotations-en.xml`` annotates are kept (that
file annotates base emoji; skin-tone variants live in the derived file, which this leaves out).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pandas as pd

from polymodal.datasets.emoji import build_emoji
from polymodal.datasets.root import data_root
from polymodal.errors import DataError

__all__ = ["build_emoji_tags", "cldr_keywords"]

_VARIATION = "\ufe0f"  # the annotation file's code points have it removed


def cldr_keywords(path: Path) -> dict[str, list[str]]:
    """``{emoji text without U+FE0F: [keywords]}`` from a CLDR annotations file (not its ``tts`` names)."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"cannot read the CLDR annotations {path}: {exc}; restore the benchmark file") from None
    out = {}
    for node in root.iter("annotation"):
        if node.get("type") != "tts" and node.text:
            out[node.get("cp", "")] = [k.strip() for k in node.text.split("|") if k.strip()]
    return out


def build_emoji_tags(data_dir: Path | str | None, work_dir: Path | str, min_count: int = 10) -> dict[str, Path]:
    """Write ``work_dir/tags-{train,val,test}.parquet`` (rendering the images as ``build_emoji`` does).

    Returns:
        The three tables' paths; their image paths are relative to ``work_dir``.

    Raises:
        DataError: the benchmark's files are missing or malformed.
    """
    root = data_root(data_dir)
    annotations = root / "emoji" / "cldr-annotations-en.xml"
    if not annotations.is_file():
        raise DataError(f"the emoji keywords need {annotations}, which does not exist; point POLYMODAL_DATA "
                        "/ --data-dir at the folder holding emoji/")
    work_dir = Path(work_dir)
    rendered = build_emoji(root, work_dir)
    splits = pd.read_csv(root / "emoji" / "splits.csv", dtype=str, keep_default_na=False)
    keywords = cldr_keywords(annotations)
    texts = ["".join(chr(int(cp, 16)) for cp in c.split()).replace(_VARIATION, "") for c in splits["codepoints"]]
    splits["keywords"] = [keywords.get(t) for t in texts]
    frames = {s: pd.read_csv(rendered[s]) for s in ("train", "val", "test")}
    tagged = {}
    for split, frame in frames.items():
        meta = splits[splits["split"] == split].reset_index(drop=True)
        frame = frame.assign(keywords=meta["keywords"], group=meta["group"], subgroup=meta["subgroup"])
        tagged[split] = frame[frame["keywords"].notna()].drop(columns=["label"]).reset_index(drop=True)
    counts = Counter(k for tags in tagged["train"]["keywords"] for k in tags)
    kept = {k for k, n in counts.items() if n >= min_count}
    paths = {}
    for split, frame in tagged.items():
        frame["keywords"] = [sorted(k for k in tags if k in kept) for tags in frame["keywords"]]
        paths[split] = work_dir / f"tags-{split}.parquet"
        frame.to_parquet(paths[split], index=False)
    return paths
