"""With a data root, file paths in a table cannot leave it: '..', absolute paths, symlinks out."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.preprocessing import BadInput
from polymodal.data.paths import PathGuard
from polymodal.errors import ConfigError, DataError


@pytest.fixture()
def layout(tmp_path):
    """root/ (the data root, with img/ and a table) and outside/secret.png beside it."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "img").mkdir(parents=True)
    outside.mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(outside / "secret.png")
    Image.new("RGB", (8, 8), (9, 9, 9)).save(root / "img" / "ok.png")
    os.symlink(outside / "secret.png", root / "img" / "link.png")
    os.symlink(root / "img" / "ok.png", root / "img" / "inner_link.png")
    return root, outside


def test_guard_resolves_inside_and_refuses_each_way_out(layout):
    root, outside = layout
    guard = PathGuard(root, root)
    assert guard.check("img/ok.png") == str((root / "img" / "ok.png").resolve())
    assert guard.check("img/../img/ok.png") == str((root / "img" / "ok.png").resolve())
    assert guard.check(str(root / "img" / "ok.png")).endswith("ok.png")  # absolute, but inside
    assert guard.check("img/inner_link.png").endswith("ok.png")  # a link that stays inside
    for value in (None, "", "  ", float("nan"), b"\x89PNG", {"bytes": b"\x89PNG", "path": "/etc/passwd"}):
        assert guard.check(value) is value or guard.check(value) == value  # nothing to check
    cases = {
        "../outside/secret.png": "'..' leads out of it",
        str(outside / "secret.png"): "an absolute path elsewhere",
        "/etc/passwd": "an absolute path elsewhere",
        "img/link.png": "a symbolic link points out of it",
        "img/../../outside/secret.png": "'..' leads out of it",
        "img/a\x00b.png": "NUL character",
    }
    for value, how in cases.items():
        with pytest.raises(BadInput, match=how):
            guard.check(value)
    with pytest.raises(BadInput, match="symbolic link"):
        guard.check({"path": "img/link.png"})
    with pytest.raises(ConfigError, match="not an existing folder"):
        PathGuard(root, root / "nope")


def test_table_outside_the_root_cannot_reach_in_or_out(layout):
    root, outside = layout
    guard = PathGuard(outside, root)  # table in outside/, root elsewhere
    with pytest.raises(BadInput, match="the table's folder is outside it"):
        guard.check("secret.png")


def test_predict_with_a_data_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    make_table(root, n=30).to_csv(root / "train.csv", index=False)
    Image.new("RGB", (12, 12), (200, 0, 0)).save(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", root / "img" / "sneaky.png")
    predictor = Predictor(label="label", config=FAST, verbose=False, data_root=root).fit(root / "train.csv")

    frame = pd.read_csv(root / "train.csv").drop(columns=["label"]).iloc[:5]
    frame.loc[1, "photo"] = "../secret.png"
    frame.loc[2, "photo"] = str(tmp_path / "secret.png")
    frame.loc[3, "photo"] = "img/sneaky.png"
    with pytest.raises(DataError) as info:  # a DataFrame's paths are relative to the data root
        predictor.predict(frame)
    message = str(info.value)
    assert "3 of 5 values could not be read" in message and "outside the data root" in message
    report = predictor.predict_report(frame, on_bad_input="skip_row")
    assert report.predictions.isna().tolist() == [False, True, True, True, False]
    assert set(report.skipped.row) == {1, 2, 3}

    loaded = Predictor.load(predictor.save(tmp_path / "model"), data_root=root)
    report = loaded.predict_report(frame, on_bad_input="skip_modality")
    assert report.predictions.notna().all()  # the escaping images count as missing
    assert len(report.skipped) == 3


def test_fit_never_reads_files_outside_the_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    frame = make_table(root, n=30)
    Image.new("RGB", (12, 12), (255, 255, 255)).save(tmp_path / "white.png")
    frame.iloc[20:].to_csv(root / "tune.csv", index=False)
    frame.loc[0, "photo"] = "../white.png"
    frame.iloc[:20].to_csv(root / "train.csv", index=False)
    train, tune = root / "train.csv", root / "tune.csv"
    with pytest.raises(DataError, match="outside the data root"):
        Predictor(label="label", config=FAST, verbose=False, data_root=root).fit(train, tune)
    config = {**FAST, "on_bad_input": "skip_row"}
    predictor = Predictor(label="label", config=config, verbose=False, data_root=root).fit(train, tune)
    assert predictor.fit_info_["skipped"]["training"]["rows_dropped"] == 1
    clean = Predictor(label="label", config=config, verbose=False).fit(train, tune)
    assert predictor.preprocessors_["photo"].mean_ != clean.preprocessors_["photo"].mean_  # white.png unread


def test_cli_data_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    make_table(root, n=30).to_csv(root / "train.csv", index=False)
    Image.new("RGB", (12, 12)).save(tmp_path / "x.png")
    table = pd.read_csv(root / "train.csv").iloc[:3]
    table.loc[0, "photo"] = "../x.png"
    table.to_csv(root / "new.csv", index=False)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cfg = tmp_path / "fast.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump({**FAST, "training": {**FAST["training"], "max_epochs": 1}}))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True,
                              text=True, env=env, timeout=300)

    fit = cli("fit", "--train", str(root / "train.csv"), "--label", "label", "--config", str(cfg),
              "--out", str(tmp_path / "m"), "--data-root", str(root))
    assert fit.returncode == 0, fit.stderr
    bad = cli("predict", str(tmp_path / "m"), "--data", str(root / "new.csv"), "--out",
              str(tmp_path / "p.csv"), "--data-root", str(root))
    assert bad.returncode == 2 and "outside the data root" in bad.stderr and "../x.png" in bad.stderr
    ok = cli("predict", str(tmp_path / "m"), "--data", str(root / "new.csv"), "--out", str(tmp_path / "p.csv"))
    assert ok.returncode == 0, ok.stderr  # without --data-root, paths may go anywhere
    assert Path(tmp_path / "p.csv").is_file()
