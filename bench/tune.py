"""Hyperparameter search on av-digits: ``polymodal tune`` killed with SIGKILL mid-search, resumed by
the same command, and its best trial against the base config.

The base config is ``src/polymodal/configs/av_digits.yaml`` (the demo's) with short trials
(``--epochs``, default 3); the search space is the fusion, its dropout and the learning rate.
Tuning rows are av-digits' val split. The search is started as a subprocess of its own process
group and SIGKILLed once ``--kill-after`` trials are done and the next one runs; the same command
is then run again. The script checks that no trial done before the kill was run again (each keeps
its start time), that the trial that was running is marked failed and run again, that the study
ends with ``--trials`` done trials, and that the best trial is at least as good as trial 0 (the
base config), and prints the leaderboard and the wall times.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/tune.py
    POLYMODAL_DATA=../shared/data .venv/bin/python bench/tune.py --trials 12 --epochs 3 --kill-after 4

Timings depend on what else runs on the machine.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import yaml

SPACE = {
    "fusion.name": ["concat", "gated", "low_rank"],
    "fusion.dropout": {"float": [0.0, 0.4]},
    "training.learning_rate": {"log": [1e-3, 1e-2]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3, help="training.max_epochs of every trial")
    parser.add_argument("--kill-after", type=int, default=4, help="SIGKILL once this many trials are done")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()

    import optuna

    from polymodal.datasets.av_digits import build_av_digits
    from polymodal.datasets.root import data_root
    from polymodal.tune.study import STUDY_NAME

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="polymodal-tune-bench-"))
    tables = build_av_digits(data_root(), work / "av-digits")
    base = yaml.safe_load((resources.files("polymodal") / "configs" / "av_digits.yaml").read_text())
    base["training"].update(max_epochs=args.epochs, patience=args.epochs)
    (work / "base.yaml").write_text(yaml.safe_dump(base))
    (work / "search.yaml").write_text(yaml.safe_dump(SPACE))
    out = work / "search"
    command = [sys.executable, "-m", "polymodal.cli", "tune", "--train", str(tables["train"]),
               "--tuning", str(tables["val"]), "--config", str(work / "base.yaml"),
               "--search", str(work / "search.yaml"), "--trials", str(args.trials), "--out", str(out)]
    url = f"sqlite:///{(out / 'study.db').resolve()}"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    before = _kill_when(proc, url, STUDY_NAME, args.kill_after)
    killed_at = time.perf_counter() - start
    print(f"SIGKILLed after {killed_at:.0f}s: {sum(s != 'RUNNING' for s, _ in before.values())} trials done, trial "
          f"{[n for n, (s, _) in before.items() if s == 'RUNNING']} running")

    resumed = subprocess.run(command, capture_output=True, text=True, env=env)
    total = time.perf_counter() - start
    if resumed.returncode != 0:
        raise SystemExit(f"the resumed search failed:\n{resumed.stderr[-3000:]}")
    print(resumed.stdout)

    study = optuna.load_study(study_name=STUDY_NAME, storage=url)
    after = {t.number: t for t in study.trials}
    kept = all(after[n].datetime_start == started for n, (state, started) in before.items() if state != "RUNNING")
    running = [n for n, (state, _) in before.items() if state == "RUNNING"]
    retried = all(after[n].state.name == "FAIL" for n in running) and all(
        any(t.user_attrs.get("retry_of") == n for t in study.trials) for n in running)
    interrupted = set(study.user_attrs.get("interrupted", []))
    done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")
            or (t.state.name == "FAIL" and t.number not in interrupted)]
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    base_trial = next(t for t in finished if t.user_attrs.get("base"))
    best = study.best_trial
    print(f"trials done before the kill kept, not run again: {kept}; the running one marked failed and "
          f"run again: {retried}; done trials in the end: {len(done)} (asked {args.trials})")
    print(f"best trial {best.number}: tuning accuracy {best.value:.4f}; base config (trial {base_trial.number}) "
          f"{base_trial.value:.4f}; best >= base: {best.value >= base_trial.value}")
    print(f"wall time: {total:.0f}s in all ({killed_at:.0f}s before the kill, {total - killed_at:.0f}s resumed); "
          f"{len(study.trials)} trials recorded; folder {out}")
    if not (kept and retried and len(done) == args.trials and best.value >= base_trial.value):
        raise SystemExit("a check failed")


def _kill_when(proc: subprocess.Popen, url: str, name: str, done: int) -> dict[int, tuple[str, object]]:
    """SIGKILL ``proc``'s process group once ``done`` trials are done and another runs; the trials then."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    board = Path(url.removeprefix("sqlite:///")).parent / "leaderboard.csv"
    try:
        while proc.poll() is None:
            time.sleep(1.0)
            if not board.is_file():  # written after the first trial: the study exists by then
                continue
            try:
                trials = optuna.load_study(study_name=name, storage=url).trials
            except Exception:  # not created yet, or the database is busy: look again
                continue
            states = [t.state.name for t in trials]
            if sum(s in ("COMPLETE", "PRUNED", "FAIL") for s in states) >= done and "RUNNING" in states:
                time.sleep(3.0)  # well inside the running trial
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
                trials = optuna.load_study(study_name=name, storage=url).trials
                return {t.number: (t.state.name, t.datetime_start) for t in trials}
        raise SystemExit(f"the search ended (exit {proc.returncode}) before it could be killed")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


if __name__ == "__main__":
    main()
