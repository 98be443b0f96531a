"""TextPreprocessor: tokenizer training, load / collate contract, truncation, persistence."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polymodal.modalities import get_modality
from polymodal.modalities.text.preprocess import TextPreprocessor
from polymodal.errors import ConfigError, DataError, NotFittedError

HERE = Path(".")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def texts(data_dir) -> list[str]:
    lines = (data_dir / "text" / "sst2" / "stsa.binary.train").read_text().splitlines()
    return [line.split(" ", 1)[1] for line in lines[:1500]]


@pytest.fixture(scope="module")
def frame(texts) -> pd.DataFrame:
    return pd.DataFrame({"review": texts})


@pytest.fixture(scope="module")
def fitted(frame) -> TextPreprocessor:
    return TextPreprocessor("review", ["review"], vocab_size=2000, max_length=32).fit(frame, HERE)


def test_registered():
    assert get_modality("text").preprocessor is TextPreprocessor
    assert TextPreprocessor.modality == "text"


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "word"])
def test_fit_load_collate(frame, texts, kind):
    pre = TextPreprocessor("review", ["review"], tokenizer=kind, vocab_size=1500, max_length=24)
    pre.fit(frame, HERE)
    inputs = pre.encoder_inputs()
    assert set(inputs) == {"vocab_size", "pad_id", "max_length", "pretrained"}
    assert inputs["max_length"] == 24 and inputs["pretrained"] is None
    assert 50 < inputs["vocab_size"] <= 1500

    ids = pre.load({"review": texts[0]}, HERE)
    assert ids.dtype == np.int32 and 3 <= len(ids) <= 24
    assert ids[0] == 2 and ids[-1] == 3  # [CLS] ... [SEP]
    assert (ids < inputs["vocab_size"]).all() and (ids >= 0).all()

    items = [pre.load({"review": t}, HERE) for t in texts[:3]] + [None]
    batch = pre.collate(items)
    width = max(len(i) for i in items[:3])
    assert batch["input_ids"].shape == (4, width) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].dtype == torch.bool
    assert batch["attention_mask"].sum(1).tolist() == [len(i) for i in items[:3]] + [0]
    assert (batch["input_ids"][3] == inputs["pad_id"]).all()


def test_absent_and_non_string_cells(fitted):
    for cell in [None, np.nan, float("nan"), pd.NA, "", "   \n\t"]:
        assert fitted.load({"review": cell}, HERE) is None
    assert fitted.load({}, HERE) is None
    number = fitted.load({"review": 42}, HERE)
    assert number is not None and number.dtype == np.int32


def test_all_absent_batch_has_one_column(fitted):
    batch = fitted.collate([None, None])
    assert batch["input_ids"].shape == (2, 1)
    assert not batch["attention_mask"].any()


def test_truncation_is_counted(frame, texts):
    long = TextPreprocessor("review", ["review"], vocab_size=2000, max_length=512).fit(frame, HERE)
    lengths = [len(long.load({"review": t}, HERE)) for t in texts[:300]]
    short = TextPreprocessor("review", ["review"], vocab_size=2000, max_length=16).fit(frame, HERE)
    loaded = [short.load({"review": t}, HERE) for t in texts[:300]]
    assert short.truncated == sum(n > 16 for n in lengths) > 0
    assert max(len(ids) for ids in loaded) == 16
    assert all(ids[-1] == 3 for ids in loaded)  # [SEP] kept after truncation
    short.truncated = 0
    short.load({"review": "short text"}, HERE)
    assert short.truncated == 0


def test_lowercase_and_accents(fitted):
    assert (fitted.load({"review": "GREAT Café"}, HERE) == fitted.load({"review": "great cafe"}, HERE)).all()


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "word"])
def test_save_load_from_same_ids(frame, texts, tmp_path, kind):
    pre = TextPreprocessor("review", ["review"], tokenizer=kind, vocab_size=1000, max_length=20)
    pre.fit(frame, HERE).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "tokenizer.json"]
    again = TextPreprocessor.load_from(tmp_path)
    assert again.encoder_inputs() == pre.encoder_inputs()
    sample = texts[:200] + ["unseen wörds ✓ 漢字"]
    for text in sample:
        assert (again.load({"review": text}, HERE) == pre.load({"review": text}, HERE)).all()


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "word"])
def test_vocabulary_is_the_same_on_every_fit(frame, kind):
    # tokenizers' own WordPiece trainer gave a different vocabulary on each fit, even in one
    # process (each Rust hash map has its own random order); see tests/reliability/test_determinism.py
    learnt = {
        TextPreprocessor("review", ["review"], tokenizer=kind, vocab_size=1500)
        .fit(frame, HERE)._tokenizer.to_str()
        for _ in range(4)
    }
    assert len(learnt) == 1


def test_tied_pairs_merge_in_canonical_order():
    # "a ##b" and "a ##c" occur equally often; one merge is left: the lower ids ("##b") win
    frame = pd.DataFrame({"t": ["ac ab d e f", "ab ac g h"]})
    initial = 5 + 8 + 2  # [PAD] ... [MASK], a ... h, ##b ##c
    pre = TextPreprocessor("t", ["t"], vocab_size=initial + 1, min_frequency=1)
    vocab = pre.fit(frame, HERE)._tokenizer.get_vocab()
    assert "ab" in vocab and "ac" not in vocab
    assert [vocab[t] for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]] == [0, 1, 2, 3, 4]
    assert [vocab[t] for t in ["a", "b", "h", "##b", "##c", "ab"]] == [5, 6, 12, 13, 14, 15]


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_bpe_and_word_vocabularies_equal_the_tokenizers_trainers(frame, texts, kind):
    """Where ``tokenizers``' trainer is deterministic, the vocabulary learnt here is its own."""
    from tokenizers import trainers

    from polymodal.modalities.text.preprocess import _new_tokenizer

    trainer = {"bpe": trainers.BpeTrainer, "word": trainers.WordLevelTrainer}[kind](
        vocab_size=1500, min_frequency=2, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False,
    )
    library = _new_tokenizer(kind, lowercase=True)
    library.train_from_iterator(texts, trainer)
    ours = TextPreprocessor("review", ["review"], tokenizer=kind, vocab_size=1500).fit(frame, HERE)
    assert ours._tokenizer.get_vocab() == library.get_vocab()
    if kind == "bpe":
        ours_merges = json.loads(ours._tokenizer.to_str())["model"]["merges"]
        assert ours_merges == json.loads(library.to_str())["model"]["merges"]


def _tiny_hf_folder(texts: list[str], folder: Path) -> Path:
    """A Hugging Face tokenizer folder, built offline from a trained WordPiece."""
    from transformers import PreTrainedTokenizerFast

    trained = TextPreprocessor("t", ["t"], vocab_size=500).fit(pd.DataFrame({"t": texts}), HERE)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=trained._tokenizer,
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    )
    hf.save_pretrained(str(folder))
    return folder


def test_pretrained_folder_and_offline_reload(texts, tmp_path):
    folder = _tiny_hf_folder(texts[:300], tmp_path / "hf")
    pre = TextPreprocessor("review", ["review"], pretrained=str(folder), max_length=12)
    pre.fit(pd.DataFrame({"review": []}), HERE)  # nothing to learn
    inputs = pre.encoder_inputs()
    assert inputs["pretrained"] == str(folder) and inputs["pad_id"] == 0
    ids = [pre.load({"review": t}, HERE) for t in texts[:50]]
    assert all(i[0] == 2 and i[-1] == 3 and len(i) <= 12 for i in ids)
    assert pre.truncated > 0

    pre.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "tokenizer").is_dir()
    again = TextPreprocessor.load_from(tmp_path / "saved")
    for text, expected in zip(texts[:50], ids):
        assert (again.load({"review": text}, HERE) == expected).all()


def test_bad_pretrained_folder(tmp_path):
    pre = TextPreprocessor("review", ["review"], pretrained=str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="cannot load a pretrained tokenizer"):
        pre.fit(pd.DataFrame({"review": ["a"]}), HERE)


def test_token_dropout_reproducible(frame, texts):
    pre = TextPreprocessor("review", ["review"], vocab_size=1000, token_dropout=0.5).fit(frame, HERE)
    ids = pre.load({"review": texts[1]}, HERE)
    a = pre.augment(ids, torch.Generator().manual_seed(3))
    b = pre.augment(ids, torch.Generator().manual_seed(3))
    assert (a == b).all() and a.dtype == np.int32 and a.shape == ids.shape
    assert (a != ids).any() and set(a[a != ids].tolist()) == {1}  # dropped → [UNK]
    assert a[0] == 2 and a[-1] == 3  # special tokens never dropped


def test_no_dropout_returns_item(fitted, texts):
    ids = fitted.load({"review": texts[0]}, HERE)
    assert fitted.augment(ids, torch.Generator().manual_seed(0)) is ids


def test_errors(frame):
    with pytest.raises(NotFittedError):
        TextPreprocessor("review", ["review"]).load({"review": "x"}, HERE)
    with pytest.raises(ConfigError, match="vocab_sise"):
        TextPreprocessor("review", ["review"], vocab_sise=10)
    with pytest.raises(ConfigError, match="tokenizer"):
        TextPreprocessor("review", ["review"], tokenizer="sentencepiece")
    with pytest.raises(ConfigError, match="one column"):
        TextPreprocessor("review", ["a", "b"])
    with pytest.raises(DataError, match="no non-empty text"):
        TextPreprocessor("review", ["review"]).fit(pd.DataFrame({"review": [None, " "]}), HERE)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_any_unicode_gives_ids_in_vocab(fitted, text):
    ids = fitted.load({"review": text}, HERE)
    if not text.strip():
        assert ids is None
        return
    vocab_size = fitted.encoder_inputs()["vocab_size"]
    assert ids.dtype == np.int32 and 2 <= len(ids) <= 32
    assert ((ids >= 0) & (ids < vocab_size)).all()
