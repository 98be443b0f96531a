"""polymodal: multimodal deep learning."""
import logging as _logging
import sys as _sys

from polymodal.errors import (ConfigError, DataError, ModelDirError, NotFittedError,
                              PolymodalError, TrainingError)

from polymodal._version import __version__
from polymodal.distributed import RankZeroFilter as _RankZeroFilter

# One below INFO: the level polymodal gives its logger when the user has set none, told apart from
# a user's own ``setLevel(logging.INFO)``. With it the progress lines (INFO) pass.
_DEFAULT_LEVEL = _logging.INFO - 1


def _reaches_other_handler(record: _logging.LogRecord, own: _logging.Handler) -> bool:
    """Whether ``record`` meets a handler other than ``own`` on its way up the logger tree."""
    logger: "_logging.Logger | None" = _logging.getLogger(record.name)
    while logger is not None:
        if any(handler is not own for handler in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


class _DefaultOutput(_logging.Handler):
    """polymodal's INFO lines (and warnings) on stderr, as long as no other handler would show them.

    Without it a notebook or script that configures no logging would see only warnings (Python's
    last-resort handler); with it the column roles ``fit`` logs and the other progress lines
    appear. A handler of the user's own (``logging.basicConfig``, one on the ``polymodal``
    logger, pytest's) takes over: this one then writes nothing, and the levels the user set apply.
    """

    def __init__(self) -> None:
        super().__init__(_logging.NOTSET)
        self.setFormatter(_logging.Formatter("%(message)s"))

    def emit(self, record: _logging.LogRecord) -> None:
        if _reaches_other_handler(record, self):
            return
        try:
            _sys.stderr.write(self.format(record) + "\n")  # the stderr of now (a notebook swaps it)
            _sys.stderr.flush()
        except Exception:  # noqa: BLE001  (logging's contract: report, never raise)
            self.handleError(record)


class _UserLevels(_logging.Filter):
    """While polymodal's default level holds and a handler of the user's shows the records, pass
    only those the user's logging lets through (as if polymodal had set no level)."""

    def filter(self, record: _logging.LogRecord) -> bool:
        logger = _logging.getLogger("polymodal")
        if logger.level != _DEFAULT_LEVEL or not _reaches_other_handler(record, _DEFAULT_OUTPUT):
            return True
        parent = logger.parent
        return parent is None or record.levelno >= parent.getEffectiveLevel()


_DEFAULT_OUTPUT = _DefaultOutput()
_log = _logging.getLogger("polymodal")
# A DDP run of N processes logs its progress once (warnings and errors: from every process).
_log.addFilter(_RankZeroFilter())
if _log.level == _logging.NOTSET:  # the user's level, when set before the import, stays
    _log.setLevel(_DEFAULT_LEVEL)
_log.addFilter(_UserLevels())
_log.addHandler(_DEFAULT_OUTPUT)


def __getattr__(name: str):
    # Importing the predictor pulls in torch and Lightning; do it on first use only,
    # so `polymodal --help` and the error classes stay quick to import.
    if name == "Predictor":
        from polymodal.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'polymodal' has no attribute {name!r}")


__all__ = ["Predictor", "PolymodalError", "ConfigError", "DataError", "ModelDirError",
           "NotFittedError", "TrainingError", "__version__"]
