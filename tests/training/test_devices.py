"""Device settings: what the Trainer is given, what is refused before any data is decoded,
and what the processes other than rank 0 of a DDP run leave alone (files, log lines)."""
from __future__ import annotations

import logging
import subprocess
import sys
import types

import pytest
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.strategies import DDPStrategy

from polymodal import Predictor
from polymodal.config import load_config
from polymodal.distributed import RankZeroFilter, global_rank, is_rank_zero
from polymodal.errors import ConfigError
from polymodal.training.devices import check_devices, trainer_devices

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def _training(**options):
    return load_config({"training": options}).training


def test_one_process_by_default_and_ddp_for_several():
    assert trainer_devices(_training()) == {"accelerator": "cpu" if not torch.cuda.is_available() else "gpu",
                                            "devices": 1, "num_nodes": 1, "strategy": "auto"}
    several = trainer_devices(_training(devices=2, num_nodes=3))
    assert isinstance(several["strategy"], DDPStrategy) and (several["devices"], several["num_nodes"]) == (2, 3)
    assert isinstance(trainer_devices(_training(strategy="ddp"))["strategy"], DDPStrategy)


@pytest.mark.parametrize("bad, needle", [({"devices": 0}, "devices"), ({"num_nodes": 0}, "num_nodes"),
                                         ({"strategy": "horovod"}, "strategy"), ({"precision": "8"}, "precision")])
def test_bad_device_settings_are_config_errors(bad, needle):
    with pytest.raises(ConfigError, match=needle):
        _training(**bad)


@no_cuda
def test_a_gpu_or_fp16_where_there_is_no_gpu_is_refused():
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        check_devices(_training(accelerator="gpu"), "32")
    with pytest.raises(ConfigError, match="fp16 mixed precision.*bf16"):
        check_devices(_training(precision="16"), "16")


def test_several_processes_from_an_interactive_session_are_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # no __file__: a notebook
    with pytest.raises(ConfigError, match="interactive session.*torchrun"):
        check_devices(_training(devices=2), "32")
    check_devices(_training(), "32")  # one process is fine anywhere


def test_a_launcher_that_started_other_numbers_of_processes_is_refused(monkeypatch):
    for name, value in {"RANK": "0", "GROUP_RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2",
                        "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="torchrun started 2 processes.*1 x 1 = 1.*--devices"):
        check_devices(_training(), "32")
    check_devices(_training(devices=2), "32")


@pytest.fixture()
def rank_one(monkeypatch):
    monkeypatch.setattr(rank_zero_only, "rank", 1)


def test_other_ranks_log_only_warnings(rank_one):
    assert global_rank() == 1 and not is_rank_zero()
    keep = RankZeroFilter().filter
    info = logging.LogRecord("polymodal", logging.INFO, __file__, 1, "Saved model", None, None)
    warning = logging.LogRecord("polymodal", logging.WARNING, __file__, 1, "careful", None, None)
    assert not keep(info) and keep(warning)
    assert any(isinstance(f, RankZeroFilter) for f in logging.getLogger("polymodal").filters)


def test_other_ranks_do_not_write_the_model_directory(table, tmp_path, monkeypatch):
    path = table[0] / "train.csv"
    predictor = Predictor(label="label", config={"training": {"max_epochs": 1, "progress_bar": False}}).fit(path)
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    predictor.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    predictor.save(tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_the_cli_takes_device_flags_and_reports_bad_ones(table, tmp_path):
    path = table[0] / "train.csv"
    run = subprocess.run([sys.executable, "-m", "polymodal.cli", "fit", "--train", str(path), "--label", "label",
                          "--out", str(tmp_path / "m"), "--devices", "0"], capture_output=True, text=True)
    assert run.returncode == 2 and "devices" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "m").exists()


def test_fp16_steps_an_unfused_adamw_so_the_scaler_unscales_before_clipping():
    from polymodal.training.param_groups import adamw

    weight = torch.nn.Parameter(torch.zeros(3))
    assert adamw([weight], lr=1e-3).defaults["fused"] is True
    assert not adamw([weight], scaled=True, lr=1e-3).defaults["fused"]
