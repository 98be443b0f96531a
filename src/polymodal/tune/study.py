"""Running a search: an Optuna study (TPE, seeded; median pruning on each epoch's monitored value)
kept in a local SQLite file, so that a search stopped at any point, even by SIGKILL, resumes.

Trial 0 is the base config as it is, so the best trial is never worse than the base config on
the tuning rows. Each trial is an ordinary ``pipeline.fit`` scored on the same tuning rows; the
best model so far is saved as a model directory (``<out>/best``, written atomically, rewritten
only by a better trial) before its trial is recorded as finished. On resume the finished trials
are kept; a trial that was running when the search stopped is marked failed and run again.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from polymodal.config import Config, TrainingConfig
from polymodal.errors import ConfigError, PolymodalError
from polymodal.modeldir import save_model
from polymodal.pipeline import fit
from polymodal.training.fit import resolve_monitor
from polymodal.tune.leaderboard import leaderboard, plot_leaderboard, write_leaderboard
from polymodal.tune.pruning import PruneOnEpoch
from polymodal.tune.setup import Search

__all__ = ["SearchResult", "run_search", "STUDY_NAME"]

log = logging.getLogger("polymodal")

STUDY_NAME = "polymodal-tune"


@dataclass
class SearchResult:
    leaderboard: pd.DataFrame  # tune.leaderboard.leaderboard: one row per trial, best first
    best: dict[str, Any] | None  # the saved best model's {"trial", "metric", "value", "params"}
    found: int  # trials already done when this run started (a resumed search)
    out: Path
    seconds: float


def run_search(search: Search, out: str | Path, trials: int, time_limit: float | None = None,
               storage: str | None = None, resume: bool = False, prune_startup: int = 2, prune_warmup: int = 1,
               say: Callable[[str], None] = log.info) -> SearchResult:
    """Run (or resume) the search until it holds ``trials`` done trials or ``time_limit`` passes.

    Args:
        out: the search's folder: ``study.db`` (unless ``storage``), ``leaderboard.csv``,
            ``leaderboard.png``, ``best/``.
        trials: done trials wanted in all (finished, pruned or failed; not the interrupted ones).
        time_limit: seconds after which no new trial starts (the running one ends as usual).
        storage: an Optuna storage URL (``sqlite:///path.db``) instead of ``<out>/study.db``.
        resume: require an existing search in the storage (without it, one is resumed when found).
        prune_startup: finished trials before any trial is pruned; prune_warmup: epochs of each
            trial never pruned.

    Raises:
        ConfigError: another search runs in ``out``; ``resume`` without a search to resume; a
            search there was started with another config, space or tables.
    """
    import optuna
    from filelock import FileLock, Timeout

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / ".study.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ConfigError(f"another polymodal tune is running in {out}; wait for it, or pass another --out") from None
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what each trial did
    try:
        study, found = _open_study(search, storage or f"sqlite:///{(out / 'study.db').resolve()}", resume,
                                   trials, prune_startup, prune_warmup, say)
        best = _Best(out / "best", search.metric, search.direction)
        remaining = trials - found
        if remaining <= 0:
            say(f"The search in {out} already has {found} done trials (--trials {trials}); nothing to run.")
        else:
            def written(study: Any, trial: Any) -> None:
                _write(study, search, out)

            study.optimize(lambda trial: _objective(trial, search, best, out, say), n_trials=remaining,
                           timeout=time_limit, catch=(PolymodalError,), callbacks=[written])
        board = _write(study, search, out)
        return SearchResult(board, best.info, found, out, time.perf_counter() - start)
    finally:
        optuna.logging.set_verbosity(verbosity)
        lock.release()


def _open_study(search: Search, url: str, resume: bool, trials: int, prune_startup: int, prune_warmup: int,
                say: Callable[[str], None]) -> tuple[Any, int]:
    """The study in ``url`` (created with trial 0 queued, or resumed after checks) and its done trials."""
    import optuna
    from optuna.trial import TrialState

    signature = json.loads(json.dumps(search.signature()))
    exists = STUDY_NAME in optuna.study.get_all_study_names(url)
    if resume and not exists:
        raise ConfigError(f"--resume: no search to resume in {url.removeprefix('sqlite:///')}; "
                          "run the same command without --resume to start it")
    held = len(optuna.load_study(study_name=STUDY_NAME, storage=url).trials) if exists else 0
    # A seed that moves on with the trials held: a resumed TPE does not draw its first values again.
    sampler = optuna.samplers.TPESampler(seed=search.base.seed + held,
                                         n_startup_trials=min(10, max(2, trials // 3)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=prune_startup, n_warmup_steps=prune_warmup)
    direction = search.direction
    study = optuna.create_study(storage=url, study_name=STUDY_NAME, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    if not exists:
        study.set_user_attr("search", signature)
        study.enqueue_trial(search.space.base_params(search.base), user_attrs={"base": True})
        return study, 0
    changed = list(dict.fromkeys(_what(key) for key in _differences(study.user_attrs.get("search", {}), signature)))
    if changed:
        raise ConfigError(f"the search in {url.removeprefix('sqlite:///')} was started with another "
                          f"{', '.join(changed[:6])}; rerun it with the same --config, --search and tables, "
                          "or pass a new --out to start another search")
    interrupted = list(study.user_attrs.get("interrupted", []))
    stopped = [t for t in study.get_trials(deepcopy=False) if t.number not in interrupted and (
        t.state == TrialState.RUNNING or (t.state == TrialState.FAIL and t.user_attrs.get("stopped")))]
    for trial in stopped:
        if trial.state == TrialState.RUNNING:  # its process is gone: our lock was free
            study.tell(trial.number, state=TrialState.FAIL)
        interrupted.append(trial.number)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number,
                                                      **({"base": True} if trial.user_attrs.get("base") else {})})
        say(f"Trial {trial.number} was running when the search stopped: marked failed, queued again.")
    study.set_user_attr("interrupted", interrupted)
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and t.number not in interrupted)]
    say(f"Resuming the search: {len(done)} done trials kept "
        f"({sum(t.state == TrialState.COMPLETE for t in done)} finished), not run again.")
    return study, len(done)


def _objective(trial: Any, search: Search, best: "_Best", out: Path, say: Callable[[str], None]) -> float:
    """One trial: its config, an ordinary fit with the pruning callback, the tuning score."""
    import optuna

    start = time.perf_counter()
    space, is_base = search.space, bool(trial.user_attrs.get("base"))
    pruning = None
    try:
        if is_base:  # the base config as it is; its values are recorded where they lie in the space
            in_space = space.base_params(search.base)
            values = {d.key: d.suggest(trial) for d in space.dimensions if d.key in in_space}
            config = search.base
        else:
            values = space.suggest(trial)
            config = space.config_for(search.base, values)
        config = _logs_in(config, out / "logs", trial.number)
        monitor, mode = resolve_monitor(config.training.monitor, search.task)
        sign = 1 if (mode == "max") == (search.direction == "maximize") else -1
        pruning = PruneOnEpoch(trial, monitor, sign)
        fitted = fit(config, search.train, search.tuning, data_root=search.data_root, say=log.debug,
                     callbacks=[pruning])
    except KeyboardInterrupt:  # Optuna marks it failed; a resumed search runs it again
        trial.set_user_attr("stopped", True)
        raise
    except (optuna.TrialPruned, PolymodalError) as exc:
        seconds = time.perf_counter() - start
        trial.set_user_attr("seconds", round(seconds, 2))
        trial.set_user_attr("epochs", pruning.epochs if pruning is not None else 0)
        pruned = isinstance(exc, optuna.TrialPruned)
        trial.set_user_attr("pruned" if pruned else "error", " ".join(str(exc).split())[:300])
        say(f"trial {trial.number} {'pruned' if pruned else 'failed'} after {seconds:.1f}s "
            f"({_shown(trial.params)}): {' '.join(str(exc).split())[:200]}")
        raise
    value = float(fitted.reports["tuning"]["metrics"][search.metric])
    seconds = time.perf_counter() - start
    trial.set_user_attr("epochs", int(fitted.fit_info["epochs"]))
    trial.set_user_attr("seconds", round(seconds, 2))
    saved = best.offer(trial.number, value, dict(trial.params), fitted)
    say(f"trial {trial.number}{' (base config)' if is_base else ''}: tuning {search.metric} {value:.4f} "
        f"in {fitted.fit_info['epochs']} epochs, {seconds:.1f}s ({_shown(trial.params)})"
        + ("; the best so far, saved" if saved else ""))
    return value


def _logs_in(config: Config, folder: Path, number: int) -> Config:
    """Each trial's experiment log in ``<out>/logs/trial-<n>`` unless the config names its own place."""
    fields = TrainingConfig.model_fields
    if not {"log_dir", "experiment"} <= set(fields):
        return config
    training = config.training
    if training.log_dir != fields["log_dir"].default or training.experiment is not None:
        return config
    return config.model_copy(update={"training": training.model_copy(
        update={"log_dir": str(folder), "experiment": f"trial-{number}"})})


class _Best:
    """The best model so far, in a model directory whose ``metrics.json`` says which trial it is."""

    def __init__(self, path: Path, metric: str, direction: str) -> None:
        self.path, self.metric, self.direction = path, metric, direction
        self.info = _saved_search(path)

    def offer(self, number: int, value: float, params: dict[str, Any], fitted: Any) -> bool:
        """Save ``fitted`` when ``value`` beats the saved model's (atomically); True when saved."""
        current = None if self.info is None else self.info["value"]
        if current is not None and not (value > current if self.direction == "maximize" else value < current):
            return False
        info = {"trial": number, "metric": self.metric, "value": value, "params": params}
        fitted.fit_info = {**fitted.fit_info, "search": info}
        save_model(fitted, self.path)
        self.info = info
        return True


def _saved_search(path: Path) -> dict[str, Any] | None:
    """The ``search`` record of the model directory at ``path`` (None when there is none)."""
    try:
        return json.loads((path / "metrics.json").read_text())["fit"]["search"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(study: Any, search: Search, out: Path) -> pd.DataFrame:
    """The leaderboard CSV and plot of the study's trials, rewritten."""
    trials = study.get_trials(deepcopy=False)
    interrupted = set(study.user_attrs.get("interrupted", []))
    board = leaderboard(trials, search.metric, search.direction, interrupted)
    write_leaderboard(board, out / "leaderboard.csv")
    plot_leaderboard(trials, search.metric, search.direction, out / "leaderboard.png",
                     title=f"{len(trials)} trials, tuning {search.metric}")
    return board


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two JSON mappings."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".") or "search"]


def _what(key: str) -> str:
    """A signature key in words: ``config.training.max_epochs`` → ``config (training.max_epochs)``."""
    head, _, rest = key.partition(".")
    named = {"space": "search space", "train": "training table", "tuning": "tuning table",
             "metric": "tuning metric", "direction": "tuning metric"}
    return f"config ({rest})" if head == "config" else named.get(head, head)


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "no params"
