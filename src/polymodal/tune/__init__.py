"""Hyperparameter search (``polymodal tune``): an Optuna study over config keys, resumable from its
SQLite file, with a leaderboard and the best model saved as a model directory.

``space.py`` reads and checks the search space (``allowed.py``: what a key allows, in words),
``setup.py`` the tables and the base config (its preset applied), ``study.py`` runs the study
(``pruning.py``: the per-epoch pruning callback), ``leaderboard.py`` writes its table and plot,
``commands.py`` is ``polymodal tune``. Optuna comes with the ``tune`` extra
(``pip install 'polymodal[tune]'``) and is imported only when a search runs.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Search", "SearchResult", "SearchSpace", "parse_space", "prepare_search", "run_search"]

def __getattr__(name: str) -> Any:
    # `polymodal --help` imports the tune command; only a search needs the fit pipeline and Optuna.
    if name in ("Search", "prepare_search"):
        from polymodal.tune import setup

        return getattr(setup, name)
    if name in ("SearchSpace", "parse_space"):
        from polymodal.tune import space

        return getattr(space, name)
    if name in ("SearchResult", "run_search"):
        from polymodal.tune import study

        return getattr(study, name)
    raise AttributeError(f"module 'polymodal.tune' has no attribute {name!r}")
