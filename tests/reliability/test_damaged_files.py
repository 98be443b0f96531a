"""Damaged files through the CLI: model directories whose manifest was recomputed (the checksum
is not a signature), checkpoint folders on --resume, vector indexes, and outputs that cannot be
written. Each must end in exit code 2 and one ``error:`` line that names the file and what is
wrong with it: no traceback, and never after the work is done."""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors import SafetensorError

from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.errors import ModelDirError
from polymodal.modeldir import verify_manifest, write_manifest
from polymodal.outputs import finite_json
from polymodal.training.checkpoint import read_checkpoint, write_checkpoint

CONFIG = {**FAST, "training": {**FAST["training"], "max_epochs": 1}}


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, no traceback, one ``error:`` line holding every word; returns that line."""
    assert result.returncode == 2, result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "\n" not in lines[0], result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One tiny model (1 epoch), its kept checkpoint folder, its config file and its table."""
    folder = tmp_path_factory.mktemp("damaged")
    make_table(folder, n=24).to_csv(folder / "train.csv", index=False)
    (folder / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    predictor = Predictor(label="label", config=CONFIG, verbose=False).fit(
        folder / "train.csv", checkpoint_dir=folder / "run")
    predictor.save(folder / "model")
    return predictor, folder


def _copy(fitted, tmp_path: Path, name: str = "model") -> Path:
    _, folder = fitted
    return Path(shutil.copytree(folder / name, tmp_path / name))


def _torch_save() -> bytes:
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, buffer)
    return buffer.getvalue()


def _huge_header(blob: bytes) -> bytes:
    return struct.pack("<Q", 2**40) + blob[8:]


# file, how to damage its bytes, words the message must hold
MODEL_DAMAGE = {
    "pickle-weights": ("model.safetensors", lambda b: pickle.dumps({"w": [0.0]}), "pickle"),
    "torch-save-weights": ("model.safetensors", lambda b: _torch_save(), "not a safetensors file"),
    "truncated-weights": ("model.safetensors", lambda b: b[: len(b) // 2], "lies outside"),
    "huge-header": ("model.safetensors", _huge_header, "claims 1,099,511,627,776 bytes"),
    "garbage-config": ("config.yaml", lambda b: b"\xff\xfe\x00 not yaml: [", "does not hold a valid config"),
    "list-config": ("config.yaml", lambda b: b"- seed\n- 0\n", "expected a mapping"),
    "list-labels": ("labels.json", lambda b: b"[1, 2]", "expected an object, got a list"),
    "labels-missing-key": ("labels.json", lambda b: b'{"problem_type": "classification"}', "labels.json"),
    "object-inputs": ("inputs.json", lambda b: b'{"name": "x"}', "expected a list, got an object"),
    "inputs-missing-key": ("inputs.json", lambda b: json.dumps([{"name": "caption"}]).encode(), "keys"),
    "inputs-path-escape": ("inputs.json", lambda b: json.dumps(
        [{**s, "name": "../.."} for s in json.loads(b)]).encode(), "not a plain folder name"),
    "garbage-tokenizer": ("preprocessors/caption/tokenizer.json", lambda b: b"\x00\x01garbage", "JSON"),
    "list-tokenizer": ("preprocessors/caption/tokenizer.json", lambda b: b"[]", "expected an object, got a list"),
    "tokenizer-no-model": ("preprocessors/caption/tokenizer.json", lambda b: b"{}", "fitted preprocessor"),
    "list-state": ("preprocessors/photo/state.json", lambda b: b"[]", "expected an object, got a list"),
}


@pytest.mark.parametrize("case", sorted(MODEL_DAMAGE))
def test_a_damaged_model_directory_is_one_clear_error(fitted, tmp_path, case):
    name, damage, words = MODEL_DAMAGE[case]
    model = _copy(fitted, tmp_path)
    (model / name).write_bytes(damage((model / name).read_bytes()))
    write_manifest(model)  # the checksum passes: only the content tells
    verify_manifest(model)
    result = run("predict", model, "--data", fitted[1] / "train.csv", "--out", tmp_path / "p.csv")
    refused(result, Path(name).name, "damaged", words)
    assert not (tmp_path / "p.csv").exists()


def _resume(fitted, tmp_path, run_dir: Path) -> subprocess.CompletedProcess:
    folder = fitted[1]
    return run("fit", "--train", folder / "train.csv", "--label", "label", "--config", folder / "config.yaml",
               "--out", tmp_path / "out", "--resume", "--checkpoint-dir", run_dir)


def _bad_groups(state: dict) -> None:
    state["optimizer_states"] = [{"state": {}, "param_groups": []}]  # well-formed, but not this model's


def _bad_tree(state: dict) -> None:
    state["optimizer_states"][0]["param_groups"] = "sgd"


@pytest.mark.parametrize("case", ["run-json-list", "progress-epoch-text", "optimizer-tree", "optimizer-groups"])
def test_a_damaged_checkpoint_folder_is_one_clear_error_on_resume(fitted, tmp_path, case):
    run_dir = _copy(fitted, tmp_path, "run")
    if case == "run-json-list":
        (run_dir / "run.json").write_text("[]")
        words = ("run.json", "expected a JSON object")
    elif case == "progress-epoch-text":
        (run_dir / "progress.json").write_text(json.dumps({"epoch": "one"}))
        words = ("progress.json", "'epoch' must be a whole number")
    else:
        state = read_checkpoint(run_dir / "checkpoint.safetensors")
        (_bad_tree if case == "optimizer-tree" else _bad_groups)(state)
        write_checkpoint(state, run_dir / "checkpoint.safetensors")
        words = ("checkpoint.safetensors", "optimizer_states[0]")
    refused(_resume(fitted, tmp_path, run_dir), *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["index-list", "index-kind", "ids-object", "faiss-garbage"])
def test_a_damaged_vector_index_is_one_clear_error(tmp_path, case):
    from polymodal.retrieval import VectorIndex

    vectors = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    folder = VectorIndex.build(vectors, [f"i{n}" for n in range(10)], meta={"column": "c"}).save(tmp_path / "ix")
    name, blob, words = {"index-list": ("index.json", b"[]", "expected an object, got a list"),
                         "index-kind": ("index.json", None, "kind 'cube'"),
                         "ids-object": ("ids.json", b"{}", "expected a list"),
                         "faiss-garbage": ("index.faiss", b"IxFI" + b"\x00" * 40, "where index.json and ids.json record 10 4-d")}[case]
    if blob is None:
        blob = json.dumps({**json.loads((folder / name).read_text()), "kind": "cube"}).encode()
    (folder / name).write_bytes(blob)
    write_manifest(folder)
    refused(run("search", folder, "--like", "i1"), name, "damaged", words)


def test_a_full_disk_while_saving_is_one_error_and_the_old_model_survives(fitted, tmp_path, monkeypatch):
    predictor, _ = fitted
    model = predictor.save(tmp_path / "model")
    before = verify_manifest(model)

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    monkeypatch.setattr("polymodal.modeldir.save_file", full)
    with pytest.raises(ModelDirError) as caught:
        predictor.save(model)
    message = str(caught.value)
    assert "\n" not in message and str(model) in message and "No space left on device" in message
    assert "nothing was changed there" in message
    assert verify_manifest(model) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left behind
    Predictor.load(model)


def test_unwritable_outputs_are_refused_before_the_work(fitted, tmp_path):
    predictor, folder = fitted
    model, train = folder / "model", folder / "train.csv"
    (tmp_path / "a_file").write_text("x")  # a path under a file: unwritable, for root too
    blocked = tmp_path / "a_file"
    refused(run("predict", model, "--data", train, "--out", blocked / "p.csv"),
            "predictions file", str(blocked), "not a writable folder")
    (tmp_path / "a_dir").mkdir()
    refused(run("predict", model, "--data", train, "--out", tmp_path / "a_dir"), "existing folder")
    refused(run("evaluate", model, "--data", train, "--robustness", "--report-dir", blocked / "r"),
            "robustness report", "not a writable folder")
    refused(run("explain", model, "--data", train, "--report-dir", blocked), "a file of that name exists")
    refused(run("embed", model, "--data", train, "--column", "caption", "--out", tmp_path / "a_dir"),
            "embeddings file", "existing folder")
    refused(run("index", model, "--data", train, "--column", "caption", "--out", blocked),
            "index folder", "a file of that name exists")
    result = run("fit", "--train", train, "--label", "label", "--out", blocked / "m")
    refused(result, "model directory", "not a writable folder")
    assert "poch" not in result.stderr  # refused before any training


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_report_dir_is_refused_before_the_work(fitted, tmp_path):
    folder = fitted[1]
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        refused(run("explain", folder / "model", "--data", folder / "train.csv", "--report-dir", tmp_path / "ro"),
                "not a writable folder")
    finally:
        os.chmod(tmp_path / "ro", 0o700)


def test_json_output_writes_null_for_nan():
    text = finite_json({"r2": float("nan"), "n": 1, "parts": [float("inf"), np.float32(0.5)]})
    assert json.loads(text) == {"r2": None, "n": 1, "parts": [None, 0.5]}
    assert "NaN" not in text and "Infinity" not in text
