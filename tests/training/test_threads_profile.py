"""The training thread policy follows the other processes' load and restores torch's threads;
``training.profile`` splits a fit's time into phases. No timing is asserted."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from polymodal import Predictor
from polymodal.training import threads as policy
from polymodal.training.profile import time_split
from polymodal.training.threads import LoadSampler, ThreadPolicy
from synthetic import FAST, make_table


class FakeSampler:
    """Reports the given loads of other processes, one per look."""

    def __init__(self, cores: int, loads: list[float | None]) -> None:
        self.cores, self.loads = cores, list(loads)

    def others(self, min_window: float = 0.2) -> float | None:
        return self.loads.pop(0)


@pytest.fixture
def four_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def test_threads_follow_the_cores_others_leave_and_come_back(four_threads, monkeypatch):
    monkeypatch.setattr(policy, "INTERVAL", 0.0)  # look at every batch
    cb = ThreadPolicy("auto", FakeSampler(4, [3.6, None, 1.2, 0.1, 9.0]))
    cb.on_fit_start(None, None)
    assert torch.get_num_threads() == 1  # 0.4 cores free: one thread, never none
    cb.on_train_batch_start(None, None, None, 0)
    assert torch.get_num_threads() == 1  # an unknown load changes nothing
    cb.on_train_batch_start(None, None, None, 1)
    assert torch.get_num_threads() == 3
    cb.on_train_batch_start(None, None, None, 2)
    assert torch.get_num_threads() == 4  # never above what torch had at the start
    cb.on_train_batch_start(None, None, None, 3)
    assert torch.get_num_threads() == 1
    assert cb.changes == [(3.6, 1), (1.2, 3), (0.1, 4), (9.0, 1)]
    cb.on_fit_end(None, None)
    assert torch.get_num_threads() == 4


def test_fixed_threads_hold_and_are_restored(four_threads):
    cb = ThreadPolicy(2, FakeSampler(4, [3.9]))
    cb.on_fit_start(None, None)
    cb.on_train_batch_start(None, None, None, 0)
    assert torch.get_num_threads() == 2
    cb.on_exception(None, None, RuntimeError("stop"))
    assert torch.get_num_threads() == 4


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="reads /proc/stat")
def test_the_sampler_sees_a_busy_process_and_not_its_own_work():
    sampler = LoadSampler()
    time.sleep(0.3)
    quiet = sampler.others()
    end = time.perf_counter() + 0.6
    while time.perf_counter() < end:  # this process busy: not counted as another's load
        pass
    own = sampler.others()
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"])
    try:
        time.sleep(1.0)
        sampler.others()
        time.sleep(1.0)
        other = sampler.others()
    finally:
        busy.kill()
    assert quiet is not None and own is not None and other is not None
    assert other >= 0.5  # a spinning process: about one core (more if the machine is busy anyway)
    assert own <= quiet + 0.6  # this process spinning is not another's load
    assert sampler.others(min_window=10.0) is None  # too short a window


def test_time_split_sums_lightning_records_into_phases():
    class Recorded:
        recorded_durations = {
            "run_training_epoch": [7.0, 7.0],
            "[_TrainingEpochLoop].train_dataloader_next": [0.5] * 4,
            "[Strategy]SingleDeviceStrategy.training_step": [1.0] * 4,
            "[Strategy]SingleDeviceStrategy.backward": [1.0] * 4,
            "[LightningModule]TrainingModule.optimizer_step": [2.25] * 4,
            "[LightningModule]TrainingModule.optimizer_zero_grad": [0.05] * 4,
            "[_EvaluationLoop].val_next": [0.1] * 2,
            "[Strategy]SingleDeviceStrategy.validation_step": [0.4] * 2,
        }

    split = time_split(Recorded())
    # optimizer: its step less the forward and backward it wraps (9.0 - 4.0 - 4.0), plus zero_grad
    assert split == {"collate": 2.0, "forward": 4.0, "backward": 4.0, "optimizer": 1.2, "evaluation": 1.0,
                     "overhead": 1.8, "epochs": 14.0, "steps": 4}


def test_a_profiled_fit_reports_its_phases(tmp_path: Path):
    frame = make_table(tmp_path, n=48)
    config = {**FAST, "label": "label", "training": {**FAST["training"], "max_epochs": 2, "profile": True,
                                                      "threads": 1}}
    before = torch.get_num_threads()
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    predictor = Predictor(config=config).fit(str(path))
    split = predictor.fit_info_["profile"]
    assert set(split) == {"collate", "forward", "backward", "optimizer", "evaluation", "overhead", "epochs", "steps"}
    assert split["steps"] > 0 and split["forward"] > 0 and split["backward"] > 0 and split["collate"] > 0
    assert split["epochs"] >= split["forward"] + split["backward"]
    assert torch.get_num_threads() == before  # threads: 1 held only while training


def test_a_bad_thread_count_is_refused_with_the_choices():
    from polymodal.config import load_config
    from polymodal.errors import ConfigError

    for bad in (0, -2, "many"):
        with pytest.raises(ConfigError, match="training.threads"):
            load_config({"training": {"threads": bad}})
    assert load_config({"training": {"threads": 3}}).training.threads == 3
