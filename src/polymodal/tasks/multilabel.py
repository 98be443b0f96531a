"""Multi-label classification: a set of labels per row (tags); a sigmoid head, one decision
threshold per label tuned on the tuning split, micro/macro F1 and mean average precision."""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from polymodal.data.schema import Schema
from polymodal.errors import ConfigError, DataError
from polymodal.heads.base import get_head
from polymodal.tasks.base import Task, register_task
from polymodal.tasks.label_sets import first_rows, is_label_set, label_sets

__all__ = ["MultiLabelTask", "RARE", "MAX_POS_WEIGHT", "tune_thresholds", "multilabel_metrics"]

log = logging.getLogger("polymodal")

RARE = 10  # labels seen fewer times than this in training are listed before training
MAX_POS_WEIGHT = 100.0  # class_weights: balanced weighs a label's positives by negatives/positives, at most this
_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)  # candidate thresholds


class MultiLabelTask(Task):
    """Predict the set of labels of each row; the labels are every tag seen in training."""

    name = "multilabel"
    auto_priority = 20  # list-valued labels are sets of tags before anything else
    metric_name = "f1_micro"
    summary = ("f1_micro", "f1_macro", "map")

    def claims(self, y: pd.Series) -> bool:
        return any(is_label_set(v) for v in y.tolist())

    def check_label(self, y: pd.Series, label: str) -> str:
        sets = label_sets(y, label, None)
        missing = [y.index[i] for i, s in enumerate(sets) if s is None]
        if missing:
            raise DataError(f"label {label!r} is missing in {len(missing):,} of {len(y):,} rows (rows "
                            f"{first_rows(missing)}); expected a list of labels in every training row "
                            "(an empty list means no label). Fill them in or drop those rows.")
        counts = Counter(t for s in sets for t in s)
        if len(counts) < 2:
            raise DataError(f"label {label!r} has {len(counts)} distinct label(s) in {len(y):,} rows; a multi-label "
                            "model needs at least two. Check the label column (and label_delimiter:).")
        empty = sum(1 for s in sets if not s)
        return (f"multilabel: {len(counts):,} labels, {np.mean([len(s) for s in sets]):.2f} per row"
                + (f", {empty:,} rows with none" if empty else ""))

    def config_problems(self, config: Any, schema: Schema) -> list[str]:
        if config.head.loss not in ("auto",):
            return [f"head.loss: {config.head.loss!r} does not apply to a multi-label label "
                    f"'{schema.label}' (its loss is binary cross-entropy per label); leave head.loss: auto"]
        if config.head.label_smoothing:
            return ["head.label_smoothing applies to classification only; remove it for a multi-label label"]
        return []

    def fit_labels(self, frame: pd.DataFrame, schema: Schema, config: Any) -> dict[str, Any]:
        sets = label_sets(frame[schema.label], schema.label, config.label_delimiter)
        counts = Counter(t for s in sets if s for t in s)
        classes = sorted(counts)
        n = len(sets)
        cw = config.head.class_weights
        weights = None
        if cw == "balanced":
            weights = [min(MAX_POS_WEIGHT, (n - counts[c]) / counts[c]) for c in classes]
        elif isinstance(cw, dict):
            unknown = [k for k in cw if k not in counts]
            if unknown:
                raise ConfigError(f"head.class_weights names unknown label(s) {unknown[:10]}; "
                                  f"labels are {classes[:20]}{' ...' if len(classes) > 20 else ''}")
            weights = [float(cw.get(c, 1.0)) for c in classes]
        rare = sorted((c for c in classes if counts[c] < RARE), key=lambda c: (counts[c], c))
        common = ", ".join(f"{c} ({counts[c]:,})" for c, _ in counts.most_common(5))
        empty = sum(1 for s in sets if not s)
        log.info(f"Labels: {len(classes):,} in {n:,} training rows ({empty:,} with none); most frequent: {common}"
                 + (f"; {len(rare):,} seen fewer than {RARE} times: "
                    + ", ".join(f"{c} ({counts[c]})" for c in rare[:10]) + (" ..." if len(rare) > 10 else "")
                    if rare else ""))
        return {"problem_type": self.name, "classes": classes, "frequencies": [counts[c] for c in classes],
                "class_weights": weights, "thresholds": [0.5] * len(classes),
                "delimiter": config.label_delimiter}

    def encode_target(self, frame: pd.DataFrame, schema: Schema, labels: Mapping[str, Any], config: Any,
                      what: str, unknown: str) -> np.ndarray:
        """``[N, K]`` 0/1 per label; a row of NaN where the label is missing.

        Labels the model was not trained on cannot be predicted: they are left out of the row's
        set and counted in the log (``unknown="error"`` raises instead).
        """
        sets = label_sets(frame[schema.label], schema.label, labels.get("delimiter"))
        index = {c: i for i, c in enumerate(labels["classes"])}
        target = np.zeros((len(sets), len(index)), dtype=np.float32)
        unseen: Counter = Counter()
        for row, tags in enumerate(sets):
            if tags is None:
                target[row] = np.nan
                continue
            for t in tags:
                if t in index:
                    target[row, index[t]] = 1.0
                else:
                    unseen[t] += 1
        missing = int(np.isnan(target[:, 0]).sum()) if len(index) else 0
        if unknown == "error" and missing:
            raise DataError(f"{what}: label '{schema.label}' is missing in {missing:,} row(s); drop or fill them "
                            "(an empty list means no label)")
        if unseen:
            shown = ", ".join(f"{t} ({n})" for t, n in unseen.most_common(5))
            log.warning(f"{what}: {sum(unseen.values()):,} label occurrence(s) of {len(unseen):,} label(s) the "
                        f"model was not trained on are left out of the targets ({shown}"
                        f"{' ...' if len(unseen) > 5 else ''})")
        return target

    def known(self, target: np.ndarray) -> np.ndarray:
        return ~np.isnan(target).any(axis=1) if target.ndim == 2 else np.ones(len(target), dtype=bool)

    def target_tensor(self, target: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(target).float()

    def build_head(self, in_dim: int, labels: Mapping[str, Any], config: Any) -> nn.Module:
        weights = labels.get("class_weights")
        return get_head("multilabel")(in_dim, len(labels["classes"]), hidden=config.hidden, dropout=config.dropout,
                                      pos_weight=None if weights is None else torch.tensor(weights))

    def training_metric(self, labels: Mapping[str, Any]) -> Any:
        from torchmetrics.classification import MultilabelF1Score  # here, not at import

        return MultilabelF1Score(num_labels=len(labels["classes"]), average="micro")

    def update_metric(self, metric: Any, head: nn.Module, output: torch.Tensor, target: torch.Tensor) -> None:
        metric(head.probabilities(output.detach()), target.int())

    def calibrate(self, outputs: torch.Tensor, target: torch.Tensor, labels: Mapping[str, Any],
                  config: Any) -> dict[str, Any]:
        fixed = config.head.threshold
        thresholds = [float(fixed)] * len(labels["classes"]) if fixed != "tuned" else \
            tune_thresholds(outputs.numpy(), target.numpy())
        return {**labels, "thresholds": thresholds}

    def read_out(self, head: nn.Module, output: torch.Tensor) -> torch.Tensor:
        return head.probabilities(output)  # [B, K]

    def concat(self, parts: list[Any], labels: Mapping[str, Any]) -> torch.Tensor:
        return torch.cat(parts) if parts else torch.zeros((0, len(labels["classes"])))

    def predictions(self, outputs: torch.Tensor, labels: Mapping[str, Any]) -> np.ndarray:
        chosen = _decide(outputs, labels).numpy()
        classes = np.array(labels["classes"], dtype=object)
        out = np.empty(len(chosen), dtype=object)
        out[:] = [list(classes[row]) for row in chosen]
        return out

    def probabilities(self, outputs: torch.Tensor) -> np.ndarray:
        return outputs.numpy()

    def score(self, outputs: torch.Tensor, target: torch.Tensor, labels: Mapping[str, Any],
              loaded: Any) -> tuple[dict[str, Any], None]:
        return multilabel_metrics(outputs, _decide(outputs, labels), target, labels["classes"]), None

    def explained(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=1)  # the most probable label

    def row_change(self, full: torch.Tensor, without: torch.Tensor, explained: torch.Tensor) -> torch.Tensor:
        index = explained.unsqueeze(1)
        return (full.gather(1, index) - without.gather(1, index)).squeeze(1)  # [N]

    def quality(self, outputs: torch.Tensor, target: torch.Tensor) -> float:
        from torchmetrics.functional.classification import multilabel_f1_score

        return float(multilabel_f1_score(outputs, target.int(), num_labels=outputs.shape[1], average="micro"))


def _decide(outputs: torch.Tensor, labels: Mapping[str, Any]) -> torch.Tensor:
    """``[N, K]`` bool: each label's probability at or above its threshold."""
    return outputs >= torch.tensor(labels["thresholds"], dtype=outputs.dtype)


def tune_thresholds(probs: np.ndarray, target: np.ndarray) -> list[float]:
    """Per label, the threshold of ``_GRID`` with the best F1 on the tuning rows (the one nearest
    0.5 among equals); 0.5 for a label without positives there (nothing to tune it on)."""
    decided = probs[None, :, :] >= _GRID[:, None, None]  # [G, N, K]
    positive = target[None, :, :] > 0.5
    tp = (decided & positive).sum(1)
    fp = (decided & ~positive).sum(1)
    fn = (~decided & positive).sum(1)
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)  # [G, K]
    out = []
    for k in range(probs.shape[1]):
        if not positive[0, :, k].any():
            out.append(0.5)
            continue
        best = np.flatnonzero(f1[:, k] >= f1[:, k].max() - 1e-12)
        out.append(float(_GRID[best[np.argmin(np.abs(_GRID[best] - 0.5))]]))
    return out


def multilabel_metrics(probs: torch.Tensor, decided: torch.Tensor, target: torch.Tensor,
                       classes: list[str]) -> dict[str, Any]:
    """Micro- and macro-F1 of the decisions, mean average precision of the probabilities (over
    the labels that occur in ``target``), subset accuracy, and F1 per label."""
    from torchmetrics.functional import classification as C

    k = probs.shape[1]
    truth = target.int()
    pred = decided.int()
    per_label = C.multilabel_f1_score(pred, truth, num_labels=k, average="none")
    occurring = truth.sum(0) > 0
    out: dict[str, Any] = {
        "f1_micro": C.multilabel_f1_score(pred, truth, num_labels=k, average="micro").item(),
        "f1_macro": float(per_label[occurring].mean()) if occurring.any() else float("nan"),
        "map": float(C.multilabel_average_precision(probs[:, occurring], truth[:, occurring],
                                                     num_labels=int(occurring.sum()), average="macro"))
        if occurring.sum() >= 1 else float("nan"),
        "subset_accuracy": float((pred == truth).all(dim=1).float().mean()) if len(truth) else float("nan"),
        "labels_per_row": float(pred.sum(1).float().mean()) if len(truth) else float("nan"),
        "n_labels_scored": int(occurring.sum()),
        "per_label_f1": {c: round(float(per_label[i]), 4) for i, c in enumerate(classes) if occurring[i]},
        "n": int(len(truth)),
    }
    return out


register_task(MultiLabelTask())
