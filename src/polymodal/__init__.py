"""polymodal: multimodal deep learning."""
import logging as _logging

from polymodal.errors import (ConfigError, DataError, ModelDirError, NotFittedError,
                              PolymodalError, TrainingError)

from polymodal._version import __version__
from polymodal.distributed import RankZeroFilter as _RankZeroFilter

# A DDP run of N processes logs its progress once (warnings and errors: from every process).
_logging.getLogger("polymodal").addFilter(_RankZeroFilter())


def __getattr__(name: str):
    # Importing the predictor pulls in torch and Lightning; do it on first use only,
    # so `polymodal --help` and the error classes stay quick to import.
    if name == "Predictor":
        from polymodal.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'polymodal' has no attribute {name!r}")


__all__ = ["Predictor", "PolymodalError", "ConfigError", "DataError", "ModelDirError",
           "NotFittedError", "TrainingError", "__version__"]
