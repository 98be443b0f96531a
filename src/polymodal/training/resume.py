"""The folder of an unfinished training run: checkpoint, fitted preprocessors, progress.

``polymodal fit --out model/`` keeps it in ``model.partial/`` (``--checkpoint-dir`` moves it) and deletes it once
the model directory is saved; Python callers pass ``Predictor.fit(..., checkpoint_dir=...)`` and delete it.

    run.json                 what the run is: config, schema, labels, data digests
    preprocessors/<input>/   the fitted preprocessors (JSON / tokenizer files), so a resumed
                             run encodes the data exactly as the interrupted one did
    checkpoint.safetensors   the training state after the last finished epoch
    progress.json            that epoch's number and metrics, for people and scripts

A run is resumed only when ``run.json`` matches the new run (same config, same data);
anything else is an error that says what differs, rather than a silently mixed model.

Nothing is written before the first epoch ends, so a fit that fails earlier leaves no folder; a
failure after that keeps it, and a log line says where it is and how to resume or delete it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from lightning.pytorch.callbacks import Callback

from polymodal._version import __version__
from polymodal.distributed import is_rank_zero
from polymodal.errors import ConfigError, ModelDirError, TrainingError
from polymodal.training.checkpoint import atomic_write_text, check_checkpoint
from polymodal.untrusted import read_json, reading

__all__ = ["RunDirectory", "default_checkpoint_dir", "data_digest", "discard_run"]

log = logging.getLogger("polymodal")

_RUN, _PROGRESS, _CHECKPOINT, _PREPROCESSORS = "run.json", "progress.json", "checkpoint.safetensors", "preprocessors"
_OURS = {_RUN, _PROGRESS, _CHECKPOINT, _PREPROCESSORS}
# Training options that change speed or display, never the numbers: a run may resume with others.
_NO_EFFECT = ("progress_bar", "load_threads", "num_workers", "threads", "profile")


def default_checkpoint_dir(out: str | Path) -> Path:
    """Where ``polymodal fit --out <out>`` keeps its checkpoints: ``<out>.partial``."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def discard_run(path: str | Path) -> None:
    """Delete a run folder's files, and the folder if that leaves it empty."""
    path = Path(path)
    if not (path / _RUN).is_file():
        return  # not a run folder (or already gone): touch nothing
    for name in (_CHECKPOINT, _PROGRESS, _RUN):
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / _PREPROCESSORS, ignore_errors=True)
    for leftover in path.glob(".*.tmp-*"):  # temp files of a write cut short
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    try:
        path.rmdir()
    except OSError:
        pass  # not empty: someone else's files stay


def data_digest(frame: pd.DataFrame) -> str:
    """A sha256 of a table's column names and cell values (order-sensitive)."""
    digest = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode())
    try:
        hashed = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:  # unhashable cells (lists, dicts): hash their text
        hashed = pd.util.hash_pandas_object(frame.astype(str), index=False)
    digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


class RunDirectory:
    """One run's checkpoint folder.

    Args:
        path: the folder (created if needed).
        resume: continue from the checkpoint there, if any. Without it an existing
            checkpoint is deleted (with a warning) and the run starts over.
        fingerprint: JSON-able description of the run (see ``Predictor.fit``); a resumed run must have the same.

    Attributes:
        resuming: True when training continues from ``checkpoint_path``.
        resumed_epoch: the last finished epoch of the interrupted run (0 = fresh start).

    Raises:
        ConfigError: ``resume`` and the checkpoint belongs to a different run.
        ModelDirError: the folder cannot be written, or holds files that are not ours.
    """

    def __init__(self, path: str | Path, resume: bool, fingerprint: Mapping[str, Any]) -> None:
        self.path = Path(path).absolute()
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        for key in _NO_EFFECT:
            self.fingerprint.get("config", {}).get("training", {}).pop(key, None)
        self.resuming, self.resumed_epoch = False, 0
        self._started, self._preprocessors = True, None  # False / kept until ``_start`` writes them
        recorded = self._read_json(_RUN, resume)
        progress = self._read_json(_PROGRESS, resume) or {}
        try:
            if self.path.exists() and not self.path.is_dir():
                raise ModelDirError(f"checkpoint folder {self.path} is a file; choose another --checkpoint-dir")
            strangers = sorted(p.name for p in self.path.iterdir() if p.name not in _OURS
                               and not p.name.startswith(".")) if self.path.is_dir() else []
        except OSError as exc:
            raise ModelDirError(f"cannot use {self.path} for checkpoints: {exc.strerror or exc}; "
                                "choose a readable, writable folder (--checkpoint-dir)") from None
        if strangers and recorded is None:
            raise ModelDirError(f"checkpoint folder {self.path} already holds other files "
                                f"({', '.join(strangers[:3])}); choose an empty or new folder")
        has_checkpoint = self.checkpoint_path.is_file()
        if resume and recorded is not None and has_checkpoint:
            self._check_same_run(recorded)
            epoch = progress.get("epoch", 0)
            if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
                raise self._damaged(_PROGRESS, f"'epoch' must be a whole number, got {epoch!r}")
            check_checkpoint(self.checkpoint_path)
            self.resuming, self.resumed_epoch = True, epoch
            log.info("Resuming from the checkpoint of epoch %d in %s.", self.resumed_epoch, self.path)
            return
        if resume:
            log.info("No checkpoint to resume in %s; training from the first epoch.", self.path)
        elif has_checkpoint:
            log.warning("%s holds a checkpoint of an unfinished run (epoch %s); starting over "
                        "(pass --resume / resume=True to continue it instead).", self.path,
                        progress.get("epoch", "?"))
        self._check_writable()
        self._started = False

    # ------------------------------------------------------------------ layout
    @property
    def checkpoint_path(self) -> Path:
        return self.path / _CHECKPOINT

    @property
    def ckpt_path(self) -> str | None:
        """What to pass to ``trainer.fit(ckpt_path=...)``: the checkpoint when resuming."""
        return str(self.checkpoint_path) if self.resuming else None

    @property
    def has_preprocessors(self) -> bool:
        return self.resuming and (self.path / _PREPROCESSORS).is_dir()

    def _read_json(self, name: str, strict: bool) -> dict | None:
        """The JSON object in ``name``; None when absent. Damaged: an error when ``strict``
        (resuming from it), else None (the run starts over and rewrites it)."""
        file = self.path / name
        if not file.is_file():
            return None
        try:
            value = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problem = f"unreadable ({exc})"
        else:
            if isinstance(value, dict):
                return value
            problem = f"expected a JSON object, got {type(value).__name__}"
        if strict:
            raise self._damaged(name, problem)
        return None

    def _damaged(self, name: str, problem: str) -> ModelDirError:
        return ModelDirError(f"{self.path / name} is damaged: {problem}; the checkpoint folder cannot be "
                             "resumed: drop --resume to start over")

    def _check_writable(self) -> None:
        """Fail now, not after the first epoch, when the folder cannot be written; leave no trace."""
        if not is_rank_zero():  # in a DDP run, rank 0 alone writes the folder (and its _start)
            return
        created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.path).close()
            if created:
                self.path.rmdir()
        except OSError as exc:
            raise ModelDirError(f"cannot use {self.path} for checkpoints: {exc.strerror or exc}; "
                                "choose a writable folder (--checkpoint-dir)") from None

    def _start(self) -> None:
        """When the first epoch ends: clear an earlier run's files, record this run and its preprocessors."""
        if self._started or not is_rank_zero():
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            for name in (_CHECKPOINT, _PROGRESS):
                (self.path / name).unlink(missing_ok=True)
            shutil.rmtree(self.path / _PREPROCESSORS, ignore_errors=True)
        except OSError as exc:
            raise ModelDirError(f"cannot use {self.path} for checkpoints: {exc.strerror or exc}; "
                                "choose a writable folder (--checkpoint-dir)") from None
        atomic_write_text(self.path / _RUN, json.dumps(self.fingerprint, indent=2), "run description")
        self._started = True
        if self._preprocessors is not None:
            self.save_preprocessors(self._preprocessors)

    def _say_kept(self, exc: BaseException) -> None:
        """After a failure in training: where the checkpoint is, and what to do with it."""
        if isinstance(exc, TrainingError) or not is_rank_zero():
            return  # the fit says what happens to the folder of a diverged run; rank 0 says the rest
        if self.checkpoint_path.is_file():
            progress = self._read_json(_PROGRESS, False) or {}
            log.warning("Training stopped (%s); the checkpoint of epoch %s is kept in %s: run the same "
                        "command with --resume (resume=True) to continue from it, or delete that folder.",
                        type(exc).__name__, progress.get("epoch", "?"), self.path)
        elif self._started and not self.resuming:
            discard_run(self.path)  # stopped before its first checkpoint: nothing to resume

    def _check_same_run(self, recorded: Mapping[str, Any]) -> None:
        differ = sorted(k for k in set(recorded) | set(self.fingerprint)
                        if recorded.get(k) != self.fingerprint.get(k))
        if "config" in differ:
            old, new = recorded.get("config"), self.fingerprint.get("config", {})
            old = old if isinstance(old, dict) else {}
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            differ = [f"config ({', '.join(keys)})" if k == "config" else k for k in differ]
        if differ:
            raise ConfigError(
                f"the checkpoint in {self.path} belongs to a different run: {', '.join(differ)} "
                f"differ from what its {_RUN} records. Resume with the same data and config, or drop --resume to start over."
            )

    # ------------------------------------------------------------------ contents
    def save_preprocessors(self, preprocessors: Mapping[str, Any]) -> None:
        """Store the fitted preprocessors (their own ``save`` format), atomically (at ``_start``)."""
        if not self._started:
            self._preprocessors = dict(preprocessors)
            return
        target = self.path / _PREPROCESSORS
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".preprocessors.tmp-", dir=self.path))
            for name, pre in preprocessors.items():
                pre.save(tmp / name)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        except OSError as exc:
            raise ModelDirError(f"cannot write preprocessors into {self.path}: {exc.strerror or exc}; "
                                "free disk space or choose a writable --checkpoint-dir") from None

    def load_preprocessors(self, unfitted: Mapping[str, Any]) -> dict[str, Any]:
        """The interrupted run's fitted preprocessors, one per name in ``unfitted``."""
        folder = self.path / _PREPROCESSORS
        missing = [n for n in unfitted if not (folder / n).is_dir()]
        if missing:
            raise ModelDirError(f"{folder} lacks the preprocessors {missing}; the checkpoint folder is "
                                "incomplete: drop --resume to start over")
        fix = "drop --resume to start over"
        loaded = {}
        for name, pre in unfitted.items():
            for file in sorted((folder / name).glob("*.json")):  # tokenizer.json, state.json
                read_json(file, dict, fix)
            with reading(folder / name, f"the fitted preprocessor of input {name!r}", fix):
                loaded[name] = type(pre).load_from(folder / name)
        return loaded

    def epoch_saved(self, epoch: int, stopped: bool, metrics: Mapping[str, Any] | None = None,
                    seconds: float = 0.0) -> None:
        """Record that the checkpoint of ``epoch`` (which took ``seconds``) is on disk."""
        self._start()
        progress = {"epoch": epoch, "stopped": stopped, "checkpoint": _CHECKPOINT,
                    "epoch_seconds": round(seconds, 3),
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "polymodal": __version__,
                    "metrics": {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))}}
        atomic_write_text(self.path / _PROGRESS, json.dumps(progress, indent=2), "progress file")

    def remove(self) -> None:
        """Delete this run's files (after the finished model has been saved)."""
        discard_run(self.path)

    def trainer_parts(self) -> dict[str, Any]:
        """Keyword arguments for ``L.Trainer``: the epoch checkpoint callback and its I/O."""
        from polymodal.training.checkpoint import EpochCheckpoint, SafetensorsCheckpointIO

        return {"callbacks": [_RunFolder(self), EpochCheckpoint(self.checkpoint_path, self.epoch_saved, self.resuming)],
                "plugins": [SafetensorsCheckpointIO()], "enable_checkpointing": True}


class _RunFolder(Callback):
    """Writes the run folder when the first epoch ends (Lightning runs this before any
    ``Checkpoint`` callback), and says what is kept when training fails."""

    def __init__(self, run: RunDirectory) -> None:
        self.run = run

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        self.run._start()

    def on_exception(self, trainer: Any, module: Any, exception: BaseException) -> None:
        self.run._say_kept(exception)
