"""A save killed midway (SIGKILL, power cut) leaves its hidden ``.<name>.tmp-*`` folder beside
the target. The next save to the same path, and `polymodal fit` with the same ``--out``, remove
the folders of saves whose process is gone, say so in one line, and keep the folder of a save
that is still running."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthetic import FAST
from polymodal import Predictor

pytestmark = pytest.mark.usefixtures("one_thread")

# A save that writes half a model, says where, and waits to be killed.
_SAVE_AND_WAIT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from polymodal.modeldir import atomic_directory
    with atomic_directory(Path(sys.argv[1])) as tmp:
        (tmp / "model.safetensors").write_bytes(b"half a model")
        print(tmp, flush=True)
        time.sleep(300)
""")


def _saving(target: Path) -> tuple[subprocess.Popen, Path]:
    """A save to ``target`` in another process, stopped in the middle; and its temporary folder."""
    proc = subprocess.Popen([sys.executable, "-c", _SAVE_AND_WAIT, str(target)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_dir() and tmp.parent == target.parent and tmp.name.startswith(f".{target.name}.tmp-")
    return proc, tmp


def _killed_save(target: Path) -> Path:
    proc, tmp = _saving(target)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tmp.is_dir()  # what a killed save leaves
    return tmp


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(size=40), "shop": rng.choice(["n", "s"], 40),
                          "label": ["red", "blue"] * 20})
    return frame


def test_the_next_save_removes_what_a_killed_save_left_and_keeps_a_running_one(tabular, tmp_path, caplog):
    predictor = Predictor(label="label", config=FAST, verbose=False).fit(tabular)
    target = tmp_path / "model"
    predictor.save(target)
    running, live = _saving(target)  # first: a save cleans up before it starts
    killed = _killed_save(target)
    try:
        with caplog.at_level(logging.WARNING, logger="polymodal"):
            predictor.save(target)
        lines = [r.getMessage() for r in caplog.records if "killed midway" in r.getMessage()]
        assert len(lines) == 1, caplog.text
        assert f"Removed 1 temporary folder(s) that saves to {target} killed midway left behind: {killed.name}." \
            == lines[0]
        assert not killed.exists()
        assert _hidden(tmp_path) == [live.name]  # a save still running keeps its folder
        assert Predictor.load(target).predict(tabular).shape == (40,)
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        predictor.save(target)
    assert live.name in caplog.text and _hidden(tmp_path) == []


def test_a_save_killed_between_its_two_renames_gets_the_previous_model_back(tabular, tmp_path, caplog):
    """The target was moved aside (``.<name>.old-<host>-<pid>``) and the process died: the next
    save puts it back first, so that a failure of that save too still leaves a model."""
    predictor = Predictor(label="label", config=FAST, verbose=False).fit(tabular)
    target = predictor.save(tmp_path / "model")
    killed = _killed_save(target)
    host, pid = killed.name.split(".tmp-")[1].split("-")[:2]
    aside = tmp_path / f".model.old-{host}-{pid}"
    target.rename(aside)
    killed.rename(tmp_path / "elsewhere")  # only the moved-aside model is left
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        predictor.save(target)
    assert f"Restored {target} from {aside.name}" in caplog.text
    assert _hidden(tmp_path) == [] and Predictor.load(target).predict(tabular).shape == (40,)


def test_fit_with_the_same_out_removes_leftovers_and_says_so(tabular, tmp_path):
    tabular.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(FAST))
    target = tmp_path / "model"
    killed = _killed_save(target)
    old = tmp_path / ".model.tmp-a1b2c3d4"  # an older polymodal's name (no process id): by age
    old.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    result = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "fit", "--train", str(tmp_path / "train.csv"), "--label", "label",
         "--config", str(tmp_path / "config.yaml"), "--out", str(target)],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "killed midway" in line]
    assert lines == [f"Removed 2 temporary folder(s) that saves to {target} killed midway left behind: "
                     f"{killed.name}, {old.name}."], result.stderr[-3000:]
    assert _hidden(tmp_path) == [] and (target / "manifest.json").is_file()
