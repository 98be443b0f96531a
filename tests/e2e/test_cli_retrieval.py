"""Alignment, embed, index and search from the command line, as the README runs them, on real
emoji (rendered from the benchmark's font, with their CLDR names)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("faiss")


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def emoji_table(data_dir: Path, folder: Path, n: int = 40) -> pd.DataFrame:
    """``n`` emoji spread over the benchmark: id (code points), name, image (rendered PNG)."""
    from PIL import ImageFont

    from polymodal.datasets.emoji import FONT_SIZE, render_emoji

    splits = pd.read_csv(data_dir / "emoji" / "splits.csv", dtype=str)
    chosen = splits.iloc[:: len(splits) // n].head(n)
    font = ImageFont.truetype(str(data_dir / "emoji" / "NotoColorEmoji.ttf"), FONT_SIZE)
    (folder / "img").mkdir(parents=True)
    rows = []
    for codepoints, name in zip(chosen["codepoints"], chosen["name"]):
        path = f"img/{codepoints.replace(' ', '_')}.png"
        render_emoji(font, "".join(chr(int(c, 16)) for c in codepoints.split())).save(folder / path)
        rows.append({"id": codepoints, "name": name, "image": path})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_align_then_embed_index_search_recommend(data_dir, tmp_path):
    table = emoji_table(data_dir, tmp_path)
    table.to_csv(tmp_path / "emoji.csv", index=False)
    config = tmp_path / "align.yaml"
    config.write_text(yaml.safe_dump({
        "problem_type": "alignment",
        "columns": {"id": "ignore", "name": "text", "image": "image"},
        "align": {"columns": ["name", "image"], "loss": "siglip", "dim": 16},
        "text": {"encoder": {"name": "gru", "embed_dim": 16, "hidden_size": 16}},
        "image": {"preprocess": {"size": 24}, "encoder": {"name": "cnn", "channels": [8, 16]}},
        "training": {"max_epochs": 3, "batch_size": 16, "progress_bar": False},
    }))
    model, index, data = tmp_path / "model", tmp_path / "index", str(tmp_path / "emoji.csv")
    fitted = run("fit", "--train", data, "--config", str(config), "--out", str(model))
    assert fitted.returncode == 0, fitted.stderr
    assert "name_to_image_recall@1" in json.loads(fitted.stdout)["tuning"]

    scored = run("evaluate", str(model), "--data", data, "--json")
    assert scored.returncode == 0, scored.stderr
    metrics = json.loads(scored.stdout)
    assert metrics["name_to_image_queries"] == 40 and 0.0 <= metrics["image_to_name_mrr"] <= 1.0

    embedded = run("embed", str(model), "--data", data, "--column", "name", "--out", str(tmp_path / "names.parquet"))
    assert embedded.returncode == 0, embedded.stderr
    assert pd.read_parquet(tmp_path / "names.parquet")["vector"].map(len).eq(16).all()
    second = run("embed", str(model), "--data", data, "--column", "name", "--out", str(tmp_path / "half.parquet"),
                 "--shard", "1/2")
    assert second.returncode == 0, second.stderr
    half, whole = pd.read_parquet(tmp_path / "half.parquet"), pd.read_parquet(tmp_path / "names.parquet")
    assert half["row"].tolist() == list(range(20, 40))  # positions in the whole table
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(half["vector"], whole["vector"].iloc[20:]))

    built = run("index", str(model), "--data", data, "--column", "image", "--id-column", "id", "--out", str(index))
    assert built.returncode == 0 and "indexed 40 items" in built.stdout, built.stderr
    assert json.loads((index / "index.json").read_text())["model"]["path"] == str(model.resolve())

    found = run("search", str(index), "--text", table["name"][3], "-k", "5", "--json")
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == 5
    garbled = run("search", str(index), "--text", "caf\udcff", "-k", "5")  # the byte 0xff on the command line
    assert garbled.returncode == 2 and "not valid UTF-8 text: the byte 0xff at position 3" in garbled.stderr
    assert "Traceback" not in garbled.stderr
    same = run("search", str(index), "--image", str(tmp_path / table["image"][7]), "-k", "1", "--json")
    assert same.returncode == 0 and json.loads(same.stdout)[0]["id"] == table["id"][7], same.stderr
    liked = run("search", str(index), "--like", table["id"][0], "--like", table["id"][1],
                "--seen", table["id"][2], "-k", "3", "--json")
    assert liked.returncode == 0, liked.stderr
    assert not {table["id"][i] for i in range(3)} & {r["id"] for r in json.loads(liked.stdout)}

    wrong = run("search", str(index), "--audio", str(tmp_path / table["image"][0]))
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: this index holds image column 'image'")
    assert "Traceback" not in wrong.stderr

    refit = run("fit", "--train", data, "--config", str(config), "--out", str(model), "--seed", "1")
    assert refit.returncode == 0, refit.stderr
    stale = run("search", str(index), "--text", "smile")
    assert stale.returncode == 2 and "another version of the model" in stale.stderr
