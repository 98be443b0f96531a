"""Robustness report: the metric with each input removed, and under increasing noise per input.

Noise per modality, applied to the decoded inputs of the evaluation table (never to training):
- image: Gaussian noise on the pixels (σ as a fraction of the 0–255 range), clipped;
- audio: white noise added to the waveform at a signal-to-noise ratio (dB), then the same
  log-mel front end as always;
- text: token dropout (each non-special token → [UNK] with probability p);
- tabular: Gaussian noise on the standardised numbers.
Noise is seeded per row and level, so a report repeats exactly.
"""
from __future__ import annotations

import copy
import math
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from polymodal.data.dataset import LoadedInputs
from polymodal.errors import ConfigError

__all__ = ["NOISE", "robustness_report", "plot_robustness"]

# modality → (what the level means, default levels from mild to severe)
NOISE: dict[str, tuple[str, tuple[float, ...]]] = {
    "image": ("Gaussian pixel noise σ (fraction of 255)", (0.05, 0.1, 0.2, 0.4)),
    "audio": ("white noise, SNR in dB", (20.0, 10.0, 5.0, 0.0)),
    "text": ("token dropout probability", (0.1, 0.25, 0.5, 0.75)),
    "tabular": ("Gaussian noise σ on standardised numbers", (0.25, 0.5, 1.0, 2.0)),
}


def _generator(*keys: Any) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(keys).encode()))


def _noisy_images(items: list, level: float, seed: int) -> list:
    out = []
    for i, item in enumerate(items):
        if item is None:
            out.append(None)
            continue
        pixels = torch.as_tensor(item).float()  # [C, H, W], 0..255
        noise = torch.randn(pixels.shape, generator=_generator(seed, i, level)) * (level * 255.0)
        out.append((pixels + noise).clamp(0, 255))
    return out


def _noisy_text(pre: Any, items: list, level: float, seed: int) -> list:
    # The preprocessor's own train-time token dropout, at this level, on a copy of it.
    noisy = copy.copy(pre)
    noisy.options = pre.options.model_copy(update={"token_dropout": level})
    return [None if item is None else noisy.augment(item, _generator(seed, i, level)) for i, item in enumerate(items)]


def _noisy_tabular(items: list, level: float, seed: int) -> list:
    out = []
    for i, item in enumerate(items):
        if item is None or not len(item["numeric"]):
            out.append(item)
            continue
        g = _generator(seed, i, level)
        noise = torch.randn(len(item["numeric"]), generator=g).numpy() * level
        numeric = np.where(item["numeric_missing"] > 0, item["numeric"], item["numeric"] + noise)
        out.append({**item, "numeric": numeric.astype(np.float32)})
    return out


def _noisy_audio_preprocessor(pre: Any, snr_db: float, seed: int) -> Any:
    """A copy of the audio preprocessor whose waveform gets white noise at ``snr_db``.

    ``AudioPreprocessor.load`` reads the waveform through ``self.waveform``, so the copy
    computes its log-mel features from the noisy samples with the very same front end.
    """
    noisy = copy.copy(pre)
    column = pre.columns[0]

    def waveform(row: Mapping[str, Any], base_dir: Path) -> torch.Tensor | None:
        wave = pre.waveform(row, base_dir)  # [S]
        if wave is None:
            return None
        rms = wave.pow(2).mean().sqrt()
        g = _generator(seed, str(row.get(column)), snr_db)
        return wave + torch.randn(wave.shape, generator=g) * (rms / 10 ** (snr_db / 20))

    noisy.waveform = waveform
    return noisy


def robustness_report(predictor: Any, data: Any, levels: Mapping[str, Sequence[float]] | None = None,
                      seed: int = 0) -> pd.DataFrame:
    """Score a fitted predictor on ``data`` clean, with each input removed, and under noise.

    Args:
        predictor: a fitted ``polymodal.Predictor``.
        data: a labelled table (path, DataFrame or ``Table``).
        levels: modality → noise levels, overriding ``NOISE``'s defaults.

    Returns:
        One row per condition: ``input``, ``modality``, ``condition`` (``clean``,
        ``removed``, ``noise``), ``noise`` (what the level means), ``level``, ``severity``
        (0 = clean, 1.. = increasing noise), ``metric`` (its name), ``value`` and ``n``.
    """
    predictor._check_fitted()
    if predictor.schema_.problem_type not in ("classification", "regression"):
        raise ConfigError(f"the robustness report scores a classification or regression model; this one is "
                          f"{predictor.schema_.problem_type!r}")
    table = predictor._with_absent_columns(predictor._table(data))
    schema, pres = predictor.schema_, predictor.preprocessors_
    loaded, target = predictor._load(table, schema, pres, predictor.labels_, predictor.config_,
                                     str(table.source), unknown="drop")
    metric = "accuracy" if schema.problem_type == "classification" else "rmse"

    def score(items: Mapping[str, list]) -> float:
        return float(predictor._score(LoadedInputs(dict(items), loaded.rows), target)[0][metric])

    clean = score(loaded.items)
    rows = [{"input": "(all)", "modality": "", "condition": "clean", "noise": "", "level": 0.0,
             "severity": 0, "value": clean}]
    for name in sorted(pres):
        modality = pres[name].modality
        rows.append({"input": name, "modality": modality, "condition": "removed", "noise": "", "level": math.nan,
                     "severity": math.nan, "value": score({**loaded.items, name: [None] * len(loaded)})})
        what, defaults = NOISE.get(modality, ("", ()))
        for severity, level in enumerate((levels or {}).get(modality, defaults), start=1):
            items = _perturb(predictor, table, name, loaded, float(level), seed)
            rows.append({"input": name, "modality": modality, "condition": "noise", "noise": what,
                         "level": float(level), "severity": severity,
                         "value": score({**loaded.items, name: items})})
    frame = pd.DataFrame(rows)
    frame.insert(len(frame.columns) - 1, "metric", metric)
    frame["n"] = len(loaded)
    return frame


def _perturb(predictor: Any, table: Any, name: str, loaded: LoadedInputs, level: float, seed: int) -> list:
    pre = predictor.preprocessors_[name]
    items = loaded.items[name]
    if pre.modality == "image":
        return _noisy_images(items, level, seed)
    if pre.modality == "text":
        return _noisy_text(pre, items, level, seed)
    if pre.modality == "tabular":
        return _noisy_tabular(items, level, seed)
    if pre.modality == "audio":
        noisy = {name: _noisy_audio_preprocessor(pre, level, seed)}
        again, _ = predictor._load(table, predictor.schema_, noisy, predictor.labels_, predictor.config_,
                                   str(table.source), unknown="drop")
        by_row = dict(zip(again.rows.tolist(), again.items[name]))
        return [by_row.get(r) for r in loaded.rows.tolist()]
    return items


def plot_robustness(report: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """One panel per input: the metric against noise severity, with its clean and removed levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inputs = [n for n in report["input"].unique() if n != "(all)"]
    metric = str(report["metric"].iloc[0])
    clean = float(report.loc[report.condition == "clean", "value"].iloc[0])
    fig, axes = plt.subplots(1, max(1, len(inputs)), figsize=(4.2 * max(1, len(inputs)), 3.4), squeeze=False,
                             sharey=True)
    for ax, name in zip(axes[0], inputs):
        part = report[report.input == name]
        noise = part[part.condition == "noise"].sort_values("severity")
        xs = [0] + noise.severity.astype(int).tolist()
        ax.plot(xs, [clean] + noise.value.tolist(), marker="o", label="noised")
        removed = part.loc[part.condition == "removed", "value"]
        if len(removed):
            ax.axhline(float(removed.iloc[0]), color="tab:red", linestyle="--", label="removed")
        ax.set_xticks(xs)
        ax.set_xticklabels(["clean"] + [f"{v:g}" for v in noise.level])
        ax.set_title(f"{name} ({part.modality.iloc[0]})")
        ax.set_xlabel(noise.noise.iloc[0] if len(noise) else "")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
