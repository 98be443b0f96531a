"""Where the command line's log lines go: stderr (``--quiet``: warnings and errors only) and,
with ``--log-file PATH``, that file too.

The command line owns its process's output, so it gives the ``polymodal`` logger its own
handlers for the command's run and puts the logger back as it found it afterwards (a command
run in-process, by a test or a notebook, leaves the host's logging as it was).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable, Optional

from polymodal.errors import ConfigError

__all__ = ["configure_logging", "quiet"]

_FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class _CommandStderr(logging.StreamHandler):
    """The running command's stderr handler (its level says whether ``--quiet`` was given)."""


def configure_logging(quiet: bool = False, log_file: Optional[Path] = None) -> Callable[[], None]:
    """Send the ``polymodal`` log to stderr (INFO and up; WARNING and up when ``quiet``) and to
    ``log_file`` (INFO and up, with times and levels, appended). Returns the function that undoes it.

    Raises:
        ConfigError: ``log_file`` cannot be opened for writing.
    """
    log = logging.getLogger("polymodal")
    before = (log.level, log.propagate)
    stderr = _CommandStderr(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(message)s"))
    stderr.setLevel(logging.WARNING if quiet else logging.INFO)
    handlers: list[logging.Handler] = [stderr]
    if log_file is not None:
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            to_file = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--log-file {log_file}: cannot open it for writing ({exc.strerror or exc}); "
                              "name a file in a writable folder") from None
        to_file.setFormatter(logging.Formatter(_FILE_FORMAT))
        to_file.setLevel(logging.INFO)
        handlers.append(to_file)
    for handler in handlers:
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the command's own handlers show each line once

    def undo() -> None:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
        log.setLevel(before[0])
        log.propagate = before[1]

    return undo


def quiet() -> bool:
    """Whether the running command was given ``--quiet`` (False outside a command): progress
    bars and other non-warning output to stderr are then left out."""
    return any(isinstance(h, _CommandStderr) and h.level > logging.INFO for h in logging.getLogger("polymodal").handlers)
