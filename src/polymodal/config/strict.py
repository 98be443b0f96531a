"""The base of every config model: unknown keys and non-finite numbers are refused."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["_Strict"]  # private to the config package: its models derive from it


class _Strict(BaseModel):
    # inf and NaN are no settings: a learning rate of .inf trains a model of NaNs.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
