"""The configuration: pydantic models of the YAML file (``models``) and reading one (``load``)."""
from polymodal.config.load import load_config
from polymodal.config.models import (AlignConfig, Config, GenerateConfig, HeadConfig, ModalityConfig, TrainingConfig,
                                     TuningConfig)

__all__ = ["Config", "ModalityConfig", "TuningConfig", "HeadConfig", "AlignConfig", "GenerateConfig", "TrainingConfig",
           "load_config"]
