"""Same data, same seed, same model: the learnt tokenizer and the whole model directory.

The tokenizers are learnt in separate processes, each with its own ``PYTHONHASHSEED``, so
that neither Python's nor Rust's hash-map order can leak into them; the default WordPiece
trainer of ``tokenizers`` failed this (a different vocabulary, so different losses, on each
fit). The two model fits run in this process, to stay fast: Rust gives every hash map fresh
random keys, so the tokenizer bug showed there too.

The model directories are compared file by file (sha256), except for the wall-clock
timings that a run legitimately records, which are left out by name and nothing else:
``metrics.json`` ``fit.load_seconds`` and ``fit.fit_seconds``, ``history.csv`` column
``seconds``, and the two checksums of those files in ``manifest.json``. Weights,
preprocessor state (tokenizer included), config, schema, labels and plots must be
byte-identical; the rest of ``metrics.json`` and ``history.csv`` must be equal.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

import pytest

from polymodal import Predictor
from synthetic import make_table

pytestmark = pytest.mark.usefixtures("one_thread")

TIMINGS = {"metrics.json": ["load_seconds", "fit_seconds"], "history.csv": ["seconds"]}

CONFIG = {
    "seed": 0,
    "text": {"encoder": {"name": "gru"}},  # the default WordPiece tokenizer
    "image": {"preprocess": {"size": 12}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    "audio": {"preprocess": {"sample_rate": 8000, "n_mels": 16, "max_seconds": 0.5},
              "encoder": {"name": "cnn", "channels": [4, 8]}},
    "training": {"max_epochs": 2, "batch_size": 8, "progress_bar": False, "precision": "32",
                 "load_threads": 1},
}

_LEARN_TOKENIZERS = """
import hashlib, json, sys
from pathlib import Path
import pandas as pd
from polymodal.modalities.text.preprocess import TextPreprocessor
frame = pd.DataFrame({"t": json.loads(sys.stdin.read())})
digests = {}
for kind in ["wordpiece", "bpe", "word"]:
    pre = TextPreprocessor("t", ["t"], tokenizer=kind, vocab_size=300).fit(frame, Path("."))
    digests[kind] = hashlib.sha256(pre._tokenizer.to_str().encode()).hexdigest()
print(json.dumps(digests))
"""


def _env(hash_seed: int) -> dict:
    return {**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONWARNINGS": "ignore",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _sentences(n: int = 300, seed: int = 0) -> list[str]:
    """Sentences of made-up words: many equally frequent pairs for a trainer to tie-break."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnoprstuw"))
    words = ["".join(rng.choice(letters, rng.integers(2, 8))) for _ in range(120)]
    return [" ".join(rng.choice(words, rng.integers(3, 10))) for _ in range(n)]


def test_tokenizer_learnt_in_separate_processes_is_identical():
    texts = json.dumps(_sentences())
    runs = [
        subprocess.run([sys.executable, "-c", _LEARN_TOKENIZERS], input=texts, capture_output=True,
                       text=True, env=_env(seed), timeout=300, check=True)
        for seed in range(2)
    ]
    digests = [json.loads(run.stdout) for run in runs]
    for kind in ["wordpiece", "bpe", "word"]:
        assert len({d[kind] for d in digests}) == 1, f"{kind}: {[d[kind] for d in digests]}"


def _table(folder: Path) -> Path:
    """24 rows: a caption, a PNG and an 8 kHz WAV whose pitch follows the class."""
    frame = make_table(folder, n=24).drop(columns=["size", "shop"])
    rng = np.random.default_rng(0)
    (folder / "wav").mkdir()
    t = np.arange(1600) / 8000  # 0.2 s
    for i, label in enumerate(frame["label"]):
        pitch = {"blue": 300, "green": 500, "red": 700}[label]
        wave = 0.5 * np.sin(2 * np.pi * pitch * t) + 0.01 * rng.normal(size=t.size)
        sf.write(folder / f"wav/{i:03d}.wav", wave.astype(np.float32), 8000)
    frame["voice"] = [f"wav/{i:03d}.wav" for i in range(len(frame))]
    frame.to_csv(folder / "train.csv", index=False)
    return folder / "train.csv"


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _without_timings(root: Path, name: str):
    if name == "metrics.json":
        metrics = json.loads((root / name).read_text())
        assert set(TIMINGS[name]) <= set(metrics["fit"])
        for key in TIMINGS[name]:
            del metrics["fit"][key]
        return metrics
    history = pd.read_csv(io.StringIO((root / name).read_text()), dtype=str)  # exact text
    return history.drop(columns=TIMINGS[name]).to_dict("list")


def test_fit_twice_with_the_same_seed_gives_the_same_model_directory(tmp_path):
    table = _table(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        Predictor(label="label", config=CONFIG, verbose=False).fit(table).save(out)
    roles = json.loads((a / "schema.json").read_text())["roles"]
    assert roles == {"caption": "text", "photo": "image", "voice": "audio"}

    digests_a, digests_b = _digests(a), _digests(b)
    assert sorted(digests_a) == sorted(digests_b)
    assert {"model.safetensors", "config.yaml", "preprocessors/caption/tokenizer.json",
            "preprocessors/photo/state.json", "preprocessors/voice/state.json"} <= set(digests_a)
    differing = sorted(f for f in digests_a if digests_a[f] != digests_b[f])
    assert set(differing) <= {*TIMINGS, "manifest.json"}, differing
    for name in TIMINGS:
        assert _without_timings(a, name) == _without_timings(b, name), name

    # The manifest records every file's checksum: equal except for the timed files'.
    manifest_a, manifest_b = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    for manifest, digests in [(manifest_a, digests_a), (manifest_b, digests_b)]:
        assert manifest["files"] == {f: h for f, h in digests.items() if f != "manifest.json"}
    for manifest in (manifest_a, manifest_b):
        for name in TIMINGS:
            del manifest["files"][name]
    assert manifest_a == manifest_b
