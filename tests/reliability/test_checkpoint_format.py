"""The training checkpoint format: safetensors + JSON, atomic, never unpickles."""
from __future__ import annotations

import errno
import math
import os
import pickle

import numpy as np
import pytest
import torch

from polymodal.errors import ModelDirError
from polymodal.training import checkpoint as ck


def _state() -> dict:
    weight = torch.randn(4, 3)
    return {
        "state_dict": {"a.weight": weight, "a.bias": torch.zeros(4), "view": weight[1:3]},  # shares memory
        "optimizer_states": [{"state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.ones(2, 2)}},
                              "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1],
                                                "foreach": None, "fused": None}]}],
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 3, "completed": 2}}}},
        "callbacks": {"EarlyStopping{'monitor': 'val_loss'}": {"best_score": torch.tensor(0.25), "wait_count": 1}},
        "floats": [math.inf, -math.inf, 1.5],
        "rng": {"numpy": np.random.get_state(), "bf16": torch.ones(3, dtype=torch.bfloat16),
                "bytes": torch.get_rng_state()},
        "__weird_key__": {"__tensor__": "not a tensor reference"},
        "pytorch-lightning_version": "2.6.6",
    }


def test_round_trip_keeps_types_and_values(tmp_path):
    state = _state()
    path = tmp_path / "c.safetensors"
    ck.write_checkpoint(state, path)
    back = ck.read_checkpoint(path)
    assert torch.equal(back["state_dict"]["a.weight"], state["state_dict"]["a.weight"])
    assert torch.equal(back["state_dict"]["view"], state["state_dict"]["a.weight"][1:3])
    opt = back["optimizer_states"][0]
    assert list(opt["state"]) == [0]  # int keys stay ints (torch's load_state_dict needs them)
    assert opt["param_groups"][0]["betas"] == (0.9, 0.999) and opt["param_groups"][0]["foreach"] is None
    assert back["floats"][:2] == [math.inf, -math.inf]
    numpy_state = back["rng"]["numpy"]
    assert numpy_state[0] == "MT19937" and np.array_equal(numpy_state[1], state["rng"]["numpy"][1])
    assert back["rng"]["bf16"].dtype == torch.bfloat16
    assert back["__weird_key__"] == {"__tensor__": "not a tensor reference"}
    assert back["loops"] == state["loops"]


def test_nan_survives(tmp_path):
    ck.write_checkpoint({"x": math.nan}, tmp_path / "c.safetensors")
    assert math.isnan(ck.read_checkpoint(tmp_path / "c.safetensors")["x"])


def test_objects_that_need_pickle_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        ck.write_checkpoint({"hook": object()}, tmp_path / "c.safetensors")
    assert not (tmp_path / "c.safetensors").exists()


def test_reading_never_unpickles(tmp_path, monkeypatch):
    ck.write_checkpoint(_state(), tmp_path / "c.safetensors")

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling while reading a checkpoint")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    ck.read_checkpoint(tmp_path / "c.safetensors")


def test_a_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "c.safetensors"
    torch.save({"a": torch.ones(2)}, path)  # what torch.save / Lightning would write
    with pytest.raises(ModelDirError, match="damaged or not a polymodal checkpoint"):
        ck.read_checkpoint(path)
    with pytest.raises(ModelDirError, match="not found"):
        ck.read_checkpoint(tmp_path / "absent.safetensors")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    ck.write_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ck.os, "replace", full_disk)
    with pytest.raises(ModelDirError, match="No space left on device.*previous one"):
        ck.write_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp file left


def test_read_only_folder_is_reported(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(ck, "save_file", read_only)
    with pytest.raises(ModelDirError, match="Read-only file system"):
        ck.write_checkpoint({"w": torch.ones(1)}, tmp_path / "c.safetensors")


def test_rng_capture_and_restore():
    state = ck.capture_rng()
    a = (torch.rand(3), np.random.rand(), __import__("random").random())
    ck.restore_rng(state)
    b = (torch.rand(3), np.random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
