"""Modality importance: how much each input contributes, globally and per row.

Two measures, both per input:
- **ablation**: the change in the model's output when the input is removed (marked absent,
  so the fusion's learned missing vector stands in). Per row: the drop in the probability of
  the predicted class (classification) or the absolute change of the value (regression).
  With labels, also the drop of the metric over the table.
- **integrated gradients** (Captum) on the encoder outputs: the attribution of the predicted
  class's logit (or the value) to each input's tokens and pooled vector, summed per input.
  The baseline is each input's mean encoder output over the rows explained, so an
  attribution says how far this row's input moves the output away from an average one; by
  completeness the attributions of a row sum to ``f(row) - f(baseline)``.

An input of several columns (the tabular input: every number and category of the table) is
explained a column at a time when its preprocessor can blank one column of an item
(``without(item, column)``) and its encoder exposes its input features (``features``,
``from_features``, ``feature_groups``): the ablation of a column leaves that cell missing, and
integrated gradients run over the encoder's input features (the baseline: their mean), summed
per column. Every other input keeps one measure of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from polymodal.data.dataset import Collator, LoadedInputs, MultimodalDataset
from polymodal.encoders.base import EncoderOutput
from polymodal.encoders.presence import zero_absent
from polymodal.errors import ConfigError, DataError
from polymodal.data.skips import warn_unknown_labels
from polymodal.fitted import as_fitted

__all__ = ["ModalityImportance", "explain"]


@dataclass
class ModalityImportance:
    """What ``Predictor.explain`` returns.

    Attributes:
        summary: one row per input (per column, for an input explained by column: see the
            module's docstring): ``modality``, ``model_input`` (the model's input it belongs
            to; its own name for a one-column input), ``ablation`` (mean per-row ablation),
            ``ablation_metric_drop`` (when labels were given), ``ig_mean_abs`` (mean |IG|),
            ``ig_share`` (its share of the inputs' total), ``ig_mean`` (signed) and, when the
            fusion has modality weights, ``fusion_weight`` (the mean weight of its model input).
        rows: one row per explained table row (index = the table's): ``predicted``, then
            ``ablation_<input>`` and ``ig_<input>`` per summary row (NaN where the input is
            absent) and, when the fusion has them, its weights ``weight_<model input>``.
        ig_convergence_delta: the largest |Σ attributions − (f(row) − f(baseline))| over the
            rows; small against the attributions means ``n_steps`` was enough.
    """

    summary: pd.DataFrame
    rows: pd.DataFrame
    ig_convergence_delta: float = float("nan")


def explain(fitted: Any, data: Any, n_steps: int = 32, batch_size: int = 64) -> ModalityImportance:
    """Ablation and integrated-gradients importance of every input of a fitted model.

    Args:
        fitted: a ``FittedModel`` (or a fitted ``polymodal.Predictor``).
        data: a table (path, DataFrame or ``Table``); the label column is optional.
        n_steps: integration steps of integrated gradients.

    Raises:
        ConfigError: the model has no label to predict (alignment).
        DataError: no usable row in ``data``.
    """
    fitted = as_fitted(fitted)
    task, schema = fitted.task, fitted.schema
    if fitted.model.head is None:
        raise ConfigError(f"explain scores a classification or regression model; this one is "
                          f"{schema.problem_type!r}")
    if len(schema.label_columns) > 1:
        raise ConfigError(f"explain scores one label; this model predicts {len(schema.label_columns)} "
                          f"({', '.join(schema.label_columns)}). Train a model for the label to explain")
    table = fitted.read_table(data)
    labelled = bool(schema.label_columns) and all(c in table.frame.columns for c in schema.label_columns)
    loaded, target = fitted.load_inputs(table, labelled=labelled, unknown="drop")
    warn_unknown_labels(loaded, table, "the explanation")
    if len(loaded) == 0:
        raise DataError(f"{table.source}: no rows to explain (every row was skipped or had an unknown label)")
    names = sorted(fitted.preprocessors)
    split = _by_column(fitted, names)
    parts = [(part, name) for name in names for part in split.get(name, [name])]  # (summary row, model input)

    full = fitted.forward(loaded)  # [N, K] probabilities or [N] values
    predicted = task.explained(full)  # [N] the class attributions explain, or None
    ablation, drops = {}, {}
    for part, name in parts:
        pre, items = fitted.preprocessors[name], loaded.items[name]
        removed = [pre.without(item, part) for item in items] if name in split else [None] * len(loaded)
        without = fitted.forward(LoadedInputs({**loaded.items, name: removed}, loaded.rows))
        change = task.row_change(full, without, predicted)  # [N]
        absent = torch.tensor([item is None for item in items])
        ablation[part] = change.masked_fill(absent, float("nan")).numpy()
        if target is not None:
            drops[part] = task.quality(full, target) - task.quality(without, target)

    ig, delta, weights = _integrated_gradients(fitted, loaded, names, split, predicted, n_steps, batch_size)

    index = table.frame.index[loaded.rows]
    rows = pd.DataFrame(index=index)
    rows["predicted"] = task.predictions(full, fitted.labels)
    for part, _ in parts:
        rows[f"ablation_{part}"] = ablation[part]
    for part, _ in parts:
        rows[f"ig_{part}"] = ig[part]
    if weights is not None:
        for m, name in enumerate(names):
            rows[f"weight_{name}"] = weights[:, m]
    mean_abs = {p: float(np.nanmean(np.abs(ig[p]))) if np.isfinite(ig[p]).any() else 0.0 for p, _ in parts}
    total = sum(mean_abs.values()) or 1.0
    summary = pd.DataFrame({
        "input": [p for p, _ in parts],
        "modality": [fitted.preprocessors[n].modality for _, n in parts],
        "model_input": [n for _, n in parts],
        "ablation": [_nanmean(ablation[p]) for p, _ in parts],
        **({"ablation_metric_drop": [drops[p] for p, _ in parts]} if drops else {}),
        "ig_mean_abs": [mean_abs[p] for p, _ in parts],
        "ig_share": [mean_abs[p] / total for p, _ in parts],
        "ig_mean": [_nanmean(ig[p]) for p, _ in parts],
        **({"fusion_weight": [float(weights[:, names.index(n)].mean()) for _, n in parts]}
           if weights is not None else {}),
    }).set_index("input")
    return ModalityImportance(summary=summary, rows=rows, ig_convergence_delta=delta)


def _by_column(fitted: Any, names: list[str]) -> dict[str, list[str]]:
    """The inputs of several columns explained a column at a time, with their columns in the
    order of their encoder's ``feature_groups``."""
    split = {}
    for name in names:
        pre, encoder = fitted.preprocessors[name], fitted.model.encoders[name]
        if len(pre.columns) > 1 and hasattr(pre, "without") and hasattr(encoder, "feature_groups"):
            split[name] = list(pre.columns)
    return split


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _integrated_gradients(fitted: Any, loaded: LoadedInputs, names: list[str], split: dict[str, list[str]],
                          predicted: torch.Tensor | None, n_steps: int,
                          batch_size: int) -> tuple[dict[str, np.ndarray], float, np.ndarray | None]:
    """Per input (per column of a ``split`` input), per row: the summed IG attribution of its
    encoder output (of a split input: of its input features), NaN where absent; the largest
    |completeness error| over the rows (Captum's convergence delta); and the fusion's per-row
    input weights ``[N, M]`` when it has them."""
    from captum.attr import IntegratedGradients

    model = fitted.model.eval()
    loader = torch.utils.data.DataLoader(MultimodalDataset(loaded, fitted.preprocessors),
                                         batch_size=batch_size, collate_fn=Collator(fitted.preprocessors))
    encoded, fusion_weights = [], []
    with torch.no_grad():
        for batch in loader:
            out = model.encode(batch["inputs"], batch["present"])
            features = {n: model.encoders[n].features(batch["inputs"][n]).float() for n in split}  # [B, F] each
            encoded.append((out, features, batch["present"]))
            weights = model.fusion(out, batch["present"]).weights  # [B, M] or None
            if weights is not None:
                fusion_weights.append(weights.float())
    baseline = {}
    for m, n in enumerate(names):  # mean pooled vector (or input features) over the rows that have the input
        total = sum(_fields(out, feats, names)[m if n in split else len(names) + m][present[:, m]].sum(0)
                    for out, feats, present in encoded)
        count = sum(int(present[:, m].sum()) for *_, present in encoded)
        baseline[n] = total / max(count, 1)  # [D] or [F]

    m_inputs = len(names)

    def read_out(tensors: list[torch.Tensor], present: torch.Tensor, masks: tuple[torch.Tensor, ...]) -> torch.Tensor:
        outputs = {n: zero_absent(model.encoders[n].from_features(tensors[m]), present[:, m]) if n in split else
                   EncoderOutput(tokens=tensors[m], pooled=tensors[m_inputs + m], mask=masks[m])
                   for m, n in enumerate(names)}
        return model.read_out(model.fusion(outputs, present))  # [B, K] or [B]

    # Integrate only over the tensors the fusion reads (most read pooled vectors, not tokens):
    # Captum asks autograd for a gradient of every input and fails on an unused one.
    first, first_features, present0 = encoded[0]
    probe = [t.detach().float().requires_grad_() for t in _fields(first, first_features, names)]
    out0 = read_out(probe, present0, tuple(first[n].mask for n in names))
    grads = torch.autograd.grad(out0.float().sum(), probe, allow_unused=True)
    used = [i for i, g in enumerate(grads) if g is not None]
    fixed = [i for i in range(2 * m_inputs) if i not in used]

    def forward(*args: torch.Tensor) -> torch.Tensor:
        tensors: list[torch.Tensor] = [None] * (2 * m_inputs)  # type: ignore[list-item]
        for slot, value in zip(used + fixed, args):
            tensors[slot] = value
        rest = args[2 * m_inputs:]
        return read_out(tensors, rest[0], tuple(rest[1:]))

    ig = IntegratedGradients(forward)
    result: dict[str, list[torch.Tensor]] = {p: [] for n in names for p in split.get(n, [n])}
    deltas: list[torch.Tensor] = []
    start = 0
    for outputs, features, present in encoded:
        b = present.shape[0]
        values = _fields(outputs, features, names)
        bases = [baseline[n].expand_as(values[m]) for m, n in enumerate(names)] + [
            values[m_inputs + m] if n in split else baseline[n].expand_as(outputs[n].pooled)  # not integrated
            for m, n in enumerate(names)]
        target = None if predicted is None else predicted[start: start + b]
        attributions, delta = ig.attribute(
            tuple(values[i] for i in used), baselines=tuple(bases[i] for i in used), target=target,
            n_steps=n_steps, return_convergence_delta=True,
            additional_forward_args=(*(values[i] for i in fixed), present, *(outputs[n].mask for n in names)))
        deltas.append(delta.detach().abs())
        per_field = dict(zip(used, attributions))
        for m, n in enumerate(names):
            if n in split:  # per column: the attributions of its features, [B, F] → [B]
                for column, group in zip(split[n], model.encoders[n].feature_groups()):
                    per_row = per_field[m].detach()[:, group].sum(1) if m in per_field else torch.zeros(b)
                    result[column].append(per_row.masked_fill(~present[:, m], float("nan")))
                continue
            per_row = torch.zeros(b)
            for i in (m, m_inputs + m):
                if i in per_field:
                    per_row = per_row + per_field[i].detach().flatten(1).sum(1)  # [B]
            result[n].append(per_row.masked_fill(~present[:, m], float("nan")))
        start += b
    weights = torch.cat(fusion_weights).numpy() if fusion_weights else None
    return {n: torch.cat(v).numpy() for n, v in result.items()}, float(torch.cat(deltas).max()), weights


def _fields(outputs: dict[str, EncoderOutput], features: dict[str, torch.Tensor],
            names: list[str]) -> list[torch.Tensor]:
    """``[tokens (a split input: its input features) of each input..., pooled of each input...]`` as float32."""
    return [features[n] if n in features else outputs[n].tokens.float() for n in names] + [
        outputs[n].pooled.float() for n in names]
