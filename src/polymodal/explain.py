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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from polymodal.data.dataset import Collator, LoadedInputs, MultimodalDataset
from polymodal.encoders.base import EncoderOutput
from polymodal.errors import ConfigError, DataError
from polymodal.data.skips import warn_unknown_labels
from polymodal.fitted import as_fitted

__all__ = ["ModalityImportance", "explain"]


@dataclass
class ModalityImportance:
    """What ``Predictor.explain`` returns.

    Attributes:
        summary: one row per input: ``modality``, ``ablation`` (mean per-row ablation),
            ``ablation_metric_drop`` (when labels were given), ``ig_mean_abs`` (mean |IG|),
            ``ig_share`` (its share of the inputs' total), ``ig_mean`` (signed) and, when the
            fusion has modality weights, ``fusion_weight`` (their mean).
        rows: one row per explained table row (index = the table's): ``predicted``, then
            ``ablation_<input>`` and ``ig_<input>`` per input (NaN where the input is absent)
            and, when the fusion has them, its weights ``weight_<input>``.
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
    table = fitted.read_table(data)
    labelled = schema.label in table.frame.columns
    loaded, target = fitted.load_inputs(table, labelled=labelled, unknown="drop")
    warn_unknown_labels(loaded, table, "the explanation")
    if len(loaded) == 0:
        raise DataError(f"{table.source}: no rows to explain (every row was skipped or had an unknown label)")
    names = sorted(fitted.preprocessors)

    full = fitted.forward(loaded)  # [N, K] probabilities or [N] values
    predicted = task.explained(full)  # [N] the class attributions explain, or None
    ablation, drops = {}, {}
    for name in names:
        without = fitted.forward(LoadedInputs({**loaded.items, name: [None] * len(loaded)}, loaded.rows))
        change = task.row_change(full, without, predicted)  # [N]
        absent = torch.tensor([item is None for item in loaded.items[name]])
        ablation[name] = change.masked_fill(absent, float("nan")).numpy()
        if target is not None:
            drops[name] = task.quality(full, target) - task.quality(without, target)

    ig, delta, weights = _integrated_gradients(fitted, loaded, names, predicted, n_steps, batch_size)

    index = table.frame.index[loaded.rows]
    rows = pd.DataFrame(index=index)
    rows["predicted"] = task.predictions(full, fitted.labels)
    for name in names:
        rows[f"ablation_{name}"] = ablation[name]
    for name in names:
        rows[f"ig_{name}"] = ig[name]
    if weights is not None:
        for m, name in enumerate(names):
            rows[f"weight_{name}"] = weights[:, m]
    mean_abs = {n: float(np.nanmean(np.abs(ig[n]))) if np.isfinite(ig[n]).any() else 0.0 for n in names}
    total = sum(mean_abs.values()) or 1.0
    summary = pd.DataFrame({
        "input": names,
        "modality": [fitted.preprocessors[n].modality for n in names],
        "ablation": [_nanmean(ablation[n]) for n in names],
        **({"ablation_metric_drop": [drops[n] for n in names]} if drops else {}),
        "ig_mean_abs": [mean_abs[n] for n in names],
        "ig_share": [mean_abs[n] / total for n in names],
        "ig_mean": [_nanmean(ig[n]) for n in names],
        **({"fusion_weight": [float(weights[:, m].mean()) for m in range(len(names))]} if weights is not None else {}),
    }).set_index("input")
    return ModalityImportance(summary=summary, rows=rows, ig_convergence_delta=delta)


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def _integrated_gradients(fitted: Any, loaded: LoadedInputs, names: list[str], predicted: torch.Tensor | None,
                          n_steps: int, batch_size: int) -> tuple[dict[str, np.ndarray], float, np.ndarray | None]:
    """Per input, per row: the summed IG attribution of its encoder output (NaN where absent);
    the largest |completeness error| over the rows (Captum's convergence delta); and the
    fusion's per-row input weights ``[N, M]`` when it has them."""
    from captum.attr import IntegratedGradients

    model = fitted.model.eval()
    loader = torch.utils.data.DataLoader(MultimodalDataset(loaded, fitted.preprocessors),
                                         batch_size=batch_size, collate_fn=Collator(fitted.preprocessors))
    encoded, fusion_weights = [], []
    with torch.no_grad():
        for batch in loader:
            out = model.encode(batch["inputs"], batch["present"])
            encoded.append((out, batch["present"]))
            weights = model.fusion(out, batch["present"]).weights  # [B, M] or None
            if weights is not None:
                fusion_weights.append(weights.float())
    baseline = {}
    for m, n in enumerate(names):  # mean pooled vector over the rows where the input is present
        total = sum(out[n].pooled[present[:, m]].float().sum(0) for out, present in encoded)
        count = sum(int(present[:, m].sum()) for _, present in encoded)
        baseline[n] = total / max(count, 1)  # [D]

    m_inputs = len(names)

    def read_out(tensors: list[torch.Tensor], present: torch.Tensor, masks: tuple[torch.Tensor, ...]) -> torch.Tensor:
        outputs = {n: EncoderOutput(tokens=tensors[m], pooled=tensors[m_inputs + m], mask=masks[m])
                   for m, n in enumerate(names)}
        return model.read_out(model.fusion(outputs, present))  # [B, K] or [B]

    # Integrate only over the tensors the fusion reads (most read pooled vectors, not tokens):
    # Captum asks autograd for a gradient of every input and fails on an unused one.
    first, present0 = encoded[0]
    probe = [t.detach().float().requires_grad_() for t in _fields(first, names)]
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
    result: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    deltas: list[torch.Tensor] = []
    start = 0
    for outputs, present in encoded:
        b = present.shape[0]
        values = _fields(outputs, names)
        bases = [baseline[n].expand_as(outputs[n].tokens) for n in names] + [
            baseline[n].expand_as(outputs[n].pooled) for n in names]
        target = None if predicted is None else predicted[start: start + b]
        attributions, delta = ig.attribute(
            tuple(values[i] for i in used), baselines=tuple(bases[i] for i in used), target=target,
            n_steps=n_steps, return_convergence_delta=True,
            additional_forward_args=(*(values[i] for i in fixed), present, *(outputs[n].mask for n in names)))
        deltas.append(delta.detach().abs())
        per_field = dict(zip(used, attributions))
        for m, n in enumerate(names):
            per_row = torch.zeros(b)
            for i in (m, m_inputs + m):
                if i in per_field:
                    per_row = per_row + per_field[i].detach().flatten(1).sum(1)  # [B]
            result[n].append(per_row.masked_fill(~present[:, m], float("nan")))
        start += b
    weights = torch.cat(fusion_weights).numpy() if fusion_weights else None
    return {n: torch.cat(v).numpy() for n, v in result.items()}, float(torch.cat(deltas).max()), weights


def _fields(outputs: dict[str, EncoderOutput], names: list[str]) -> list[torch.Tensor]:
    """``[tokens of each input..., pooled of each input...]`` as float32."""
    return [outputs[n].tokens.float() for n in names] + [outputs[n].pooled.float() for n in names]
