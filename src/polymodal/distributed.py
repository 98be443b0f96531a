"""Which process this is in a multi-process (DDP) run: a neutral leaf for the stages that
write files or print, so that a run of N processes writes one model directory, one summary
and one log.

Lightning launches the processes (``training.devices`` > 1 on one machine) or finds them
started by ``torchrun`` / SLURM; its ``rank_zero_only.rank`` knows the global rank from the
environment at start-up (``RANK``, ``LOCAL_RANK``, ``SLURM_PROCID``) and from the strategy
once training has begun. polymodal asks it instead of keeping a rank of its own.
"""
from __future__ import annotations

import logging
import os
import sys

__all__ = ["RankZeroFilter", "global_rank", "is_rank_zero", "world_size"]

_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # Lightning's order


def global_rank() -> int:
    """This process's rank among all processes of the run (0 when there is one)."""
    lightning = sys.modules.get("lightning.fabric.utilities.rank_zero")
    if lightning is not None:  # set from the environment at import, by the strategy once training runs
        return int(getattr(lightning.rank_zero_only, "rank", 0) or 0)
    for name in _RANK_VARIABLES:  # Lightning not imported yet: what it would read
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def is_rank_zero() -> bool:
    """True in the process that writes the model directory and prints the summary."""
    return global_rank() == 0


def world_size(training) -> int:
    """Processes a fit with ``training`` (a ``TrainingConfig``) runs on: devices x num_nodes."""
    return int(training.devices) * int(training.num_nodes)


class RankZeroFilter(logging.Filter):
    """Keeps the progress lines (below WARNING) of rank 0 only; warnings and errors of
    every process pass. Installed on the ``polymodal`` logger when the package is imported."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or is_rank_zero()
