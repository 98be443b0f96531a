"""Reading the files of a model directory, which may be damaged even when its manifest checks out
(the manifest is a checksum, not a signature): every failure is a ``ModelDirError`` that names
the file and what it should hold, never a traceback.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from safetensors.torch import load_file

from polymodal.errors import ModelDirError

__all__ = ["reading", "mapping", "read_json", "input_specs", "read_safetensors"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]*$")
_MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header


@contextmanager
def reading(file: Path, expected: str, fix: str = "save the model again") -> Iterator[None]:
    """Any failure inside becomes a ``ModelDirError`` naming ``file`` and what it should hold."""
    try:
        yield
    except ModelDirError:
        raise
    except Exception as exc:  # noqa: BLE001 - the files are untrusted input: none may crash the caller
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ModelDirError(f"{file} is damaged: it does not hold {expected} ({reason}); {fix}") from None


def mapping(value: Any) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping of settings, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", type(None): "null"}.get(type(value), type(value).__name__)


def read_json(file: Path, kind: type | tuple[type, ...], fix: str = "save the model again") -> Any:
    """``file``'s JSON value, which must be of ``kind``."""
    with reading(file, "JSON", fix):
        value = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(value, kind):
        want = " or ".join(_kind(k()) for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ModelDirError(f"{file} is damaged: expected {want}, got {_kind(value)}; {fix}")
    return value


def input_specs(file: Path) -> list[dict[str, Any]]:
    """``inputs.json``: a list of ``{name, modality, columns}``, names safe as folder names."""
    specs = read_json(file, list)
    for n, spec in enumerate(specs):
        problem = None
        if not isinstance(spec, dict) or set(spec) != {"name", "modality", "columns"}:
            problem = f"entry {n} must be an object with keys columns, modality, name; got {_kind(spec)}" + (
                f" with keys {', '.join(sorted(map(str, spec)))}" if isinstance(spec, dict) else "")
        elif not isinstance(spec["name"], str) or not _NAME.match(spec["name"]):
            problem = f"entry {n}: input name {spec['name']!r} is not a plain folder name"
        elif not isinstance(spec["modality"], str) or not isinstance(spec["columns"], list) or not all(
                isinstance(c, str) for c in spec["columns"]):
            problem = f"entry {n}: 'modality' must be text and 'columns' a list of text"
        if problem:
            raise ModelDirError(f"{file} is damaged: {problem}; save the model again")
    return specs


def read_safetensors(file: Path) -> dict[str, Any]:
    """The tensors of ``file``, after checking its header against the file's size."""
    with reading(file, "safetensors weights"):
        size = file.stat().st_size
        with open(file, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError(f"{size} bytes, too short for a safetensors file")
            length = int.from_bytes(head, "little")
            if length > min(size - 8, _MAX_HEADER):
                raise ValueError(f"its header claims {length:,} bytes but the file holds {size:,} "
                                 "(truncated, or not a safetensors file: pickle and torch.save files are refused)")
            header = json.loads(fh.read(length))
        if not isinstance(header, dict):
            raise ValueError(f"its header is {_kind(header)}, not an object")
        data = size - 8 - length
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
            if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                    and 0 <= offsets[0] <= offsets[1] <= data):
                raise ValueError(f"tensor {key!r} lies outside the file's {data:,} data bytes (truncated?)")
        tensors = load_file(str(file))
        bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(t.isfinite().all())]
        if bad:
            raise ValueError(f"tensor {bad[0]!r} holds NaN or inf")
        return tensors
