"""The robustness report on pretrained-backbone columns (text, image, audio; frozen and cached,
and fine-tuned): every input is noised, what is scored differs from the clean input, and
nothing noisy is written into the feature store."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import VOCAB, sentences, write_clips, write_images
from tiny_models import tiny_backbone  # noqa: F401  (a fixture)

from polymodal import Predictor
from polymodal.backbones.feature_store import BackboneItem
from polymodal.reports import robustness, robustness_report

FAST = {"max_epochs": 1, "batch_size": 8, "progress_bar": False, "precision": "32", "learning_rate": 3e-3}
INPUTS = {"caption": "text", "photo": "image", "clip": "audio"}
LEVELS = {"text": [0.75], "image": [0.4], "audio": [0.0]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("backbone-table")
    n = 16
    pd.DataFrame({
        "caption": sentences(n), "photo": write_images(folder, n), "clip": write_clips(folder, n),
        "shop": ["north" if i % 3 else "south" for i in range(n)],  # tabular, categorical only
        "label": ["pos" if i % 2 else "neg" for i in range(n)],
    }).to_csv(folder / "train.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def bert(tiny_backbone, tmp_path_factory) -> Path:
    """The tiny BERT with a tokenizer that knows ``VOCAB``'s words, so that dropping them to
    [UNK] changes the input (built from ``vocab_file``, the fixture's tokenizer knows only its
    special tokens and reads every word as [UNK])."""
    from transformers import BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert-words")
    shutil.copytree(tiny_backbone("bert"), folder, dirs_exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}, model_max_length=24)
    assert "[UNK]" not in tokenizer.tokenize(sentences(1)[0])
    tokenizer.save_pretrained(str(folder))
    return folder


def _stored(cache: Path) -> dict[Path, bytes]:
    """Every stored feature file and its bytes (noisy features under a clean key would change them)."""
    return {p: p.read_bytes() for p in cache.rglob("*.safetensors")} if cache.is_dir() else {}


def _value(item: BackboneItem) -> torch.Tensor:
    value = item.value[0] if isinstance(item.value, tuple) else item.value  # audio: (input, length)
    return torch.as_tensor(value).float()


@pytest.mark.parametrize("mode", ["frozen", "full"])
def test_report_noises_every_backbone_column_and_caches_nothing_noisy(mode, folder, bert, tiny_backbone, tmp_path,
                                                                      monkeypatch):
    cache = tmp_path / "cache"
    backbones = {"text": bert, "image": tiny_backbone("vit"), "audio": tiny_backbone("wav2vec2")}
    config = {"columns": {**INPUTS, "shop": "categorical"},
              **{m: {"backbone": str(f), "tuning": {"mode": mode}} for m, f in backbones.items()},
              "training": {**FAST, "cache_dir": str(cache)}}
    predictor = Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")
    clean_score = predictor.evaluate(folder / "train.csv")["accuracy"]  # every clean input's features stored
    before = _stored(cache)
    assert bool(before) == (mode == "frozen")

    scored: dict[str, list] = {}  # input -> the noisy items the report scored (filled in place by the feature cache)
    get = robustness.get_modality

    def spying(name: str):
        modality = get(name)
        if modality.noise is None:
            return modality

        def perturb(pre, items, level, seed, reload):
            out = modality.noise.perturb(pre, items, level, seed, reload)
            scored[pre.name] = out
            return out

        return dataclasses.replace(modality, noise=dataclasses.replace(modality.noise, perturb=perturb))

    monkeypatch.setattr(robustness, "get_modality", spying)
    report = robustness_report(predictor, folder / "train.csv", levels=LEVELS)

    assert _stored(cache) == before  # the noisy inputs' features were computed, never stored
    assert report[report.condition == "clean"].value.iloc[0] == pytest.approx(clean_score)
    noise = report[report.condition == "noise"].set_index("input")
    assert sorted(noise.index) == sorted(INPUTS) and noise.value.notna().all()
    refused = report[report.condition == "not perturbed"]
    assert refused.input.tolist() == ["tabular"] and "categorical" in refused.noise.iloc[0]

    fresh = {name: predictor.preprocessors_[name].without_store() for name in INPUTS}
    for name, items in scored.items():
        rows = pd.read_csv(folder / "train.csv").to_dict("records")
        clean = [fresh[name].load(row, folder) for row in rows]
        assert len(items) == len(clean) and all(isinstance(it, BackboneItem) and it.key is None for it in items)
        if mode == "frozen":  # the frozen backbone ran on the noisy inputs: their features differ
            assert all(it.features is not None for it in items)
            stored = [predictor.preprocessors_[name].load(row, folder).features.pooled for row in rows]
            moved = [not torch.allclose(it.features.pooled, s, atol=1e-4) for it, s in zip(items, stored)]
        else:
            moved = [_value(it).shape != _value(c).shape or not torch.equal(_value(it), _value(c))
                     for it, c in zip(items, clean)]
        assert np.mean(moved) > 0.5, name
    again = robustness_report(predictor, folder / "train.csv", levels=LEVELS)
    pd.testing.assert_frame_equal(report, again)  # seeded noise: a report repeats
