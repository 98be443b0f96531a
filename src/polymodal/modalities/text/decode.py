"""A text cell as a string: bytes decoded, absent cells (None, NaN, NA, blank) as ``None``."""
from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["text_of"]


def text_of(value: Any) -> str | None:
    """The cell as a string, or ``None`` when absent (None, NaN, NA, empty or blank)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    elif not isinstance(value, str):
        if pd.api.types.is_scalar(value) and pd.isna(value):
            return None
        value = str(value)
    if not value.isascii():  # lone surrogates (from JSON "\ud800") cannot be tokenised
        value = value.encode("utf-8", errors="replace").decode("utf-8")
    return value if value.strip() else None
