"""Numeric and categorical columns → one ``tabular`` input.

``fit`` learns each numeric column's mean/std (over finite values) and each categorical
column's vocabulary. ``load`` turns a row into standardised numbers (missing → 0 plus a
missing flag) and category ids (0 = missing or unknown); ``collate`` stacks them into
``numeric Float[B, N]``, ``numeric_missing Float[B, N]`` and ``categorical Long[B, K]``.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from polymodal.preprocessing import BadInput, read_state, shown, write_state
from polymodal.options import parse_options
from polymodal.errors import ConfigError, NotFittedError

__all__ = ["TabularPreprocessor"]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _number(value: Any, column: str) -> float:
    """One numeric cell as a float; NaN for missing, ±inf and overflowing values.

    Raises:
        BadInput: the cell holds something that is not a number (``'abc'``, a list, ...).
    """
    if _is_missing(value):
        return math.nan
    if isinstance(value, np.generic):
        value = value.item()
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except OverflowError:
        return math.nan  # e.g. 10**400: as unusable as inf
    except (TypeError, ValueError):
        raise BadInput(f"column '{column}': {shown(value, 40)} is not a number") from None
    return number if math.isfinite(number) else math.nan


def _category(value: Any) -> str | None:
    """One categorical cell as its vocabulary key; ``None`` when missing.

    Integer-valued floats map like ints (``3.0`` → ``'3'``), since a column of ints with a
    gap is read as floats.
    """
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _column_numbers(series: pd.Series) -> np.ndarray:
    """A training column as ``Float64[rows]``, parsed like ``load`` parses one cell;
    cells that are not numbers become NaN (``load`` reports them per row)."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)  # fast path
    values = []
    for value in series.tolist():
        try:
            values.append(_number(value, str(series.name)))
        except BadInput:
            values.append(math.nan)
    return np.array(values, dtype=np.float64)


def _mean_std(finite: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of finite numbers, without overflow near the float limit.

    The numbers are scaled by a power of two (exact) so that their sum stays finite.
    """
    if not finite.size:
        return 0.0, 1.0
    scale = 2.0 ** max(0, math.frexp(float(np.abs(finite).max()))[1] - 1)
    scaled = finite / scale
    mean, std = float(scaled.mean()) * scale, float(scaled.std()) * scale
    return (mean if math.isfinite(mean) else 0.0), std


class TabularPreprocessor:
    """All numeric + categorical columns → ``numeric``, ``numeric_missing``, ``categorical``."""

    modality: ClassVar[str] = "tabular"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        min_count: int = Field(1, ge=1)  # rarer training categories map to 0 (unknown)
        max_categories: int = Field(1000, ge=1)  # per column, most frequent kept
        clip: float | None = Field(10.0, gt=0.0)  # standardised values clipped to ±clip

    def __init__(
        self,
        name: str,
        columns: list[str],
        *,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        **options: Any,
    ) -> None:
        numeric, categorical = list(numeric or []), list(categorical or [])
        both = set(numeric) & set(categorical)
        if both:
            raise ConfigError(
                f"tabular input '{name}': columns {sorted(both)} are both numeric and categorical"
            )
        if sorted(numeric + categorical) != sorted(columns) or len(set(columns)) != len(columns):
            raise ConfigError(
                f"tabular input '{name}': columns {list(columns)} must be exactly numeric "
                f"{numeric} + categorical {categorical}, each once"
            )
        self.options = parse_options(self.Options, options, f"tabular input '{name}'")
        self.name = name
        self.numeric = numeric
        self.categorical = categorical
        self.columns = numeric + categorical
        self.mean_: np.ndarray | None = None  # Float64[N]
        self.std_: np.ndarray | None = None  # Float64[N]
        self.vocab_: list[dict[str, int]] | None = None  # per categorical column: key → id >= 1

    # ------------------------------------------------------------------ fit / load
    def fit(self, frame: Any, base_dir: Path) -> "TabularPreprocessor":
        """Learn numeric mean/std and categorical vocabularies from the training table.

        Cells that are not numbers are ignored here; ``load`` reports them per row.
        """
        means, stds = [], []
        for column in self.numeric:
            values = _column_numbers(frame[column])
            mean, std = _mean_std(values[np.isfinite(values)])
            means.append(mean)
            stds.append(std if std > 1e-12 and math.isfinite(std) else 1.0)
        self.mean_ = np.array(means, dtype=np.float64)
        self.std_ = np.array(stds, dtype=np.float64)
        o = self.options
        self.vocab_ = []
        for column in self.categorical:
            counts = Counter(k for k in map(_category, frame[column].tolist()) if k is not None)
            kept = [k for k, n in counts.items() if n >= o.min_count]
            kept.sort(key=lambda k: (-counts[k], k))  # most frequent first, ties by name
            self.vocab_.append({key: i + 1 for i, key in enumerate(kept[: o.max_categories])})
        return self

    def _check_fitted(self) -> None:
        if self.vocab_ is None:
            raise NotFittedError(f"tabular input '{self.name}': call fit() before load()")

    def load(self, row: Mapping[str, Any], base_dir: Path) -> dict[str, np.ndarray] | None:
        """One row as ``numeric Float32[N]``, ``numeric_missing Float32[N]``,
        ``categorical Int64[K]``; ``None`` when every cell is missing.

        Raises:
            BadInput: a numeric cell holds something that is not a number.
        """
        self._check_fitted()
        raw = np.array([_number(row.get(c), c) for c in self.numeric], dtype=np.float64)  # [N]
        missing = np.isnan(raw)  # [N]
        with np.errstate(over="ignore", invalid="ignore"):  # 1e308 / 0.5 → inf → clipped
            scaled = np.where(missing, 0.0, (raw - self.mean_) / self.std_)  # [N]
        limit = self.options.clip if self.options.clip is not None else 1e30  # finite in float32
        scaled = np.clip(scaled, -limit, limit)
        keys = [_category(row.get(c)) for c in self.categorical]
        ids = [0 if k is None else vocab.get(k, 0) for vocab, k in zip(self.vocab_, keys)]
        if missing.all() and all(k is None for k in keys):
            return None
        return {
            "numeric": scaled.astype(np.float32),
            "numeric_missing": missing.astype(np.float32),
            "categorical": np.array(ids, dtype=np.int64),
        }

    def without(self, item: dict[str, np.ndarray] | None, column: str) -> dict[str, np.ndarray] | None:
        """``item`` (a ``load`` result) with ``column``'s cell missing: what ablating one column of
        the input means (``polymodal.explain``); ``None`` stays ``None``."""
        if item is None:
            return None
        out = {key: value.copy() for key, value in item.items()}
        if column in self.numeric:
            i = self.numeric.index(column)
            out["numeric"][i], out["numeric_missing"][i] = 0.0, 1.0  # as load encodes a missing number
        else:
            out["categorical"][self.categorical.index(column)] = 0  # missing or unknown category
        return out

    # ------------------------------------------------------------------ train / batch
    def augment(self, item: dict[str, np.ndarray], generator: torch.Generator) -> dict[str, Any]:
        """No tabular augmentation: returns ``item`` unchanged."""
        return item

    def collate(self, items: list[dict[str, np.ndarray] | None]) -> dict[str, torch.Tensor]:
        """``numeric Float[B, N]``, ``numeric_missing Float[B, N]``, ``categorical Long[B, K]``.

        An absent row looks like a row with every cell missing (0, flag 1, id 0).
        """
        n, k = len(self.numeric), len(self.categorical)
        empty = {
            "numeric": np.zeros(n, np.float32),
            "numeric_missing": np.ones(n, np.float32),
            "categorical": np.zeros(k, np.int64),
        }
        rows = [empty if item is None else item for item in items]
        widths = {"numeric": n, "numeric_missing": n, "categorical": k}
        batch = {
            key: torch.from_numpy(np.stack([r[key] for r in rows]).reshape(len(rows), width))
            for key, width in widths.items()
        }  # numeric [B, N], numeric_missing [B, N], categorical [B, K]
        batch["numeric"] = batch["numeric"].float()
        batch["numeric_missing"] = batch["numeric_missing"].float()
        batch["categorical"] = batch["categorical"].long()
        return batch

    def encoder_inputs(self) -> dict[str, Any]:
        self._check_fitted()
        return {"n_numeric": len(self.numeric), "cardinalities": [len(v) + 1 for v in self.vocab_]}

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write ``state.json``: options, numeric mean/std, category lists in id order."""
        self._check_fitted()
        write_state(
            Path(directory),
            {
                "modality": self.modality,
                "name": self.name,
                "columns": self.columns,
                "numeric": self.numeric,
                "categorical": self.categorical,
                "options": self.options.model_dump(),
                "mean": self.mean_.tolist(),
                "std": self.std_.tolist(),
                "categories": [sorted(v, key=v.__getitem__) for v in self.vocab_],  # id 1, 2, ...
            },
        )

    @classmethod
    def load_from(cls, directory: Path) -> "TabularPreprocessor":
        """Rebuild the fitted preprocessor from ``save``'s ``state.json``."""
        state = read_state(Path(directory))
        self = cls(
            state["name"],
            state["columns"],
            numeric=state["numeric"],
            categorical=state["categorical"],
            **state["options"],
        )
        self.mean_ = np.array(state["mean"], dtype=np.float64)
        self.std_ = np.array(state["std"], dtype=np.float64)
        self.vocab_ = [{key: i + 1 for i, key in enumerate(keys)} for keys in state["categories"]]
        n, k = len(self.numeric), len(self.categorical)
        if self.mean_.shape != (n,) or self.std_.shape != (n,) or len(self.vocab_) != k \
                or not (np.isfinite(self.mean_).all() and (self.std_ > 0).all()):
            raise ValueError(f"state.json: mean and std must hold one finite number per numeric column ({n}, "
                             f"std > 0) and categories one list per categorical column ({k})")
        return self
