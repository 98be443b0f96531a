"""Tiny pretrained-model folders (random weights, built from transformers config classes),
and small real inputs (texts, PNG and WAV files) for them.

Nothing is downloaded: each folder is written by ``save_pretrained`` from a config a few
kilobytes large, with the processor files its family uses. Test modules import the
``tiny_backbone`` fixture from here (a ``conftest.py`` in this folder would shadow the
top-level one that other tests import by name).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

WORDS = "the a an is was not very good bad great awful movie film plot acting fun dull".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
SMALL = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
CONV = {"conv_dim": (16, 16), "conv_stride": (5, 4), "conv_kernel": (10, 8), "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
        "mask_time_prob": 0.0, "layerdrop": 0.0}

FAMILIES = {
    "text": ["bert", "distilbert", "roberta", "deberta"],
    "image": ["vit", "resnet", "convnext", "swin", "dinov2", "clip"],
    "audio": ["ast", "wav2vec2", "hubert", "whisper"],
}


def _tokenizer(folder: Path) -> None:
    from transformers import BertTokenizer

    (folder / "vocab.txt").write_text("\n".join(VOCAB))
    # A vocabulary dict: with transformers 5, vocab_file alone gives a tokenizer of the special
    # tokens only, and every word would read as [UNK].
    vocab = {token: i for i, token in enumerate(VOCAB)}
    BertTokenizer(vocab=vocab, model_max_length=24).save_pretrained(str(folder))


def build(kind: str, folder: Path) -> None:
    import transformers as tf

    torch.manual_seed(0)
    image = tf.ViTImageProcessorPil(size={"height": 16, "width": 16})
    if kind == "bert":
        model = tf.BertModel(tf.BertConfig(vocab_size=len(VOCAB), max_position_embeddings=32, **SMALL))
        _tokenizer(folder)
    elif kind == "distilbert":
        model = tf.DistilBertModel(tf.DistilBertConfig(vocab_size=len(VOCAB), max_position_embeddings=32, dim=16,
                                                       n_layers=2, n_heads=2, hidden_dim=32))
        _tokenizer(folder)
    elif kind == "roberta":  # positions start after the padding index: limit = 34 - 2
        model = tf.RobertaModel(tf.RobertaConfig(vocab_size=len(VOCAB), max_position_embeddings=34,
                                                 pad_token_id=0, **SMALL))
        _tokenizer(folder)
    elif kind == "deberta":
        model = tf.DebertaV2Model(tf.DebertaV2Config(vocab_size=len(VOCAB), max_position_embeddings=32,
                                                     relative_attention=True, position_buckets=8,
                                                     pos_att_type=["p2c", "c2p"], **SMALL))
        _tokenizer(folder)
    elif kind == "vit":
        model = tf.ViTModel(tf.ViTConfig(image_size=16, patch_size=8, **SMALL))
    elif kind == "resnet":
        model = tf.ResNetModel(tf.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))
    elif kind == "convnext":
        model = tf.ConvNextModel(tf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2))
        image = tf.ConvNextImageProcessorPil(size={"shortest_edge": 32}, crop_pct=1.0)
    elif kind == "swin":
        model = tf.SwinModel(tf.SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1],
                                           num_heads=[1, 2], window_size=4))
        image = tf.ViTImageProcessorPil(size={"height": 32, "width": 32})
    elif kind == "dinov2":
        model = tf.Dinov2Model(tf.Dinov2Config(image_size=16, patch_size=8, mlp_ratio=2, hidden_size=16,
                                               num_hidden_layers=2, num_attention_heads=2))
    elif kind == "clip":
        model = tf.CLIPModel(tf.CLIPConfig(
            text_config={**SMALL, "vocab_size": len(VOCAB), "bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0},
            vision_config={**SMALL, "image_size": 16, "patch_size": 8}, projection_dim=8))
        image = tf.CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    elif kind == "ast":
        model = tf.ASTModel(tf.ASTConfig(max_length=64, num_mel_bins=16, frequency_stride=8, time_stride=8, **SMALL))
        tf.ASTFeatureExtractor(num_mel_bins=16, max_length=64).save_pretrained(str(folder))
    elif kind in ("wav2vec2", "hubert"):
        cls, cfg = (tf.Wav2Vec2Model, tf.Wav2Vec2Config) if kind == "wav2vec2" else (tf.HubertModel, tf.HubertConfig)
        model = cls(cfg(**SMALL, **CONV))
        tf.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(str(folder))
    elif kind == "whisper":
        model = tf.WhisperModel(tf.WhisperConfig(
            d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=16, max_source_positions=50, vocab_size=60,
            max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1))
        tf.WhisperFeatureExtractor(feature_size=16, chunk_length=1, n_samples=16000).save_pretrained(str(folder))
    else:
        raise KeyError(kind)
    model.save_pretrained(str(folder))
    if kind in FAMILIES["image"]:
        image.save_pretrained(str(folder))


def write_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` small PNGs whose colour depends on the row's class (i % 2)."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        base = (200, 40, 40) if i % 2 else (40, 40, 200)
        pixels = np.clip(np.array(base) + rng.normal(0, 20, (20 + i % 5, 24, 3)), 0, 255).astype(np.uint8)
        paths.append(f"img/{i:03d}.png")
        Image.fromarray(pixels).save(folder / paths[-1])
    return paths


def write_clips(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` short 8 kHz WAVs (resampled by the processor); pitch depends on i % 2."""
    rng = np.random.default_rng(seed)
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        seconds = 0.1 + 0.03 * (i % 4)
        t = np.arange(int(8000 * seconds)) / 8000
        wave = 0.5 * np.sin(2 * np.pi * (300 if i % 2 else 900) * t) + 0.01 * rng.normal(size=t.size)
        paths.append(f"wav/{i:03d}.wav")
        sf.write(folder / paths[-1], wave.astype(np.float32), 8000)
    return paths


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    good, bad = ["good", "great", "fun"], ["bad", "awful", "dull"]
    return [f"the {rng.choice(['movie', 'film', 'plot'])} was {'very ' * (i % 3)}{rng.choice(good if i % 2 else bad)}"
            for i in range(n)]


_BUILT: dict[str, Path] = {}  # kind -> folder, shared by the test modules of one session


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Callable[[str], Path]:
    """``tiny_backbone("vit")`` → a folder holding a tiny random ViT and its processor."""

    def make(kind: str) -> Path:
        if kind not in _BUILT or not _BUILT[kind].is_dir():
            from polymodal.backbones import quiet_transformers

            folder = tmp_path_factory.mktemp(f"tiny-{kind}")
            with quiet_transformers():
                build(kind, folder)
            _BUILT[kind] = folder
        return _BUILT[kind]

    return make
