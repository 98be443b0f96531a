"""ONNX export: a fitted model's network (encoders, fusion, head) as an ONNX graph, and the
onnxruntime that ``Predictor.load(dir, runtime="onnx")`` runs it with.

``export_onnx`` (``onnx.py``) traces the network that ``FittedModel.forward`` runs after
collation (``network.py``, ``trace.py``) and writes the graph and a JSON description of its
inputs and outputs; ``use_runtime`` (``runtime.py``) makes a fitted model run such a graph;
``commands.py`` is ``polymodal export``. onnx, onnxruntime and onnxscript come with the
``onnx`` extra: ``pip install 'polymodal[onnx]'``; they are imported on first use.
"""
from __future__ import annotations

from typing import Any

__all__ = ["export_onnx", "description_path", "use_runtime", "OnnxNetwork", "RUNTIMES"]


def __getattr__(name: str) -> Any:
    # `polymodal --help` imports the export command; only exporting needs torch's exporter.
    if name in ("export_onnx", "description_path"):
        from polymodal.export import onnx

        return getattr(onnx, name)
    if name in ("use_runtime", "OnnxNetwork", "RUNTIMES"):
        from polymodal.export import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'polymodal.export' has no attribute {name!r}")
