"""Running a fitted model's network with onnxruntime: ``use_runtime`` and ``OnnxNetwork``.

``use_runtime(fitted, model_dir, "onnx", onnx=path)`` returns the fitted model with an
``OnnxNetwork`` as its ``runtime``: ``FittedModel.forward`` (and so ``predict``,
``predict_proba``, ``evaluate``, the robustness report and the HTTP service) runs the graph
instead of the PyTorch model, on the batches polymodal's own preprocessing collates. The graph
must come from that very model directory (the description records its manifest's sha256).
Without ``onnx``, the model is exported first into a temporary folder, removed when the network
is garbage-collected. ``explain`` and ``embed`` keep using the PyTorch model (gradients and
single encoders). Frozen cached backbones read their raw inputs under this runtime: the graph
holds the backbone (see ``export.onnx``), so the feature store is neither read nor filled.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.data import Collator, MultimodalDataset
from polymodal.errors import ConfigError, ModelDirError
from polymodal.export.network import Signature, TensorSpec, store_free
from polymodal.export.onnx import FORMAT, description_path, export_onnx, manifest_sha256
from polymodal.export.trace import session
from polymodal.fitted import FittedModel
from polymodal.untrusted import read_json, reading

__all__ = ["use_runtime", "OnnxNetwork", "RUNTIMES"]

log = logging.getLogger("polymodal")

RUNTIMES = ("torch", "onnx")
_BATCH = 256  # rows per run, as FittedModel.forward


class OnnxNetwork:
    """An exported network under onnxruntime, for ``FittedModel.runtime``.

    Args:
        path: the ``.onnx`` file; description: its JSON (``export_onnx``'s return value).
        temporary: a folder to delete with this object (an export made on load).
    """

    def __init__(self, path: Path, description: dict[str, Any], temporary: Path | None = None):
        self.path, self.description = Path(path), description
        self.session = session(self.path)
        entries = description["inputs"]
        present = [e for e in entries if e["name"] == "present"][0]
        self.signature = Signature(tuple(TensorSpec(e["name"], e.get("input"), e.get("key"), e["dtype"],
                                                    tuple(e["shape"])) for e in entries), tuple(present["inputs"]))
        self.output = description["outputs"][0]["name"]
        if temporary is not None:
            weakref.finalize(self, shutil.rmtree, temporary, ignore_errors=True)

    def run(self, batch: dict[str, Any]) -> np.ndarray:
        """The graph's output for one collated batch (``[B, K]`` probabilities or ``[B]`` values)."""
        return self.session.run([self.output], self.signature.feeds(batch))[0]

    def forward(self, fitted: FittedModel, loaded: Any) -> Any:
        """What ``FittedModel.forward`` returns, computed by onnxruntime."""
        loader = torch.utils.data.DataLoader(MultimodalDataset(loaded, fitted.preprocessors), batch_size=_BATCH,
                                             collate_fn=Collator(fitted.preprocessors))
        return fitted.task.concat([torch.from_numpy(self.run(batch)) for batch in loader], fitted.labels)


def use_runtime(fitted: FittedModel, model_dir: str | Path, runtime: str = "torch",
                onnx: str | Path | None = None) -> FittedModel:
    """``fitted`` to run with ``runtime``: itself for ``torch``; for ``onnx``, a copy whose
    ``forward`` runs the graph ``onnx`` (exported from ``model_dir``), or a fresh export of it.

    Raises:
        ConfigError: an unknown runtime, ``onnx`` without runtime='onnx', or no onnxruntime.
        ModelDirError: ``onnx`` (or its JSON) is missing, damaged, or from another model.
        ExportError: the model cannot be exported (exporting on load).
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"The 'runtime' parameter must be one of {', '.join(RUNTIMES)}. Got {runtime!r} instead.")
    if runtime == "torch":
        if onnx is not None:
            raise ConfigError("onnx= names an exported graph, which only runtime='onnx' runs; pass "
                              "runtime='onnx' too, or leave onnx out")
        return fitted
    raw = dataclasses.replace(fitted, preprocessors=store_free(fitted.preprocessors))
    temporary = None
    if onnx is None:
        temporary = Path(tempfile.mkdtemp(prefix="polymodal-onnx-"))
        onnx, start = temporary / "model.onnx", time.perf_counter()
        try:
            export_onnx(raw, onnx, model_dir)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        log.info("Exported %s to ONNX in %.1fs, into a temporary file for this process; a graph written once by "
                 "`polymodal export %s --out model.onnx` and given as Predictor.load(..., onnx='model.onnx') "
                 "skips this", model_dir, time.perf_counter() - start, model_dir)
    description = _read_description(Path(onnx), Path(model_dir), sorted(raw.preprocessors))
    return dataclasses.replace(raw, runtime=OnnxNetwork(Path(onnx), description, temporary))


def _read_description(onnx: Path, model_dir: Path, names: list[str]) -> dict[str, Any]:
    """The JSON beside ``onnx``, checked against the graph's bytes and ``model_dir``'s manifest."""
    fix = f"export it again: polymodal export {model_dir} --out {onnx}"
    if not onnx.is_file():
        raise ModelDirError(f"exported graph {str(onnx)!r} not found; {fix}")
    path = description_path(onnx)
    if not path.is_file():
        raise ModelDirError(f"{onnx} has no description {path.name} beside it (export writes both); {fix}")
    description = read_json(path, dict, fix)
    with reading(path, "the description of an exported graph", fix):
        if description["format"] != FORMAT:
            raise ValueError(f"format {description['format']!r}, this polymodal reads {FORMAT}")
        present = [e for e in description["inputs"] if e["name"] == "present"]
        if len(present) != 1 or sorted(present[0]["inputs"]) != names:
            raise ValueError(f"its inputs are not this model's ({', '.join(names)})")
        for entry in description["inputs"]:
            shape = entry["shape"]
            if entry["dtype"] not in ("float32", "int64", "bool") or not all(isinstance(n, (int, str)) for n in shape):
                raise ValueError(f"input {entry['name']!r} has no usable dtype and shape")
        if not isinstance(description["outputs"][0]["name"], str):
            raise ValueError("its output has no name")
        graph_sha, manifest = description["onnx_sha256"], description["model"]["manifest_sha256"]
    if hashlib.sha256(onnx.read_bytes()).hexdigest() != graph_sha:
        raise ModelDirError(f"{onnx} changed since it was exported (its sha256 is not the one {path.name} "
                            f"records); {fix}")
    if manifest != manifest_sha256(model_dir):
        raise ModelDirError(f"{onnx} was not exported from the model directory {model_dir} as it is now (the "
                            f"directory's manifest differs from the one {path.name} records); {fix}")
    return description
