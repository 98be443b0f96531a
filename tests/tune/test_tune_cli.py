"""``polymodal tune`` on a small real table (scikit-learn's handwritten digits, 16 pixel columns):
a search through the CLI, pruning of a hopeless trial, and a search killed with SIGKILL that the
same command resumes without running its finished trials again."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kill import cli, env

optuna = pytest.importorskip("optuna")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

BASE = {"seed": 1, "training": {"max_epochs": 2, "batch_size": 32, "learning_rate": 3e-3, "threads": 1,
                                "load_threads": 1, "precision": "32"}}
SPACE = {"training.learning_rate": {"log": [1e-3, 3e-2]}, "fusion": {"hidden": {"int": [16, 64]}}}


@pytest.fixture()
def digits(tmp_path: Path) -> Path:
    from sklearn.datasets import load_digits

    data = load_digits()
    frame = pd.DataFrame(data.data[:300, ::4], columns=[f"p{i}" for i in range(16)])
    frame["digit"] = data.target[:300]
    frame.to_csv(tmp_path / "digits.csv", index=False)
    return tmp_path / "digits.csv"


def _command(tmp_path: Path, table: Path, base: dict, space: dict, *extra: str) -> list[str]:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(space))
    return cli("tune", "--train", str(table), "--label", "digit", "--config", str(tmp_path / "base.yaml"),
               "--search", str(tmp_path / "search.yaml"), "--out", str(tmp_path / "search"), *extra)


def _study(tmp_path: Path) -> "optuna.Study":
    return optuna.load_study(study_name="polymodal-tune", storage=f"sqlite:///{tmp_path / 'search' / 'study.db'}")


def test_a_search_writes_its_leaderboard_and_a_loadable_best_model(tmp_path, digits):
    from polymodal.predictor import Predictor

    run = subprocess.run(_command(tmp_path, digits, BASE, SPACE, "--trials", "3"), capture_output=True,
                         text=True, env=env(), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    board = pd.read_csv(tmp_path / "search" / "leaderboard.csv")
    assert sorted(board["trial"]) == [0, 1, 2] and set(board["state"]) <= {"COMPLETE", "PRUNED"}
    assert list(board.columns[:6]) == ["rank", "trial", "state", "accuracy", "epochs", "seconds"]
    assert {"training.learning_rate", "fusion.hidden", "note"} <= set(board.columns)
    base = board[board["trial"] == 0].iloc[0]
    assert base["note"] == "the base config" and base["training.learning_rate"] == pytest.approx(3e-3)
    assert (tmp_path / "search" / "leaderboard.png").stat().st_size > 1000
    assert "rank trial" in run.stdout and "best: trial" in run.stdout

    finished = board[board["state"] == "COMPLETE"]
    best = Predictor.load(tmp_path / "search" / "best")
    record = best.fit_info_["search"]
    assert record["value"] == pytest.approx(finished["accuracy"].max())
    assert record["value"] >= base["accuracy"]  # trial 0 is the base config: never worse than it
    assert best.metrics_["accuracy"] == pytest.approx(record["value"])
    assert len(best.predict(digits)) == 300

    again = subprocess.run(_command(tmp_path, digits, BASE, SPACE, "--trials", "3"), capture_output=True,
                           text=True, env=env(), timeout=600)
    assert again.returncode == 0 and "already has 3 done trials" in again.stderr
    assert len(_study(tmp_path).trials) == 3
    changed = subprocess.run(_command(tmp_path, digits, {**BASE, "seed": 2}, SPACE, "--trials", "4"),
                             capture_output=True, text=True, env=env(), timeout=600)
    assert changed.returncode == 2 and "was started with another config (seed)" in changed.stderr


def test_a_hopeless_trial_is_pruned(tmp_path, digits):
    from polymodal.tune import prepare_search, run_search

    base = {**BASE, "label": "digit", "training": {**BASE["training"], "max_epochs": 4, "patience": 4}}
    search = prepare_search(base, {"training.learning_rate": [1e-7]}, str(digits), say=lambda _: None)
    result = run_search(search, tmp_path / "search", trials=2, prune_startup=1, prune_warmup=1, say=lambda _: None)
    board = result.leaderboard.set_index("trial")
    assert board.loc[0, "state"] == "COMPLETE"
    assert board.loc[1, "state"] == "PRUNED" and board.loc[1, "epochs"] < 4
    assert "lags the other trials" in board.loc[1, "note"]
    assert result.best["trial"] == 0


def test_sigkill_mid_search_then_the_same_command_resumes_without_repeating_trials(tmp_path, digits):
    # Batches of 4: trials of a few seconds, so that the kill lands inside one.
    base = {**BASE, "training": {**BASE["training"], "batch_size": 4}}
    command = _command(tmp_path, digits, base, SPACE, "--trials", "3", "--prune-startup", "10")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(),
                            start_new_session=True)
    before = None
    try:
        deadline = time.monotonic() + 300
        while before is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if not (tmp_path / "search" / "leaderboard.csv").is_file():  # after trial 0
                continue
            # Stop the search while its study is read, so that the trial seen running is still
            # running when the kill lands (a trial can end between a look and a kill).
            os.killpg(proc.pid, signal.SIGSTOP)
            try:
                trials = _study(tmp_path).trials
            except Exception:  # the database was being written: look again
                trials = []
            if [t.state.name for t in trials][:2] == ["COMPLETE", "RUNNING"]:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
                before = _study(tmp_path).trials
            else:
                os.killpg(proc.pid, signal.SIGCONT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert before is not None, f"the search was never seen mid-trial: {proc.stderr.read().decode()[-2000:]}"
    assert [t.state.name for t in before] == ["COMPLETE", "RUNNING"]

    resumed = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming the search: 1 done trials kept" in resumed.stderr
    after = _study(tmp_path).trials
    assert after[0].state.name == "COMPLETE" and after[0].datetime_start == before[0].datetime_start
    assert after[0].value == before[0].value  # trial 0 was not run again
    assert after[1].state.name == "FAIL"  # the trial that was running: failed, and run again
    retry = [t for t in after if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == before[1].params
    done = [t for t in after if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == 3 and len(after) == 4
    assert len({tuple(sorted(t.params.items())) for t in done}) == 3  # no finished trial repeated
    board = pd.read_csv(tmp_path / "search" / "leaderboard.csv").set_index("trial")
    assert "interrupted when the search stopped" in board.loc[1, "note"]
