"""Training batches augment the collated tensors in one call per input: the same draws, and
nearly the same numbers, as augmenting each row on its own; a row's augmentation does not
depend on the batch it lands in."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from polymodal.data import Collator, MultimodalDataset
from polymodal.data.dataset import load_inputs
from polymodal.modalities.audio.preprocess import AudioPreprocessor
from polymodal.modalities.image.preprocess import ImagePreprocessor
from polymodal.modalities.text.preprocess import TextPreprocessor

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def table(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    """10 rows: a real Fashion-MNIST image, a real FSDD clip and a sentence; row 2 has no image."""
    folder = tmp_path_factory.mktemp("rows")
    with gzip.open(data_dir / "fashion-mnist" / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read(16 + 10 * 28 * 28)
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(10, 28, 28)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{i}.png")
    clips = sorted((data_dir / "fsdd").glob("*.wav"))[::300][:10]
    frame = pd.DataFrame({"photo": [f"{i}.png" for i in range(10)], "voice": [str(c) for c in clips],
                          "note": [f"a short note number {i} about a thing" for i in range(10)]})
    frame.loc[2, "photo"] = None
    return frame, folder


def _dataset(table, **audio) -> MultimodalDataset:
    frame, folder = table
    pres = {"photo": ImagePreprocessor("photo", ["photo"], size=16),
            "voice": AudioPreprocessor("voice", ["voice"], sample_rate=8000, n_mels=20, max_seconds=1.0, **audio),
            "note": TextPreprocessor("note", ["note"], token_dropout=0.3)}
    for pre in pres.values():
        pre.fit(frame, folder)
    loaded = load_inputs(frame, folder, pres, threads=1)
    return MultimodalDataset(loaded, pres, torch.arange(10), augment=True, seed=3)


@pytest.mark.parametrize("audio", [{}, {"speed_perturb": 0.1}])
def test_batched_augmentation_matches_row_by_row(table, audio):
    ds = _dataset(table, **audio)
    collate = Collator(ds.preprocessors)
    rows = [0, 2, 5, 7, 9]
    batched = collate(ds.__getitems__(rows))
    single = collate([ds[i] for i in rows])
    for name, parts in single["inputs"].items():
        for key, value in parts.items():
            if value.dtype.is_floating_point:
                torch.testing.assert_close(batched["inputs"][name][key], value, atol=1e-4, rtol=1e-4)
            else:
                assert torch.equal(batched["inputs"][name][key], value), (name, key)
    assert torch.equal(batched["present"], single["present"]) and not batched["present"][1, 1]
    plain = Collator(ds.preprocessors)([ds._row(i) for i in rows])
    for name, key in (("photo", "pixel_values"), ("voice", "features")):  # augmentation happened
        assert not torch.allclose(batched["inputs"][name][key], plain["inputs"][name][key])
    assert torch.equal(batched["inputs"]["photo"]["pixel_values"][1], plain["inputs"]["photo"]["pixel_values"][1])


def test_a_rows_augmentation_follows_the_row_and_the_epoch(table):
    ds = _dataset(table)
    collate = Collator(ds.preprocessors)
    alone = collate(ds.__getitems__([5]))
    among = collate(ds.__getitems__([1, 5, 8]))
    for name, key in (("photo", "pixel_values"), ("voice", "features")):
        torch.testing.assert_close(among["inputs"][name][key][1], alone["inputs"][name][key][0])
    again = collate(ds.__getitems__([1, 5, 8]))
    assert torch.equal(again["inputs"]["voice"]["features"], among["inputs"]["voice"]["features"])
    ds.set_epoch(1)
    later = collate(ds.__getitems__([1, 5, 8]))
    assert not torch.equal(later["inputs"]["voice"]["features"], among["inputs"]["voice"]["features"])


def test_the_loader_fetches_batches_through_getitems(table):
    ds = _dataset(table)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=Collator(ds.preprocessors))
    first = next(iter(loader))
    expected = Collator(ds.preprocessors)(ds.__getitems__([0, 1, 2, 3]))
    assert torch.equal(first["inputs"]["voice"]["features"], expected["inputs"]["voice"]["features"])
    assert torch.equal(first["target"], torch.arange(4))
