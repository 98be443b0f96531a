"""``polymodal tune``: a plain function with typer annotations; ``polymodal.cli`` registers it (with
its error handling). It checks the search, runs it (``tune.study``) and prints the leaderboard."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

__all__ = ["tune", "parse_duration"]

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def tune(
    train: str = typer.Option(..., "--train", help="training table (CSV/Parquet/JSONL) or class folder"),
    search: Path = typer.Option(..., "--search", help="YAML search space: config keys and their values (docs/tune.md)"),
    out: Path = typer.Option(..., "--out", help="the search's folder: study.db, leaderboard.csv/png, best/"),
    tuning: Optional[str] = typer.Option(None, "--tuning", help="tuning table every trial is scored on "
                                         "(default: split off once, the same for every trial)"),
    label: Optional[str] = typer.Option(None, "--label", help="column to predict (or label: in the config)"),
    config: Optional[Path] = typer.Option(None, "--config", help="base YAML config: trial 0, and what the others change"),
    trials: int = typer.Option(20, "--trials", min=1, help="trials in all, counting those of an earlier run"),
    time_limit: Optional[str] = typer.Option(None, "--time-limit", help="start no trial after this long: "
                                             "seconds, or 30m, 2h, 1h30m"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL or SQLite file "
                                          "(default: <out>/study.db)"),
    resume: bool = typer.Option(False, "--resume", help="continue the search in --out (the same command "
                                "without it resumes too; with it, a missing search is an error)"),
    presets: Optional[str] = typer.Option(None, "--presets", help="fast | balanced | best (presets: in the config)"),
    prune_startup: int = typer.Option(2, "--prune-startup", min=0, help="finished trials before any is pruned"),
    prune_warmup: int = typer.Option(1, "--prune-warmup", min=0, help="epochs of each trial never pruned"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="file paths in the tables must stay inside this folder"),
) -> None:
    """Search hyperparameters with Optuna; the best model is saved in <out>/best (a model directory).

    Trial 0 is the base config as it is, so the best trial is never worse than it on the tuning
    rows. Killed or stopped, the same command resumes without running finished trials again.
    """
    from polymodal.tune.leaderboard import format_leaderboard
    from polymodal.tune.setup import prepare_search
    from polymodal.tune.study import run_search

    seconds = None if time_limit is None else parse_duration(time_limit)
    prepared = prepare_search(config, search, train, tuning, label=label, presets=presets, data_root=data_root,
                              say=typer.echo)
    url = storage if storage is None or "://" in storage else f"sqlite:///{Path(storage).resolve()}"
    result = run_search(prepared, out, trials, time_limit=seconds, storage=url, resume=resume,
                        prune_startup=prune_startup, prune_warmup=prune_warmup)
    typer.echo(format_leaderboard(result.leaderboard))
    board = result.leaderboard
    base = board[board["note"].str.startswith("the base config") & (board["state"] == "COMPLETE")]
    lines = [f"{len(board)} trials ({(board['state'] == 'COMPLETE').sum()} finished, "
             f"{(board['state'] == 'PRUNED').sum()} pruned, {(board['state'] == 'FAIL').sum()} failed) "
             f"in {result.seconds:.1f}s; leaderboard: {out / 'leaderboard.csv'}  plot: {out / 'leaderboard.png'}"]
    if result.best is not None:
        metric = result.best["metric"]
        against = f" (base config: {base[metric].iloc[0]:.4f})" if len(base) else ""
        lines.append(f"best: trial {result.best['trial']}, tuning {metric} {result.best['value']:.4f}{against}; "
                     f"model directory: {out / 'best'}")
    typer.echo("\n".join(lines))


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``90``, ``45s``, ``30m``, ``2h``, ``1h30m``, ``1.5h``.

    Raises:
        ConfigError: anything else.
    """
    from polymodal.errors import ConfigError

    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text.strip().lower())
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smhd]?)", "", text.strip().lower()).strip():
        raise ConfigError(f"--time-limit {text!r}: expected seconds or a duration such as 30m, 2h or 1h30m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"--time-limit {text!r}: expected a duration above 0")
    return seconds
