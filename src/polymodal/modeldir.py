"""Model directories: atomic writes, a checksummed manifest, and loading that runs no code.

A model directory is written into a temporary sibling folder and renamed into place only
when complete, so an interrupted save never leaves a directory that half-loads; an older
directory at the same path stays intact until the new one is complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from polymodal import __version__
from polymodal.errors import ModelDirError

__all__ = ["atomic_directory", "write_manifest", "verify_manifest", "MANIFEST", "UNSAFE_SUFFIXES"]

MANIFEST = "manifest.json"
# Formats that unpickle (or are code) when loaded: never part of a model directory.
UNSAFE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".npy", ".npz",
                   ".py", ".pyc", ".so")


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
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise ModelDirError(f"cannot write a model directory in {target.parent}: {exc.strerror}") from None
    try:
        yield tmp
        _fsync_tree(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelDirError(f"could not save the model to {target}: {exc}; nothing was changed there") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
