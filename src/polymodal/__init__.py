"""polymodal: multimodal deep learning."""
from polymodal.errors import (ConfigError, DataError, ModelDirError, NotFittedError,
                              PolymodalError, TrainingError)

from polymodal._version import __version__


def __getattr__(name: str):
    # Importing the predictor pulls in torch and Lightning; do it on first use only,
    # so `polymodal --help` and the error classes stay quick to import.
    if name == "Predictor":
        from polymodal.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'polymodal' has no attribute {name!r}")


__all__ = ["Predictor", "PolymodalError", "ConfigError", "DataError", "ModelDirError",
           "NotFittedError", "TrainingError", "__version__"]
