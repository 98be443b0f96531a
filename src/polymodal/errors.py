"""The error family. Every error a user can cause is a ``PolymodalError``.

Each subclass also inherits the matching builtin, so ``except ValueError`` keeps working.
Messages say what went wrong, what was expected, what was found, and how to fix it.
"""
from __future__ import annotations

__all__ = [
    "PolymodalError",
    "ConfigError",
    "DataError",
    "NotFittedError",
    "ModelDirError",
    "TrainingError",
    "ExportError",
]


class PolymodalError(Exception):
    """Root of every error polymodal raises on bad input or misuse."""


class ConfigError(PolymodalError, ValueError):
    """The configuration is invalid (unknown key, bad value, impossible combination)."""


class DataError(PolymodalError, ValueError):
    """The data cannot be used as given (missing column, unreadable file, single class)."""


class NotFittedError(PolymodalError, AttributeError):
    """A predictor was used before ``fit`` (or ``load``)."""


class ModelDirError(PolymodalError, OSError):
    """A model directory is missing, incomplete, or cannot be written."""


class TrainingError(PolymodalError, RuntimeError):
    """Training went wrong in a way the data and config checks could not foresee (the loss
    or the weights became NaN or infinite); no model is kept."""


class ExportError(PolymodalError, ValueError):
    """A fitted model cannot be written (or run) as an ONNX graph: its task makes no
    predictions, or one of its encoders or its fusion does not export faithfully."""
