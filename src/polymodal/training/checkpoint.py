"""Training checkpoints that load without running code: safetensors + JSON, written atomically.

A checkpoint is ONE ``.safetensors`` file. Its tensors (weights, optimizer moments,
best-so-far weights, RNG states) are the file's tensors; everything else (loop counters,
scheduler and early-stopping state, history, hyper-parameters) is a JSON tree stored in
the file's header metadata, with each tensor replaced by a reference to its key. Reading
one back parses JSON and safetensors only: never ``pickle``, never ``torch.load``.

Writes go to a temporary file in the same folder, are fsynced, then renamed over the old
checkpoint (and the folder fsynced), so a process killed at any moment leaves either the
previous checkpoint or the new one, never half of one.

``SafetensorsCheckpointIO`` plugs this format into Lightning, so ``trainer.fit(ckpt_path=...)``
restores model, optimizer, scheduler, loop counters and callback states the Lightning way;
``EpochCheckpoint`` writes one after every epoch and carries the RNG states.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.callbacks import Checkpoint
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from polymodal.errors import ModelDirError
from polymodal.training.checkpoint_checks import check_fits, check_optimizers, check_state
from polymodal.training.param_groups import match_param_layouts

__all__ = [
    "FORMAT",
    "write_checkpoint",
    "read_checkpoint",
    "check_checkpoint",
    "atomic_write_text",
    "capture_rng",
    "restore_rng",
    "SafetensorsCheckpointIO",
    "EpochCheckpoint",
]

FORMAT = "polymodal-checkpoint/1"
# Markers of the JSON tree; a dict with any key starting "__" is stored as an item list.
_TENSOR, _ARRAY, _TUPLE, _ITEMS, _FLOAT, _DTYPE = (
    "__tensor__", "__ndarray__", "__tuple__", "__items__", "__float__", "__dtype__")


# --------------------------------------------------------------------------- codec
def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """A JSON-able tree for ``obj``; tensors move into ``tensors`` (key ``t<n>``)."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        # A copy: safetensors refuses tensors that share memory (views, tied weights).
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {_TENSOR: key}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {_FLOAT: repr(obj)}  # 'inf', '-inf', 'nan'
    if isinstance(obj, np.generic):
        return _encode(obj.item(), tensors, where)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf" or obj.size > 1_000_000:
            raise TypeError(f"cannot store a numpy array of dtype {obj.dtype} / size {obj.size} at {where}")
        return {_ARRAY: {"dtype": obj.dtype.str, "shape": list(obj.shape), "data": obj.ravel().tolist()}}
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {_ITEMS: [[_encode(k, tensors, where), _encode(v, tensors, f"{where}.{k}")]
                         for k, v in obj.items()]}
    if isinstance(obj, torch.dtype):
        return {_DTYPE: str(obj)}
    raise TypeError(f"cannot store a {type(obj).__name__} at {where or 'the top'} in a checkpoint "
                    "(only tensors, numbers, text, lists and dicts)")


def _decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, list):
        return [_decode(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        (marker, value), = tree.items()
        if marker == _TENSOR:
            return tensors[value]
        if marker == _FLOAT:
            return float(value)
        if marker == _TUPLE:
            return tuple(_decode(v, tensors) for v in value)
        if marker == _ITEMS:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value}
        if marker == _ARRAY:
            return np.array(value["data"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        if marker == _DTYPE:
            return getattr(torch, value.removeprefix("torch."))
    return {k: _decode(v, tensors) for k, v in tree.items()}


# --------------------------------------------------------------------------- files
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_atomically(path: Path, write: Callable[[Path], None], what: str) -> None:
    """Write via ``write(tmp)`` into a sibling temp file, fsync it, rename over ``path``.

    Raises:
        ModelDirError: the folder is read-only, the disk is full, ...; ``path`` is unchanged.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, SafetensorError) as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ModelDirError(f"could not write the {what} {path}: {reason}; the previous one (if any) "
                            "is unchanged. Free disk space or choose a writable folder.") from None


def atomic_write_text(path: Path, text: str, what: str = "file") -> None:
    """Replace ``path`` with ``text`` atomically (temp file, fsync, rename)."""
    _replace_atomically(Path(path), lambda tmp: tmp.write_text(text), what)


def write_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` (nested dicts/lists of tensors, numbers, text) as one safetensors file.

    Raises:
        TypeError: ``state`` holds an object that is not data (it would need pickle).
        ModelDirError: the file cannot be written; a previous checkpoint stays intact.
    """
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, tensors, "")
    metadata = {"format": FORMAT, "tree": json.dumps(tree, allow_nan=False)}
    _replace_atomically(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata),
                        "checkpoint")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a file written by ``write_checkpoint`` (JSON and safetensors only).

    Raises:
        ModelDirError: missing, not a polymodal checkpoint, or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelDirError(f"checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ValueError(f"format {metadata.get('format')!r}, expected {FORMAT!r}")
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
        return _decode(json.loads(metadata["tree"]), tensors)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError) as exc:
        raise ModelDirError(f"checkpoint {path} is damaged or not a polymodal checkpoint ({exc}); "
                            "delete its folder to start the run over") from None


def check_checkpoint(path: Path) -> dict[str, Any]:
    """``read_checkpoint`` plus a check that the tree is a Lightning checkpoint (``check_state``)."""
    state = read_checkpoint(path)
    check_state(state, Path(path))
    return state


# --------------------------------------------------------------------------- RNG
def capture_rng() -> dict[str, Any]:
    """The global random states: Python, NumPy, torch CPU (and CUDA when present)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- Lightning
class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning's checkpoint I/O in the safetensors + JSON format above (no pickle)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        write_checkpoint(checkpoint, Path(path))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: Any = None) -> dict[str, Any]:
        return read_checkpoint(Path(path))

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


class EpochCheckpoint(Checkpoint):
    """After every epoch (after validation and early stopping), write the whole training state.

    Being a Lightning ``Checkpoint``, it runs after ``EarlyStopping`` at the end of an epoch.
    On resume it restores the global RNG states just before the next epoch's first batch
    and, if the run had already stopped early, stops again instead of training on.

    Args:
        path: the checkpoint file.
        on_saved: called as ``on_saved(epoch, stopped, metrics, seconds)`` after each
            checkpoint is on disk (the epoch's logged values and its wall time).
        resuming: the run resumes from ``path``.
    """

    def __init__(self, path: Path,
                 on_saved: Callable[[int, bool, dict[str, float], float], None] | None = None,
                 resuming: bool = False) -> None:
        self.path = Path(path)
        self.resuming = resuming  # training continues from ``path``: check it against the run first
        self.on_saved = on_saved
        self._pending_rng: dict[str, Any] | None = None
        self._epoch_start = time.perf_counter()

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._resumed = None
        if self.resuming:  # a damaged checkpoint fails here, naming the file
            self._resumed = check_checkpoint(self.path)
            check_fits(self._resumed, self.path, module)

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if getattr(self, "_resumed", None) is not None:  # optimizers exist now, not yet restored
            check_optimizers(self._resumed, self.path, trainer.optimizers)
            self._resumed = None

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # rank 0 writes; the others wait
        if self.on_saved is not None and trainer.is_global_zero:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
            self.on_saved(trainer.current_epoch + 1, bool(trainer.should_stop), metrics,
                          time.perf_counter() - self._epoch_start)

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint["polymodal"] = {"rng": capture_rng(), "stopped": bool(trainer.should_stop),
                                   "epoch": trainer.current_epoch + 1}

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        extra = checkpoint.get("polymodal") or {}
        extra = extra if isinstance(extra, dict) else {}
        self._pending_rng = extra.get("rng")
        if extra.get("stopped"):
            trainer.should_stop = True  # early stopping had ended the run: do not train on

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        if self._pending_rng is not None:  # just restored: the optimisers' state too
            for optimizer in trainer.optimizers:
                match_param_layouts(optimizer)
            try:
                restore_rng(self._pending_rng)
            except Exception as exc:  # noqa: BLE001 - a damaged file: say which
                raise ModelDirError(f"checkpoint {self.path} is damaged: its random states cannot be "
                                    f"restored ({type(exc).__name__}); drop --resume to start over") from None
            self._pending_rng = None
