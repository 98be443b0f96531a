"""A fit that reads its table a chunk at a time (``training.stream``): the row split, the
streamed batches (every training row once per epoch, the same number of batches in every
process), and a real fit from a Parquet file that saves, loads and predicts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from polymodal import Predictor
from polymodal.data.chunks import open_chunked
from polymodal.data.dataset import LoadedInputs
from polymodal.data.stream import RowSplit, StreamedBatches
from polymodal.errors import ConfigError, DataError


def test_the_row_split_depends_on_the_position_alone():
    split = RowSplit(seed=3, fraction=0.1)
    whole = split.tuning(np.arange(200_000))
    parts = np.concatenate([split.tuning(np.arange(a, min(a + 4096, 200_000))) for a in range(0, 200_000, 4096)])
    assert (whole == parts).all()
    assert abs(whole.mean() - 0.1) < 0.005
    assert not (RowSplit(seed=4, fraction=0.1).tuning(np.arange(200_000)) == whole).all()


def _positions_table(tmp_path, n: int):
    pd.DataFrame({"x": np.arange(n, dtype=float), "label": np.arange(n) % 2}).to_parquet(
        tmp_path / "t.parquet", row_group_size=1000)
    return open_chunked(tmp_path / "t.parquet")


def _load(table):  # each row's item and target: its position in the table
    positions = list(table.frame.index)
    return (LoadedInputs(items={"x": positions}, rows=np.arange(len(positions))),
            torch.tensor(positions))


def _seen(dataset) -> list[int]:
    return [int(t) for batch in dataset for _, t in batch]


def test_one_process_sees_every_training_row_once_per_epoch(tmp_path):
    chunked = _positions_table(tmp_path, 70_000)  # two spans
    split = RowSplit(0, 0.2)
    train = ~split.tuning(np.arange(70_000))
    data = StreamedBatches(chunked, _load, lambda p: ~split.tuning(p), int(train.sum()), {"x": None},
                           batch_size=50, shuffle=True, seed=0, chunk_rows=3000)
    seen = _seen(data)
    assert len(seen) == len(data) * 50 == (int(train.sum()) // 50) * 50
    assert len(set(seen)) == len(seen) and train[seen].all()  # no repeats, no tuning rows
    data.set_epoch(1)
    again = _seen(data)
    assert again != seen and len(set(again)) == len(again) and train[again].all()  # a new order


def test_processes_take_disjoint_spans_and_the_same_number_of_batches(tmp_path, monkeypatch):
    chunked = _positions_table(tmp_path, 200_000)  # 4 spans of 65,536 rows (the last shorter)
    keep = lambda p: np.ones(len(p), bool)  # noqa: E731
    seen = {}
    for rank in (0, 1):
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda r=rank: r)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
        data = StreamedBatches(chunked, _load, keep, 200_000, {"x": None}, batch_size=500, shuffle=True,
                               seed=1, world=2, chunk_rows=5000)
        seen[rank] = _seen(data)
        assert len(seen[rank]) == len(data) * 500 == 200 * 500
    # each process reads its own spans (the one with fewer rows cycles over them): no row is in both
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) > 150_000


@pytest.fixture(scope="module")
def trec(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("trec")
    frames = {}
    for split in ("train", "test"):
        lines = (data_dir / "text" / "trec" / f"TREC.{split}.all").read_text(encoding="latin-1").splitlines()
        rows = [line.strip().partition(" ") for line in lines if line.strip()]
        frames[split] = pd.DataFrame({"text": [r[2] for r in rows], "label": [r[0] for r in rows]})
    frames["train"].iloc[:2000].to_parquet(folder / "train.parquet", row_group_size=300)
    frames["test"].to_csv(folder / "test.csv", index=False)
    return folder


CONFIG = {"label": "label", "text": {"encoder": {"name": "gru"}},
          "training": {"max_epochs": 3, "batch_size": 32, "progress_bar": False, "precision": "32", "stream": "on",
                       "fit_sample_rows": 1000}}


def test_a_streamed_fit_from_parquet_saves_loads_and_predicts(trec, tmp_path):
    predictor = Predictor(config=CONFIG).fit(str(trec / "train.parquet"))
    info = predictor.fit_info_
    assert info["streamed"] and info["train_rows"] + info["tuning_rows"] == 2000
    assert 900 <= info["sample_rows"] <= 1100
    predictor.save(tmp_path / "model")
    loaded = Predictor.load(tmp_path / "model")
    test = loaded.evaluate(str(trec / "test.csv"))
    assert test["accuracy"] > 0.5, test  # six classes: chance is about 0.2
    np.testing.assert_allclose(loaded.predict_proba(str(trec / "test.csv")).to_numpy(),
                               predictor.predict_proba(str(trec / "test.csv")).to_numpy(), atol=1e-5)


def test_what_cannot_stream_is_refused(trec):
    frame = pd.read_parquet(trec / "train.parquet")
    with pytest.raises(ConfigError, match="stream: on .*path"):
        Predictor(config=CONFIG).fit(frame)
    with pytest.raises(ConfigError, match="group_by_length"):
        Predictor(config={**CONFIG, "training": {**CONFIG["training"], "group_by_length": True}}).fit(
            str(trec / "train.parquet"))
    with pytest.raises(DataError, match="no label column 'topic'"):
        Predictor(config={**CONFIG, "label": "topic"}).fit(str(trec / "train.parquet"))
