"""Tracing a module into an ONNX graph, checking it with onnxruntime, and telling which part of
a model does not export.

torch's TorchScript-based exporter (``dynamo=False``) is tried first: it exports the packed
sequences of the recurrent encoders, which the torch.export-based one refuses (their lengths
are data), and takes a fraction of a second where the other takes seconds. Where its graph
fails or differs from PyTorch (``nn.MultiheadAttention`` traces its sequence length as a
constant), the torch.export-based exporter (which needs onnxscript) is tried. PyTorch's fused
attention kernels have no ONNX form, so they are off while tracing. onnx, onnxruntime and
onnxscript come with the ``onnx`` extra and are imported on first use.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from polymodal.encoders.base import ENCODERS
from polymodal.errors import ConfigError
from polymodal.export.network import EncoderProbe, Signature
from polymodal.fusion.base import FUSIONS

__all__ = ["require_onnx", "session", "trace", "gap", "attempt", "Attempt", "culprit", "reason", "EXPORTERS", "OPSET",
           "TOLERANCE"]

OPSET = 17  # LayerNormalization is one ONNX operator from 17 on
TOLERANCE = 1e-4  # largest |difference| of an output between onnxruntime and PyTorch

EXPORTERS = ("torchscript", "torch.export")  # tried in this order
_TOKENS = {0: "batch", 1: "tokens"}


def require_onnx(module: str) -> Any:
    """Import ``onnx`` or ``onnxruntime``, or raise ``ConfigError`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"ONNX export and runtime='onnx' need {module}, which is not installed: "
                          "pip install 'polymodal[onnx]'") from None


def session(graph: bytes | str | Path) -> Any:
    """An onnxruntime session over a graph (its bytes or its file), with PyTorch's thread count."""
    ort = require_onnx("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only
    source = graph if isinstance(graph, bytes) else str(graph)
    return ort.InferenceSession(source, options, providers=ort.get_available_providers())


def trace(module: nn.Module, example: list[torch.Tensor], spec: Signature,
          outputs: Mapping[str, Mapping[int, str]], dynamo: bool = False) -> bytes:
    """The ONNX graph of ``module`` traced on ``example`` (``spec``'s tensors), with the batch and
    ``spec``'s dynamic axes free; ``outputs``: each output's name and its free axes (the
    torch.export-based exporter, ``dynamo``, finds those itself)."""
    require_onnx("onnx")
    names = [s.name for s in spec.tensors]
    dynamic = {s.name: {a: n for a, n in enumerate(s.shape) if isinstance(n, str)} for s in spec.tensors}
    fastpath = torch.backends.mha.get_fastpath_enabled()
    quiet = logging.getLogger("torch.onnx")  # the exporter's notes about operators of absent packages
    level = quiet.level
    torch.backends.mha.set_fastpath_enabled(False)
    quiet.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
            if dynamo:
                from torch.export import Dim

                require_onnx("onnxscript")
                shapes = tuple({a: Dim.AUTO for a in dynamic[n]} for n in names)
                program = torch.onnx.export(module, tuple(example), None, dynamo=True, input_names=names,
                                            output_names=list(outputs), dynamic_shapes=(shapes,), verbose=False)
                return program.model_proto.SerializeToString()
            buffer = io.BytesIO()
            dynamic.update({name: dict(axes) for name, axes in outputs.items()})
            with _native_notes_dropped():
                torch.onnx.export(module, tuple(example), buffer, dynamo=False, input_names=names,
                                  output_names=list(outputs), dynamic_axes=dynamic, opset_version=OPSET)
            return buffer.getvalue()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        quiet.setLevel(level)


@contextlib.contextmanager
def _native_notes_dropped() -> Any:
    """Drop the notes that torch's C++ shape inference writes straight to file descriptor 2 while
    tracing (``prim::PackPadded`` has none); whatever else is written meanwhile is passed on."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 to speak of
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().splitlines(keepends=True) if b"shape_type_inference" not in line]
            if kept:
                os.write(2, b"".join(kept))


@dataclass
class Attempt:
    """The outcome of ``attempt``: the graph (None when none held), the largest difference from
    PyTorch, the graph's input names, the exporter that made it and, per exporter that failed, why."""

    graph: bytes | None
    worst: float
    names: list[str]
    exporter: str = ""
    reasons: dict[str, str] = field(default_factory=dict)

    def why(self, exporters: Iterable[str] = EXPORTERS) -> str:
        """Why these exporters failed, one after the other."""
        return "; ".join(f"{e}: {self.reasons[e]}" for e in exporters if e in self.reasons)


def attempt(module: nn.Module, example: list[torch.Tensor], check: list[torch.Tensor], expected: Any,
            spec: Signature, outputs: Mapping[str, Mapping[int, str]], tolerance: float,
            exporters: tuple[str, ...] = EXPORTERS) -> Attempt:
    """Export ``module`` with each of ``exporters`` in turn until onnxruntime's outputs on ``check``
    are within ``tolerance`` of ``expected`` (PyTorch's); the failures' reasons otherwise.

    Raises:
        ConfigError: onnx or onnxruntime is not installed.
    """
    reasons = {}
    for exporter in exporters:
        dynamo = exporter == "torch.export"
        try:
            graph = trace(module, example, spec, outputs, dynamo)
            worst, names = gap(graph, spec, check, expected)
        except ConfigError as exc:
            if not dynamo:
                raise
            reasons[exporter] = str(exc)  # no onnxscript: the torch.export-based exporter cannot run
            continue
        except Exception as exc:  # noqa: BLE001 - the exporter's failure is the answer
            reasons[exporter] = reason(exc)
            continue
        if worst <= tolerance:
            return Attempt(graph, worst, names, exporter)
        reasons[exporter] = f"onnxruntime's outputs differ from PyTorch's by up to {worst:.2g} (tolerance {tolerance:.2g})"
    return Attempt(None, float("inf"), [], reasons=reasons)


def gap(graph: bytes, spec: Signature, tensors: list[torch.Tensor], expected: Any) -> tuple[float, list[str]]:
    """The largest |difference| between onnxruntime's outputs of ``graph`` on ``tensors`` and
    ``expected`` (a tensor or a tuple of them; a differing shape or mask is infinitely far), and
    the graph's input names (the exporter leaves out inputs that nothing reads)."""
    run = session(graph)
    names = [i.name for i in run.get_inputs()]
    by_name = {s.name: t for s, t in zip(spec.tensors, tensors)}
    got = run.run(None, {n: by_name[n].numpy() for n in names})
    worst = 0.0
    for mine, theirs in zip(got, expected if isinstance(expected, tuple) else (expected,)):
        theirs = theirs.detach().numpy()
        if mine.shape != theirs.shape or (theirs.dtype == np.bool_ and not np.array_equal(mine, theirs)):
            return float("inf"), names
        if theirs.dtype != np.bool_:
            worst = max(worst, float(np.abs(mine.astype(np.float64) - theirs).max(initial=0.0)))
    return worst, names


def reason(exc: BaseException) -> str:
    """One line of an exporter's error: torch.export's exception summary, else the first line
    (the rest is often the whole graph)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # colour codes
    summary = text.partition("## Exception summary")[2]
    lines = [line.strip() for line in (summary or text).splitlines() if line.strip()]
    line = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "onnxruntime: ", lines[0] if lines else type(exc).__name__)
    line = re.sub(r"^<class '(?:[\w]+\.)*(\w+)'>: ", r"\1: ", line)
    return line[:300].rstrip(".")


def culprit(model: nn.Module, preprocessors: Mapping[str, Any], spec: Signature, example: list[torch.Tensor],
            check: list[torch.Tensor], whole: Attempt) -> str:
    """Which part of ``model`` does not export, and why: an input whose encoder, exported alone,
    fails or differs from PyTorch with every exporter; else two inputs that need different
    exporters; else the fusion (with the head), with ``whole``'s reasons for the exporters that
    export every encoder."""
    common = set(EXPORTERS)  # the exporters that export every encoder so far
    handled: dict[str, set[str]] = {}
    for name in spec.names:
        probe = EncoderProbe(model.encoders[name], spec, name).eval()
        with torch.no_grad():
            expected = probe(*check)
        scale = max([1.0, *expected[1].abs().flatten().tolist()])  # features are not probabilities
        outputs = {"tokens": _TOKENS, "pooled": {0: "batch"}, "mask": _TOKENS}
        tries = [attempt(probe, example, check, expected, spec, outputs, TOLERANCE * scale, (e,)) for e in EXPORTERS]
        handled[name] = {t.exporter for t in tries if t.graph is not None}
        if not handled[name]:
            return f"{_encoder(model, preprocessors, name)}: {'; '.join(t.why() for t in tries)}"
        if not common & handled[name]:
            first = next(n for n in handled if not handled[n] & handled[name])
            return (f"{_encoder(model, preprocessors, first)} exports only with {' or '.join(sorted(handled[first]))}, "
                    f"{_encoder(model, preprocessors, name)} only with {' or '.join(sorted(handled[name]))}")
        common &= handled[name]
    fusions = {cls: n for n, cls in FUSIONS.items()}
    fusion = fusions.get(type(model.fusion), type(model.fusion).__name__)
    return f"fusion {fusion!r} (with its {type(model.head).__name__}): {whole.why(e for e in EXPORTERS if e in common)}"


def _encoder(model: nn.Module, preprocessors: Mapping[str, Any], name: str) -> str:
    """``input 'caption' (text encoder 'gru')``, or the backbone a pretrained encoder wraps."""
    encoder, pre = model.encoders[name], preprocessors[name]
    registered = {cls: key for key, cls in ENCODERS.items()}
    if type(encoder) in registered:
        modality, encoder_name = registered[type(encoder)]
        return f"input {name!r} ({modality} encoder {encoder_name!r})"
    backbone = getattr(pre, "backbone", None)
    what = f"backbone {backbone!r}" if backbone else type(encoder).__name__
    return f"input {name!r} ({pre.modality} {what})"
