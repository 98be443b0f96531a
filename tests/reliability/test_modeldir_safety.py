"""Model directories: no code inside, missing / extra / tampered files refused, failed saves harmless."""
from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import polymodal
from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.errors import ModelDirError
from polymodal.modeldir import verify_manifest, write_manifest

SAFE_SUFFIXES = {".json", ".yaml", ".safetensors", ".csv", ".png", ".txt"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("safety")
    make_table(folder, n=30).to_csv(folder / "train.csv", index=False)
    config = {**FAST, "training": {**FAST["training"], "max_epochs": 1}}
    predictor = Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")
    return predictor, folder


def _fresh(saved, tmp_path) -> Path:
    predictor, _ = saved
    return predictor.save(tmp_path / "model")


def test_a_model_directory_holds_data_only(saved, tmp_path):
    out = _fresh(saved, tmp_path)
    suffixes = {p.suffix for p in out.rglob("*") if p.is_file()}
    assert suffixes <= SAFE_SUFFIXES, suffixes


def test_extra_files_are_refused(saved, tmp_path):
    out = _fresh(saved, tmp_path)
    (out / "preprocessors" / "photo" / "hook.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelDirError, match=r"not written by save: preprocessors/photo/hook.pkl \(remove them\)"):
        Predictor.load(out)
    (out / "preprocessors" / "photo" / "hook.pkl").unlink()
    Predictor.load(out)


def test_forged_manifests_are_refused(saved, tmp_path):
    out = _fresh(saved, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "evil.pkl").write_bytes(b"\x80\x04K\x01.")
    import hashlib

    forged = {**manifest, "files": {**manifest["files"], "evil.pkl": hashlib.sha256(b"\x80\x04K\x01.").hexdigest()}}
    (out / "manifest.json").write_text(json.dumps(forged))
    with pytest.raises(ModelDirError, match="could run code when loaded: evil.pkl"):
        verify_manifest(out)
    (out / "evil.pkl").unlink()
    (out / "manifest.json").write_text(json.dumps({**manifest, "files": {"../../etc/passwd": "0" * 64}}))
    with pytest.raises(ModelDirError, match="outside the model directory"):
        verify_manifest(out)
    for broken in ('{"files": ["a"]}', '{"files": {"a": 1}}', "[]", "not json"):
        (out / "manifest.json").write_text(broken)
        with pytest.raises(ModelDirError, match="unreadable"):
            verify_manifest(out)


def test_saving_a_pickle_is_a_bug_caught_at_save(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelDirError, match="refusing to save weights.bin"):
        write_manifest(tmp_path)


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS])
def test_full_disk_or_read_only_leaves_the_previous_model(saved, tmp_path, monkeypatch, error):
    predictor, folder = saved
    out = _fresh(saved, tmp_path)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    import polymodal.modeldir as module

    def fail(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(module, "save_file", fail)
    with pytest.raises(ModelDirError, match=f"{os.strerror(error)}; nothing was changed there"):
        predictor.save(out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp folder left
    Predictor.load(out)


def test_unwritable_folder_is_reported_before_anything_is_written(saved, tmp_path, monkeypatch):
    predictor, _ = saved
    import polymodal.modeldir as modeldir

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(modeldir.tempfile, "mkdtemp", read_only)
    with pytest.raises(ModelDirError, match="cannot write a model directory in .*Read-only file system"):
        predictor.save(tmp_path / "model")


def test_cli_reports_an_unwritable_output_in_one_line(saved, tmp_path):
    predictor, folder = saved
    out = _fresh(saved, tmp_path)
    (tmp_path / "a_file").write_text("x")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "predict", str(out), "--data", str(folder / "train.csv"),
         "--out", str(tmp_path / "a_file" / "pred.csv")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot write the predictions file")
    model = tmp_path / "a_file" / "model"
    result = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "fit", "--train", str(folder / "train.csv"), "--label", "label",
         "--out", str(model)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: cannot write the model directory" in result.stderr  # before training
    assert "poch" not in result.stderr


_UNSAFE = [
    (re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"), "torch.load without weights_only=True"),
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"\bdill\b|\bjoblib\.load|cloudpickle"), "pickle-based loader"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
    (re.compile(r"trust_remote_code\s*=\s*True"), "trust_remote_code=True"),
    (re.compile(r"(?<![\w.])(eval|exec)\("), "eval/exec"),
]


def test_no_code_runs_when_loading_anything():
    """Source scan: nothing in the package unpickles or executes what it reads."""
    found = []
    for path in Path(polymodal.__file__).parent.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            found += [f"{path.name}:{number}: {what}" for pattern, what in _UNSAFE if pattern.search(code)]
    assert not found, found
