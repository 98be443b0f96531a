"""Presets: ready configurations (``presets: fast | balanced | best``) laid under the user's own keys.

A preset is a few config values (``training`` and ``head`` options that suit any table) plus
``training.max_epochs`` and ``training.patience`` chosen for the table's size: a small table
gets more epochs and more patience, a large one fewer. Every key the user writes wins over the
preset's; ``apply_presets`` says which values the preset chose, so that the log can show them.
When the table's size is not known yet (a config read on its own) epochs and patience are left
to the fit, which chooses them once it knows the training rows (``polymodal.table_defaults``);
``polymodal tune`` passes the training table's rows.
"""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["PRESETS", "preset_names", "apply_presets", "epochs_for_rows"]

# Values that suit any table, per preset: a section's keys merge under the user's section.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {"training": {"batch_size": 64, "learning_rate": 3e-3, "warmup_fraction": 0.0}},
    "balanced": {"training": {"batch_size": 32, "learning_rate": 1e-3, "warmup_fraction": 0.05}},
    "best": {"training": {"batch_size": 32, "learning_rate": 5e-4, "warmup_fraction": 0.05,
                          "weight_decay": 0.05, "modality_dropout": 0.1},
             "head": {"hidden": 256, "dropout": 0.2}},
}

# (rows up to, max_epochs, patience) per preset, smallest tables first; the last line has no bound.
_BY_ROWS: dict[str, list[tuple[float, int, int]]] = {
    "fast": [(2_000, 15, 4), (20_000, 8, 3), (200_000, 4, 2), (float("inf"), 2, 1)],
    "balanced": [(2_000, 50, 8), (20_000, 30, 6), (200_000, 12, 4), (float("inf"), 6, 2)],
    "best": [(2_000, 120, 15), (20_000, 60, 10), (200_000, 30, 6), (float("inf"), 12, 3)],
}
_UNKNOWN_ROWS = 5_000  # the size assumed when the table is not known yet


def preset_names() -> list[str]:
    """The preset names ``presets:`` accepts."""
    return list(PRESETS)


def epochs_for_rows(name: str, rows: int | None) -> tuple[int, int]:
    """``(max_epochs, patience)`` of preset ``name`` for a training table of ``rows`` rows
    (None: a table of a few thousand rows)."""
    n = _UNKNOWN_ROWS if rows is None else rows
    return next((epochs, patience) for bound, epochs, patience in _BY_ROWS[name] if n <= bound)


def apply_presets(source: Mapping[str, Any], rows: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``source`` (a raw config mapping) with its preset's values under the user's own keys.

    Args:
        source: the config as written; ``presets:`` names the preset (absent or null: none).
        rows: the training table's rows, when known: the preset's epochs and patience follow it
            (None: they are left out, for ``table_defaults.for_table`` to choose in the fit).

    Returns:
        The merged mapping, and the values the preset chose (``{"training.max_epochs": 8, ...}``;
        empty when there is no preset or the user wrote every key it sets). An unknown preset name
        or a section that is not a mapping is left as it is, for the config's validation to report.
    """
    name = source.get("presets")
    if name not in PRESETS:
        return dict(source), {}
    values = {section: dict(keys) for section, keys in PRESETS[name].items()}
    if rows is not None:  # else the fit chooses them for its training rows
        epochs, patience = epochs_for_rows(name, rows)
        values["training"].update(max_epochs=epochs, patience=patience)
    merged, chosen = dict(source), {}
    for section, keys in values.items():
        own = source.get(section)
        if own is None:
            own = {}
        if not isinstance(own, Mapping):
            continue
        merged[section] = {**keys, **own}
        chosen.update({f"{section}.{k}": v for k, v in keys.items() if k not in own})
    return merged, chosen
