"""The high-level API: ``Predictor(label=...).fit(train).predict(test)``."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import yaml
from safetensors.torch import load_file, save_file

from polymodal.builders import (
    build_model,
    build_preprocessors,
    check_column_overrides,
    input_specs,
    load_preprocessors,
)
from polymodal.config import Config, load_config
from polymodal.data import Collator, MultimodalDataset, load_inputs, read_table
from polymodal.data.alignment import alignment_schema, check_align_columns, match_groups
from polymodal.data.dataset import LoadedInputs
from polymodal.data.presence import absent_per_row, describe_absent, fill_absent_columns
from polymodal.data.readers import Table
from polymodal.data.paths import PathGuard
from polymodal.data.schema import Schema, infer_schema
from polymodal.data.skips import skip_summary
from polymodal.errors import ConfigError, DataError, ModelDirError, NotFittedError
from polymodal.fusion import check_fusion_inputs
from polymodal.modeldir import atomic_directory, verify_manifest, write_manifest
from polymodal.training import classification_metrics, confusion_matrix, fit_model, regression_metrics
from polymodal.backbones.feature_cache import prepare_backbone_inputs
from polymodal.training.module import count_parameters

__all__ = ["Predictor"]

log = logging.getLogger("polymodal")

DataLike = "str | Path | pd.DataFrame | Table"


class Predictor:
    """Fit a multimodal model on a table, then evaluate, predict, save and load it.

    Args:
        label: the column to predict (or set ``label:`` in the config).
        config: a ``Config``, a dict, or the path of a YAML file; None for defaults.
        problem_type: ``"classification"`` or ``"regression"``; inferred when None.
        verbose: log the schema, progress and a summary.
        data_root: when set, every image/audio path in a table must stay inside this
            folder (``..``, absolute paths and symlinks out are bad inputs of their row),
            and a DataFrame's relative paths are relative to it.

    Attributes (after ``fit`` or ``load``):
        config_, schema_, classes_ (classification), model_, preprocessors_, history_,
        metrics_ (on the tuning split), fit_info_ (timings, parameter count, skipped rows),
        skipped_ (after fit/evaluate/predict: DataFrame of ``row, input, reason`` per input
        the last call skipped under ``on_bad_input``), absent_ (after predict/predict_proba:
        per row, the inputs it lacked, ``;``-joined; ``""`` when none).
    """

    def __init__(self, label: str | None = None, config: Any = None,
                 problem_type: str | None = None, verbose: bool = True,
                 data_root: str | Path | None = None):
        self.label = label
        self.config = config
        self.problem_type = problem_type
        self.verbose = verbose
        self.data_root = data_root

    # ------------------------------------------------------------------ fit
    def fit(self, train_data: Any, tuning_data: Any = None, checkpoint_dir: str | Path | None = None,
            resume: bool = False) -> "Predictor":
        """Train on ``train_data``; early-stop on ``tuning_data`` (split off when None).

        Args:
            checkpoint_dir: write the whole training state there after every epoch
                (see ``training.resume``); delete the folder once the model is saved.
            resume: continue the interrupted run whose checkpoint is in ``checkpoint_dir``
                (same data and config); it ends as an uninterrupted run would have.

        Returns:
            self.

        Raises:
            ConfigError, DataError: on a bad config or unusable data, before any training.
        """
        start = time.perf_counter()
        config = self._resolve_config()
        torch.manual_seed(config.seed)
        train = self._table(train_data)
        if config.problem_type == "alignment":
            schema = alignment_schema(train.frame, config)
        else:
            schema = infer_schema(train.frame, config.label, config.columns, config.problem_type)
            if config.align is not None:
                check_align_columns(schema, config.align.columns)
        check_column_overrides(config, schema)
        _check_head(config, schema)
        check_fusion_inputs(config.fusion, [spec["name"] for spec in input_specs(schema)])
        self._say("Columns:\n" + schema.describe())
        if tuning_data is None:
            train_frame, tuning_frame = _split(train.frame, schema, config)
            tuning = Table(tuning_frame, train.base_dir, f"{train.source} (tuning split)")
            train = Table(train_frame, train.base_dir, train.source)
            self._say(f"Split off {len(tuning_frame):,} rows for tuning "
                      f"({config.training.tuning_fraction:.0%}, seed {config.seed}).")
        else:
            tuning = self._table(tuning_data)
            _require_columns(tuning.frame, schema, "tuning data", need_label=True)

        labels = _fit_labels(train.frame, schema, config)
        preprocessors = build_preprocessors(config, schema)
        run = _run_directory(checkpoint_dir, resume, config, schema, labels, train, tuning)
        if run is not None and run.has_preprocessors:
            preprocessors = run.load_preprocessors(preprocessors)
        else:
            fit_frame = train.frame if self.data_root is None else \
                PathGuard(train.base_dir, self.data_root).confine_frame(train.frame, preprocessors)
            for pre in preprocessors.values():
                pre.fit(fit_frame, train.base_dir)
            if run is not None:
                run.save_preprocessors(preprocessors)
        train_loaded, train_y = self._load(train, schema, preprocessors, labels, config, "training data")
        tune_loaded, tune_y = self._load(tuning, schema, preprocessors, labels, config, "tuning data")
        if len(train_loaded) == 0 or len(tune_loaded) == 0:
            raise DataError("no usable rows left after skipping unreadable inputs; fix the files")
        load_seconds = time.perf_counter() - start

        model = build_model(config, schema, preprocessors, labels)
        for loaded, what in ((train_loaded, "training data"), (tune_loaded, "tuning data")):
            prepare_backbone_inputs(model, preprocessors, loaded, config.training, what)
        self._say(f"Model: {count_parameters(model):,} parameters; inputs "
                  + ", ".join(f"{n} ({p.modality})" for n, p in sorted(preprocessors.items())))
        collator = Collator(preprocessors)
        result = fit_model(
            model,
            MultimodalDataset(train_loaded, preprocessors, train_y, augment=True, seed=config.seed),
            MultimodalDataset(tune_loaded, preprocessors, tune_y),
            collator, config.training, schema.problem_type, len(labels.get("classes", [])),
            config.seed, checkpoint=run,
        )
        self.config_, self.schema_, self.labels_ = config, schema, labels
        self.preprocessors_, self.model_, self.history_ = preprocessors, model, result.history
        self.classes_ = labels.get("classes")
        self.fit_info_ = {
            "train_rows": len(train_loaded), "tuning_rows": len(tune_loaded),
            "skipped_rows": {"training": len({s[0] for s in train_loaded.skipped}),
                             "tuning": len({s[0] for s in tune_loaded.skipped})},
            "skipped": {"training": _skips(train_loaded, len(train.frame), config),
                        "tuning": _skips(tune_loaded, len(tuning.frame), config)},
            "epochs": len(result.history), "best_epoch": result.best_epoch,
            "monitor": result.monitor, "precision": result.precision,
            "parameters": count_parameters(model),
            "load_seconds": round(load_seconds, 2),
            "fit_seconds": round(time.perf_counter() - start, 2),
        }
        self.metrics_, confusion = self._score(tune_loaded, tune_y)
        self.reports_ = {"tuning": {"metrics": self.metrics_, "confusion": confusion}}
        self._say(f"Trained {self.fit_info_['epochs']} epochs in {self.fit_info_['fit_seconds']:.1f}s; "
                  f"best epoch {result.best_epoch}; tuning " + _fmt(self.metrics_))
        return self

    # ------------------------------------------------------------ inference
    def predict_proba(self, data: Any) -> pd.DataFrame:
        """Class probabilities, one column per class, one row per input row.

        Rows dropped under ``on_bad_input: skip_row`` hold NaN.
        """
        self._check_fitted()
        if self.schema_.problem_type != "classification":
            raise ConfigError("predict_proba is for classification models; use predict for regression")
        table = self._table(data)
        probs, rows = self._infer(table)
        out = np.full((len(table.frame), len(self.classes_)), np.nan)
        out[rows] = probs.numpy()
        return pd.DataFrame(out, columns=[str(c) for c in self.classes_], index=table.frame.index)

    def predict(self, data: Any) -> pd.Series:
        """Predicted label (classification) or value (regression) per row."""
        self._check_fitted()
        table = self._table(data)
        outputs, rows = self._infer(table)
        if self.schema_.problem_type == "classification":
            values = np.array(self.classes_, dtype=object)[outputs.argmax(dim=1).numpy()]
            out = pd.Series([None] * len(table.frame), index=table.frame.index, dtype=object)
        else:
            values = outputs.numpy()
            out = pd.Series(np.nan, index=table.frame.index)
        out.iloc[rows] = values
        return out.rename(self.schema_.label)

    def explain(self, data: Any, n_steps: int = 32) -> "ModalityImportance":
        """Global and per-row importance of each input: ablation (remove it) and integrated
        gradients (Captum) on the encoder outputs. See ``polymodal.explain``.

        Returns:
            ``ModalityImportance`` with ``summary`` (one row per input) and ``rows``.
        """
        from polymodal.explain import explain

        self._check_fitted()
        return explain(self, data, n_steps=n_steps)

    def embed(self, data: Any, column: str, batch_size: int = 256, progress: bool = False) -> "Embeddings":
        """Unit vectors for one text, image or audio column (see ``retrieval.embed``).

        Columns an aligner projects get vectors in the shared space (comparable across
        modalities); other input columns get their encoder's pooled vector. The table needs
        only that column.

        Returns:
            ``Embeddings``: ``vectors [n, E]``, ``rows [n]`` (the rows that have the input;
            ``full()`` gives ``[N, E]`` with NaN rows for the others).
        """
        from polymodal.retrieval.embed import embed_table

        self._check_fitted()
        return embed_table(self.model_, self.preprocessors_, self._table(data), column,
                           on_bad_input=self.config_.on_bad_input, threads=self.config_.training.load_threads,
                           data_root=self.data_root, training=self.config_.training,
                           batch_size=batch_size, progress=progress)

    def evaluate(self, data: Any, record_as: str | None = None) -> dict[str, Any]:
        """Metrics on a labelled table: accuracy, macro-F1, AUROC, log loss; or RMSE, MAE, R².

        Args:
            record_as: also keep the result (and, for classification, the confusion
                matrix) under this name, so that ``save`` writes it to ``metrics.json``
                and ``plots/confusion_matrix_<name>.png``.
        """
        self._check_fitted()
        table = self._with_absent_columns(self._table(data))
        _require_columns(table.frame, self.schema_, str(table.source), need_label=True)
        loaded, target = self._load(table, self.schema_, self.preprocessors_, self.labels_,
                                    self.config_, str(table.source), unknown="drop")
        if len(loaded) == 0:
            raise DataError(f"{table.source}: no rows to evaluate: every row was skipped or had a "
                            "label the model was not trained on")
        metrics, confusion = self._score(loaded, target)
        metrics["skipped_rows"] = len({s[0] for s in loaded.skipped})
        metrics["skipped_inputs"] = len(loaded.skipped)
        self.skipped_ = _skipped_frame(loaded, table.frame.index)
        if record_as:
            self.reports_[record_as] = {"metrics": metrics, "confusion": confusion}
        return metrics

    # ----------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically (see ``modeldir``). Returns its path."""
        self._check_fitted()
        from polymodal.reports import plot_confusion_matrix, plot_curves

        path = Path(path)
        with atomic_directory(path) as tmp:
            (tmp / "config.yaml").write_text(self.config_.to_yaml())
            (tmp / "schema.json").write_text(json.dumps(self.schema_.to_dict(), indent=2))
            (tmp / "labels.json").write_text(json.dumps(self.labels_, indent=2))
            specs = [{"name": n, "modality": p.modality, "columns": list(p.columns)}
                     for n, p in sorted(self.preprocessors_.items())]
            (tmp / "inputs.json").write_text(json.dumps(specs, indent=2))
            for name, pre in self.preprocessors_.items():
                pre.save(tmp / "preprocessors" / name)
            save_file({k: v.contiguous() for k, v in self.model_.state_dict().items()},
                      str(tmp / "model.safetensors"))
            metrics = {name: r["metrics"] for name, r in self.reports_.items()}
            metrics["fit"] = self.fit_info_
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
            self.history_.to_csv(tmp / "history.csv", index=False)
            (tmp / "plots").mkdir()
            if len(self.history_):
                plot_curves(self.history_, tmp / "plots" / "curves.png")
            names = [str(c) for c in self.classes_ or []]
            for split, report in self.reports_.items():
                if report.get("confusion") is not None:
                    suffix = "" if split == "tuning" else f"_{split}"
                    plot_confusion_matrix(np.asarray(report["confusion"]), names,
                                          tmp / "plots" / f"confusion_matrix{suffix}.png")
            write_manifest(tmp)
        self._say(f"Saved model to {path}")
        return path

    @classmethod
    def load(cls, path: str | Path, verbose: bool = False,
             data_root: str | Path | None = None) -> "Predictor":
        """Load a model directory written by ``save``. Reads JSON/YAML/safetensors only.

        Args:
            data_root: see ``Predictor``; file paths in tables must stay inside it.
        """
        path = Path(path)
        verify_manifest(path)
        try:
            config = load_config(yaml.safe_load((path / "config.yaml").read_text()))
            schema = Schema.from_dict(json.loads((path / "schema.json").read_text()))
            labels = json.loads((path / "labels.json").read_text())
            specs = json.loads((path / "inputs.json").read_text())
            preprocessors = load_preprocessors(config, specs, path / "preprocessors")
            model = build_model(config, schema, preprocessors, labels)
            model.load_state_dict(load_file(str(path / "model.safetensors")))
            metrics = json.loads((path / "metrics.json").read_text())
            history = pd.read_csv(path / "history.csv") if (path / "history.csv").stat().st_size else pd.DataFrame()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelDirError(f"could not load the model in {path}: {exc}") from None
        model.eval()
        self = cls(label=schema.label, config=config, verbose=verbose, data_root=data_root)
        self.config_, self.schema_, self.labels_ = config, schema, labels
        self.preprocessors_, self.model_, self.history_ = preprocessors, model, history
        self.classes_ = labels.get("classes")
        self.fit_info_ = metrics.pop("fit", {})
        self.metrics_ = metrics.get("tuning", {})
        self.reports_ = {name: {"metrics": m, "confusion": None} for name, m in metrics.items()}
        return self

    # ------------------------------------------------------------ helpers
    def _resolve_config(self) -> Config:
        config = load_config(self.config)
        updates = {}
        if self.label is not None:
            updates["label"] = self.label
        if self.problem_type is not None:
            updates["problem_type"] = self.problem_type
        if updates:
            config = load_config({**config.model_dump(), **updates})
        if not config.label and config.problem_type != "alignment":
            raise ConfigError("no label column given; pass Predictor(label=...) / --label, or set label: in the config")
        return config

    def _table(self, data: Any) -> Table:
        """``data`` as a Table; with a data root, a DataFrame's paths are relative to it."""
        if isinstance(data, pd.DataFrame) and self.data_root is not None:
            return read_table(data, base_dir=Path(self.data_root))
        return _as_table(data)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this Predictor is not fitted yet; call fit(...) or Predictor.load(dir) first")

    def _check_has_head(self) -> None:
        if self.model_.head is None:
            raise ConfigError("this is an alignment model: it has no label to predict; use embed(), "
                              "`polymodal embed | index | search`, or zero-shot classification")

    def _say(self, message: str) -> None:
        if self.verbose:
            log.info(message)

    def _load(self, table: Table, schema: Schema, preprocessors: Mapping[str, Any],
              labels: Mapping[str, Any], config: Config, what: str,
              unknown: str = "error") -> tuple[LoadedInputs, torch.Tensor]:
        """Decode a labelled table's inputs and encode its targets."""
        frame = table.frame
        if schema.problem_type == "alignment":  # no target: each row's match group
            target_all = match_groups(frame, schema, config.align.match)
        else:
            target_all = _encode_target(frame[schema.label], schema, labels, what, unknown)
        known = ~np.isnan(target_all) if schema.problem_type == "regression" else target_all >= 0
        if not known.all():
            frame = frame[known]
            target_all = target_all[known]
        loaded = load_inputs(frame, table.base_dir, preprocessors, config.on_bad_input,
                             config.training.load_threads, what, data_root=self.data_root)
        if not known.all():  # report skipped rows by their position in the whole table
            positions = np.flatnonzero(known)
            loaded.skipped = [(int(positions[i]), n, r) for i, n, r in loaded.skipped]
        target = torch.as_tensor(target_all[loaded.rows])
        return loaded, target.float() if schema.problem_type == "regression" else target.long()

    def _infer(self, table: Table) -> tuple[torch.Tensor, np.ndarray]:
        self._check_has_head()
        loaded = self._load_unlabelled(table)
        self.skipped_ = _skipped_frame(loaded, table.frame.index)
        self.absent_ = pd.Series([None] * len(table.frame), index=table.frame.index, dtype=object,
                                 name="absent_inputs")
        self.absent_.iloc[loaded.rows] = absent_per_row(loaded)
        note = describe_absent(loaded, str(table.source))
        if note:
            self._say(note)
        return self._forward(loaded), loaded.rows

    def _with_absent_columns(self, table: Table) -> Table:
        """The table with every input column it lacks added, empty: those inputs are absent."""
        inputs = {name: pre.columns for name, pre in self.preprocessors_.items()}
        frame = fill_absent_columns(table.frame, inputs, str(table.source))
        return table if frame is table.frame else Table(frame, table.base_dir, table.source)

    def _load_unlabelled(self, table: Table) -> LoadedInputs:
        table = self._with_absent_columns(table)
        return load_inputs(table.frame, table.base_dir, self.preprocessors_,
                           self.config_.on_bad_input, self.config_.training.load_threads,
                           str(table.source), data_root=self.data_root)

    @torch.no_grad()
    def _forward(self, loaded: LoadedInputs) -> torch.Tensor:
        """Probabilities ``[N, K]`` (classification) or values ``[N]`` (regression)."""
        self._check_has_head()
        prepare_backbone_inputs(self.model_, self.preprocessors_, loaded, self.config_.training)
        model = self.model_.eval()
        dataset = MultimodalDataset(loaded, self.preprocessors_)
        loader = torch.utils.data.DataLoader(dataset, batch_size=256,
                                             collate_fn=Collator(self.preprocessors_))
        outs = []
        head = model.head
        for batch in loader:
            output, _ = model(batch)
            outs.append(head.probabilities(output) if head.task == "classification" else head.values(output))
        if not outs:
            k = len(self.classes_ or [])
            return torch.zeros((0, k)) if head.task == "classification" else torch.zeros(0)
        return torch.cat(outs)

    def _score(self, loaded: LoadedInputs, target: torch.Tensor) -> tuple[dict[str, Any], list | None]:
        """Metrics, and the confusion matrix (as lists) for classification."""
        if len(loaded) == 0:
            raise DataError("no rows to evaluate: every row was skipped or had an unknown label")
        if self.schema_.problem_type == "alignment":
            return self._alignment_metrics(loaded, target), None
        outputs = self._forward(loaded)
        if self.schema_.problem_type == "regression":
            return regression_metrics(outputs, target), None
        matrix = confusion_matrix(outputs.argmax(1), target, len(self.classes_))
        return classification_metrics(outputs, target), matrix.tolist()

    def _alignment_metrics(self, loaded: LoadedInputs, groups: torch.Tensor) -> dict[str, Any]:
        """Recall@1/5/10, median rank and MRR between the aligned inputs, both directions."""
        from polymodal.retrieval.embed import embed_loaded
        from polymodal.retrieval.metrics import alignment_metrics

        prepare_backbone_inputs(self.model_, self.preprocessors_, loaded, self.config_.training)
        names = self.model_.aligner.names
        vectors, present = embed_loaded(self.model_, self.preprocessors_, loaded, names)
        metrics = alignment_metrics(vectors, present, {n: loaded.items[n] for n in names}, groups.numpy())
        metrics["n"] = len(loaded)
        return metrics


def _as_table(data: Any) -> Table:
    return data if isinstance(data, Table) else read_table(data)


def _run_directory(checkpoint_dir: Any, resume: bool, config: Config, schema: Schema,
                   labels: Mapping[str, Any], train: Table, tuning: Table) -> Any:
    """The checkpoint folder of this run (``training.resume.RunDirectory``), or None."""
    if checkpoint_dir is None:
        if resume:
            raise ConfigError("resume=True needs checkpoint_dir= (the folder of the interrupted run)")
        return None
    from polymodal.data.readers import MEDIA_EXTENSIONS
    from polymodal.training.resume import RunDirectory, data_digest

    return RunDirectory(checkpoint_dir, resume, {
        "config": config.model_dump(mode="json"), "schema": schema.to_dict(), "labels": labels,
        "train": {"rows": len(train.frame), "digest": data_digest(train.frame)},
        "tuning": {"rows": len(tuning.frame), "digest": data_digest(tuning.frame)},
        "base_dir": str(train.base_dir) if any(r in MEDIA_EXTENSIONS for r in schema.roles.values()) else None,
    })


def _skips(loaded: LoadedInputs, n_rows: int, config: Config) -> dict[str, Any]:
    return skip_summary(loaded.skipped, n_rows, len(loaded), config.on_bad_input)


def _skipped_frame(loaded: LoadedInputs, index: pd.Index) -> pd.DataFrame:
    """``row`` (the table's index label), ``input``, ``reason`` per skipped input."""
    return pd.DataFrame([(index[i], name, reason) for i, name, reason in sorted(loaded.skipped)],
                        columns=["row", "input", "reason"])


def _require_columns(frame: pd.DataFrame, schema: Schema, what: str, need_label: bool) -> None:
    needed = [c for spec in input_specs(schema) for c in spec["columns"]]
    if need_label and schema.label is not None:
        needed.append(schema.label)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {', '.join(map(repr, missing))} that the model "
                        f"was trained with; columns present: {', '.join(map(str, frame.columns))}")


def _check_head(config: Config, schema: Schema) -> None:
    loss = config.head.loss
    if schema.problem_type == "classification" and loss in ("mse", "huber"):
        raise ConfigError(f"head.loss: {loss!r} is a regression loss but label '{schema.label}' is "
                          "classified; use cross_entropy, or set problem_type: regression")
    if schema.problem_type == "regression" and loss == "cross_entropy":
        raise ConfigError(f"head.loss: cross_entropy needs a classification label; '{schema.label}' "
                          "is treated as regression (set problem_type: classification to change that)")


def _split(frame: pd.DataFrame, schema: Schema, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded tuning split; stratified by class for classification."""
    rng = np.random.default_rng(config.seed)
    frac = config.training.tuning_fraction
    if schema.problem_type == "classification":
        groups = frame.groupby(frame[schema.label].astype(str), sort=True).indices
        picks = []
        for _, idx in sorted(groups.items()):
            if len(idx) >= 2:
                picks.extend(rng.permutation(idx)[: max(1, round(frac * len(idx)))].tolist())
    else:
        picks = rng.permutation(len(frame))[: max(1, round(frac * len(frame)))].tolist()
    mask = np.zeros(len(frame), dtype=bool)
    mask[picks] = True
    if mask.all() or not mask.any():
        raise DataError(f"cannot split {len(frame)} rows into training and tuning; pass tuning data or add rows")
    return frame[~mask], frame[mask]


def _fit_labels(frame: pd.DataFrame, schema: Schema, config: Config) -> dict[str, Any]:
    if schema.problem_type == "alignment":  # the label (if any) only groups matching rows
        return {"problem_type": "alignment"}
    column = frame[schema.label]
    if schema.problem_type == "regression":
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        std = float(np.nanstd(values))
        return {"problem_type": "regression", "target_mean": float(np.nanmean(values)),
                "target_std": std if std > 0 else 1.0}
    classes = sorted(pd.unique(column.dropna()).tolist(), key=lambda v: (str(type(v)), v))
    classes = [_json_scalar(c) for c in classes]
    weights = None
    cw = config.head.class_weights
    if cw == "balanced":
        counts = column.astype(str).value_counts()
        weights = [len(column) / (len(classes) * counts[str(c)]) for c in classes]
    elif isinstance(cw, dict):
        unknown = [k for k in cw if k not in {str(c) for c in classes}]
        if unknown:
            raise ConfigError(f"head.class_weights names unknown class(es) {unknown}; classes are {classes}")
        weights = [float(cw.get(str(c), 1.0)) for c in classes]
    return {"problem_type": "classification", "classes": classes, "class_weights": weights}


def _encode_target(column: pd.Series, schema: Schema, labels: Mapping[str, Any], what: str,
                   unknown: str) -> np.ndarray:
    """Class indices (-1 = unseen class) or float values (NaN = missing)."""
    if schema.problem_type == "regression":
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        if unknown == "error" and np.isnan(values).any():
            raise DataError(f"{what}: label '{schema.label}' has {int(np.isnan(values).sum())} missing "
                            "or non-numeric values; drop or fill those rows")
        return values
    index = {str(c): i for i, c in enumerate(labels["classes"])}
    codes = np.array([index.get(str(_json_scalar(v)), -1) for v in column], dtype=np.int64)
    bad = int((codes < 0).sum())
    if bad:
        examples = sorted({str(v) for v, c in zip(column, codes) if c < 0})[:5]
        message = (f"{what}: {bad} row(s) have label values the model was not trained on "
                   f"({', '.join(examples)}); known classes: {', '.join(map(str, labels['classes']))}")
        if unknown == "error":
            raise DataError(message + ". Drop those rows or add them to the training data")
        log.warning(message + "; those rows are left out of the metrics")
    return codes


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _fmt(metrics: Mapping[str, Any]) -> str:
    keys = [k for k in ("accuracy", "f1_macro", "auroc", "rmse", "mae", "r2") if k in metrics]
    keys += [k for k in metrics if k.endswith(("_recall@1", "_recall@10"))]  # alignment
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys)
