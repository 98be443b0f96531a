"""Model directories: the files of a fitted model, atomic writes, a checksummed manifest, and
loading that runs no code.

``save_model`` writes ``config.yaml``, ``schema.json``, ``labels.json``, ``inputs.json``,
``preprocessors/<input>/``, ``model.safetensors``, ``metrics.json``, ``history.csv``,
``plots/*.png`` and ``manifest.json``; ``load_model`` reads them back into a ``FittedModel``.
A model directory is written into a temporary sibling folder and renamed into place only
when complete, so an interrupted save never leaves a directory that half-loads; an older
directory at the same path stays intact until the new one is complete. The temporary folder's
name holds the saving process's id (``.<name>.tmp-<host>-<pid>-<random>``), so that the next
save to the same path can remove what a killed save left (``_remove_abandoned``).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import yaml
from safetensors import SafetensorError
from safetensors.torch import save_file

from polymodal._version import __version__
from polymodal.builders import build_model, load_preprocessors
from polymodal.config import load_config
from polymodal.data.schema import Schema
from polymodal.distributed import is_rank_zero
from polymodal.errors import ModelDirError
from polymodal.fitted import FittedModel
from polymodal.untrusted import input_specs, mapping, read_json, read_safetensors, reading

__all__ = ["save_model", "load_model", "atomic_directory", "write_manifest", "verify_manifest", "MANIFEST",
           "UNSAFE_SUFFIXES"]

log = logging.getLogger("polymodal")

MANIFEST = "manifest.json"
# A save takes minutes at most: a temporary folder untouched this long is abandoned, whatever its id says.
_ABANDONED_AFTER_S = 24 * 3600
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]  # pids are per machine
# Formats that unpickle (or are code) when loaded: never part of a model directory.
UNSAFE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".npy", ".npz",
                   ".py", ".pyc", ".so")


def save_model(fitted: FittedModel, path: str | Path) -> Path:
    """Write ``fitted``'s model directory atomically (in a DDP run: rank 0 only). Returns its path.

    Raises:
        ModelDirError: the folder cannot be written; an older directory there stays intact.
    """
    from polymodal.generation.grids import save_epoch_grids
    from polymodal.reports import plot_confusion_matrix, plot_curves

    path = Path(path)
    if not is_rank_zero():  # the other processes of a multi-process run leave it to rank 0
        return path
    with atomic_directory(path) as tmp:
        (tmp / "config.yaml").write_text(fitted.config.to_yaml())
        (tmp / "schema.json").write_text(json.dumps(fitted.schema.to_dict(), indent=2))
        (tmp / "labels.json").write_text(json.dumps(fitted.labels, indent=2))
        specs = [{"name": n, "modality": p.modality, "columns": list(p.columns)}
                 for n, p in sorted(fitted.preprocessors.items())]
        (tmp / "inputs.json").write_text(json.dumps(specs, indent=2))
        for name, pre in fitted.preprocessors.items():
            pre.save(tmp / "preprocessors" / name)
        save_file({k: v.contiguous() for k, v in fitted.model.state_dict().items()}, str(tmp / "model.safetensors"))
        metrics = {name: r["metrics"] for name, r in fitted.reports.items()}
        metrics["fit"] = fitted.fit_info
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
        fitted.history.to_csv(tmp / "history.csv", index=False)
        (tmp / "plots").mkdir()
        if len(fitted.history):
            plot_curves(fitted.history, tmp / "plots" / "curves.png")
        for target, grids in fitted.grids.items():  # generation: the sample grid after each epoch
            save_epoch_grids(grids, tmp / "plots" / f"samples_{target}.png")
        names = [str(c) for c in fitted.classes or []]
        for split, report in fitted.reports.items():
            if report.get("confusion") is not None:
                suffix = "" if split == "tuning" else f"_{split}"
                plot_confusion_matrix(np.asarray(report["confusion"]), names, tmp / "plots" / f"confusion_matrix{suffix}.png",
                                      split="tuning split" if split == "tuning" else split)
        for name, picture in fitted.saved_plots.items():  # loaded, not drawn again: kept as they were
            if not (tmp / "plots" / name).exists():
                (tmp / "plots" / name).write_bytes(picture)
        write_manifest(tmp)
    return path


def load_model(path: str | Path, data_root: str | Path | None = None) -> FittedModel:
    """Read a model directory written by ``save_model``: JSON, YAML and safetensors only.

    Args:
        data_root: see ``FittedModel``; file paths in tables must stay inside it.

    Raises:
        ModelDirError: not a model directory, files missing or changed, or unreadable.
    """
    path = Path(path)
    verify_manifest(path)
    with reading(path / "config.yaml", "a valid config"):
        config = load_config(mapping(yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))))
    with reading(path / "schema.json", "a schema"):
        schema = Schema.from_dict(read_json(path / "schema.json", dict))
    labels = read_json(path / "labels.json", dict)
    specs = input_specs(path / "inputs.json")
    preprocessors = {}
    for spec in specs:
        folder = path / "preprocessors" / spec["name"]
        for file in sorted(folder.glob("*.json")):  # tokenizer.json, state.json: JSON at least
            read_json(file, dict)
        files = ", ".join(sorted(p.name for p in folder.iterdir())) if folder.is_dir() else "none"
        with reading(folder, f"the fitted preprocessor of input {spec['name']!r} (its files: {files})"):
            preprocessors.update(load_preprocessors(config, [spec], path / "preprocessors"))
        if list(getattr(preprocessors[spec["name"]], "columns", spec["columns"])) != spec["columns"]:
            raise ModelDirError(f"{folder} is damaged: its columns differ from those inputs.json records; "
                                "save the model again")
    with reading(path, "a model that config.yaml, schema.json, labels.json and inputs.json describe"):
        model = build_model(config, schema, preprocessors, labels)
    weights = read_safetensors(path / "model.safetensors")
    with reading(path / "model.safetensors", "the weights of the model that config.yaml, labels.json, "
                 "inputs.json and preprocessors/ describe"):
        model.load_state_dict(weights)
    metrics = read_json(path / "metrics.json", dict)
    with reading(path / "history.csv", "a CSV table"):
        text = (path / "history.csv").read_text(encoding="utf-8")
        history = pd.read_csv(io.StringIO(text)) if text.strip() else pd.DataFrame()
    model.eval()
    fit_info = metrics.pop("fit", {})
    if not isinstance(fit_info, dict) or not all(isinstance(m, dict) for m in metrics.values()):
        raise ModelDirError(f"{path / 'metrics.json'} is damaged: expected an object of objects; save the model again")
    reports = {name: {"metrics": m, "confusion": None} for name, m in metrics.items()}
    fitted = FittedModel(config, schema, labels, preprocessors, model, history, fit_info, reports, data_root)
    plots = path / "plots"  # the manifest has checked these files
    fitted.saved_plots = {p.name: p.read_bytes() for p in sorted(plots.glob("*.png"))} if plots.is_dir() else {}
    return fitted


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``target`` in one rename.

    Raises:
        ModelDirError: when the parent folder cannot be written (read-only, full disk).
    """
    target = Path(target).absolute()
    if target.exists() and not target.is_dir():
        raise ModelDirError(f"cannot save to {target}: a file of that name exists; choose another path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{_HOST}-{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise ModelDirError(f"cannot write a model directory in {target.parent}: {exc.strerror}") from None
    try:
        yield tmp
        _fsync_tree(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{_HOST}-{os.getpid()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
        shutil.rmtree(tmp, ignore_errors=True)
        reason = " ".join((getattr(exc, "strerror", None) or str(exc)).split())[:300]
        raise ModelDirError(f"could not save to {target}: {reason}; nothing was changed there. Free disk "
                            "space or choose a writable folder") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_abandoned(target: Path) -> None:
    """Delete the ``.tmp-`` (and ``.old-``) folders that saves to ``target`` killed midway left,
    and say so in one line; a folder of a save still running is kept. A killed save that had
    already moved the previous directory aside (target missing) gets it back in place."""
    removed = []
    for path in sorted(target.parent.glob(f".{glob.escape(target.name)}.*-*")):
        role, _, owner = path.name[len(target.name) + 2:].partition("-")
        if role not in ("tmp", "old") or path.is_symlink() or not path.is_dir() or not _abandoned(path, owner):
            continue
        if role == "old" and not target.exists():
            with contextlib.suppress(OSError):  # a failed restore must not stop this save
                path.rename(target)
                log.warning("Restored %s from %s, which a save killed midway had moved aside.", target, path.name)
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    if removed:
        log.warning("Removed %d temporary folder(s) that saves to %s killed midway left behind: %s.",
                    len(removed), target, ", ".join(removed))


def _abandoned(path: Path, owner: str) -> bool:
    """True when the save that named ``path`` (``<host>-<pid>-...``) is gone: its process no
    longer runs on this machine, or the folder has not changed for a day."""
    host, _, rest = owner.partition("-")
    pid = rest.partition("-")[0]
    if host == _HOST and pid.isdigit() and int(pid) != os.getpid() and os.name == "posix":
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except OSError:  # PermissionError: it runs, as another user
            pass
    try:
        return time.time() - path.stat().st_mtime > _ABANDONED_AFTER_S
    except OSError:
        return False


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(root: Path) -> None:
    """Record every file's sha256 and the polymodal version in ``manifest.json``."""
    files = {
        p.relative_to(root).as_posix(): _sha256(p)
        for p in sorted(root.rglob("*")) if p.is_file() and p != root / MANIFEST
    }
    unsafe = [f for f in files if f.lower().endswith(UNSAFE_SUFFIXES)]
    if unsafe:  # a bug in polymodal, not the user's doing: loading must never run code
        raise ModelDirError(f"refusing to save {', '.join(unsafe[:5])}: model directories hold "
                            "safetensors, JSON, YAML and text only")
    (root / MANIFEST).write_text(json.dumps({"polymodal": __version__, "files": files}, indent=2))


def verify_manifest(root: Path) -> dict:
    """Check that ``root`` is a complete, untampered model directory.

    Raises:
        ModelDirError: naming the missing, changed or unexpected files.
    """
    root = Path(root)
    if not root.is_dir():
        raise ModelDirError(f"model directory {str(root)!r} not found; pass the folder that fit/save wrote")
    path = root / MANIFEST
    if not path.is_file():
        raise ModelDirError(f"{root} is not a polymodal model directory (no {MANIFEST}); pass the folder that fit/save wrote")
    try:
        manifest = json.loads(path.read_text())
        recorded: dict[str, str] = manifest["files"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in recorded.items()):
            raise TypeError("file entries must be text")
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        raise ModelDirError(f"{path} is unreadable; the model directory is damaged, save it again") from None
    outside = [f for f in recorded if Path(f).is_absolute() or ".." in Path(f).parts]
    if outside:
        raise ModelDirError(f"{path} names files outside the model directory ({', '.join(outside[:3])}); "
                            "it was tampered with: save the model again")
    missing = [f for f in recorded if not (root / f).is_file()]
    changed = [f for f in recorded if f not in missing and _sha256(root / f) != recorded[f]]
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}
    extra = sorted(present - set(recorded) - {MANIFEST})
    problems = []
    if missing:
        problems.append(f"missing: {', '.join(missing[:5])}")
    if changed:
        problems.append(f"changed since save: {', '.join(changed[:5])}")
    if extra:
        problems.append(f"not written by save: {', '.join(extra[:5])} (remove them)")
    unsafe = [f for f in recorded if f.lower().endswith(UNSAFE_SUFFIXES)]
    if unsafe:
        problems.append(f"files that could run code when loaded: {', '.join(unsafe[:5])}")
    if problems:
        raise ModelDirError(f"model directory {root} is incomplete or was modified ({'; '.join(problems)}); save the model again")
    return manifest
