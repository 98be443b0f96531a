"""``export_onnx``: a fitted model's network as an ONNX graph, described by a JSON file beside it.

What is exported is what ``FittedModel.forward`` runs after collation (``network.py``): the
encoders, the fusion, the head and the task's read-out, with a free batch size and free
sequence axes where the inputs have them (``Preprocessor.dynamic_axes``). Reading tables,
decoding and collating stay polymodal's; their tensors are the graph's inputs, and the JSON
(``<out>.json``) says which input, modality and preprocessor each comes from.

A frozen backbone whose features are cached is exported whole: the graph reads the backbone's
own inputs (token ids, pixels, samples), so it runs on any table without the feature store.
Nothing is written before onnxruntime has run the graph on a made-up batch of other sizes than
the traced one and agreed with PyTorch (``TOLERANCE``); a model whose graph fails or differs is
refused, naming the input (its encoder) or the fusion at fault (``trace.culprit``).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from polymodal._version import __version__
from polymodal.errors import ConfigError, ExportError, ModelDirError
from polymodal.export.network import ExportedNetwork, Signature, signature, store_free
from polymodal.export.trace import OPSET, TOLERANCE, attempt, culprit
from polymodal.fitted import FittedModel, as_fitted
from polymodal.modeldir import MANIFEST
from polymodal.tasks.base import Task

__all__ = ["export_onnx", "check_export_path", "description_path", "manifest_sha256", "FORMAT"]

FORMAT = 1  # of the JSON description


def description_path(onnx: str | Path) -> Path:
    """The JSON description beside an exported graph: ``model.onnx`` → ``model.onnx.json``."""
    onnx = Path(onnx)
    return onnx.with_name(onnx.name + ".json")


def manifest_sha256(model_dir: str | Path) -> str:
    """The sha256 of a model directory's manifest (it changes whenever one of its files does)."""
    return hashlib.sha256((Path(model_dir) / MANIFEST).read_bytes()).hexdigest()


def export_onnx(model: Any, out: str | Path, model_dir: str | Path | None = None) -> dict[str, Any]:
    """Write ``model``'s network to ``out`` and its description to ``out.json``, atomically.

    Args:
        model: a ``FittedModel`` or a fitted ``Predictor``.
        out: the ``.onnx`` file to write (replaced if it exists).
        model_dir: the model directory ``model`` was loaded from; the description records its
            manifest's sha256, so that running the graph for another directory is refused.

    Returns:
        The description: ``inputs`` (name, dtype, shape with symbolic axes, and the input, batch
        key, modality, columns and preprocessor each comes from; ``present [batch, M]``),
        ``outputs`` (``probabilities [batch, K]`` with the classes, or ``values [batch]``), and
        the check's largest difference from PyTorch.

    Raises:
        ConfigError: ``out`` does not end in ``.onnx``; onnx or onnxruntime is not installed.
        ExportError: the model predicts nothing (generation, alignment only), or one of its
            parts does not export (named, with the reason).
        ModelDirError: ``out`` cannot be written, or lies inside ``model_dir``.
    """
    fitted = as_fitted(model)
    out = check_export_path(out, model_dir)
    _check_predicts(fitted)
    preprocessors = store_free(fitted.preprocessors)
    spec = signature(preprocessors)
    network = ExportedNetwork(fitted.model.eval(), fitted.task, spec).eval()
    example, check = spec.example(rows=2, extra=2, seed=0), spec.example(rows=3, extra=4, seed=1)
    output = "probabilities" if fitted.classes is not None else "values"
    with torch.no_grad():  # what FittedModel.forward computes for the check batch
        expected = fitted.task.batch_outputs(fitted.model, spec.batch(check))
    tried = attempt(network, example, check, expected, spec, {output: {0: "batch"}}, TOLERANCE)
    if tried.graph is None:
        part = culprit(fitted.model, preprocessors, spec, example, check, tried)
        raise ExportError(f"cannot export this model to ONNX: {part}. Choose another encoder or fusion for it in "
                          "the config and fit again, or keep runtime='torch'")
    graph = tried.graph
    description = _describe(fitted, preprocessors, spec, tried.names, output, tried.worst, model_dir)
    description.update(exporter=tried.exporter, onnx_sha256=hashlib.sha256(graph).hexdigest())
    _write(out, graph)
    _write(description_path(out), json.dumps(description, indent=2).encode())
    return description


def check_export_path(out: str | Path, model_dir: str | Path | None = None) -> Path:
    """``out`` can take an exported graph: an ``.onnx`` file in a writable folder, outside ``model_dir``.

    Raises:
        ConfigError: another suffix. ModelDirError: a folder, unwritable, or inside ``model_dir``.
    """
    from polymodal.outputs import check_output_file

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"the exported graph is written as an .onnx file; got {str(out)!r}. Name one such as "
                          f"{str(out.with_suffix('.onnx'))!r}")
    if model_dir is not None and out.absolute().is_relative_to(Path(model_dir).absolute()):
        raise ModelDirError(f"cannot write {out} inside the model directory {model_dir}: the directory would no "
                            "longer load (it holds only what save wrote); write it beside it, e.g. "
                            f"{Path(model_dir).absolute().parent / 'model.onnx'}")
    return check_output_file(out, "exported graph")


def _check_predicts(fitted: FittedModel) -> None:
    """Refuse the models whose inference is not encoders → fusion → head → read-out."""
    if fitted.labels.get("targets") is not None:
        raise ExportError("cannot export this generation model to ONNX: it makes samples from random noise "
                          "through its decoders, and ONNX export covers models that predict a label "
                          "(classification, regression); generate with runtime='torch'")
    if fitted.model is None or getattr(fitted.model, "head", None) is None:
        raise ExportError("cannot export this alignment model to ONNX: it has no head that predicts a label, "
                          "only encoders into a shared space; embed and search with runtime='torch'")
    task = fitted.task
    if isinstance(fitted.schema.label, list):
        raise ExportError(f"cannot export this model of {len(fitted.schema.label)} labels to ONNX yet: its "
                          "outputs are one per label, and the graph has one output; keep runtime='torch'")
    if type(task).batch_outputs is not Task.batch_outputs:
        raise ExportError(f"cannot export this {task.name} model to ONNX: its task computes its outputs with "
                          "more than the head's read-out; keep runtime='torch'")


def _describe(fitted: FittedModel, preprocessors: Mapping[str, Any], spec: Signature, names: list[str],
              output: str, worst: float, model_dir: str | Path | None) -> dict[str, Any]:
    """What the JSON beside the graph says (see ``export_onnx``)."""
    inputs = []
    for s in spec.tensors:
        if s.name not in names:
            continue  # nothing in the network reads it (the exporter left it out)
        entry: dict[str, Any] = {"name": s.name, "dtype": s.dtype, "shape": list(s.shape)}
        if s.input is None:
            entry.update(inputs=list(spec.names), meaning="True where the row has that input (sorted names)")
        else:
            pre = preprocessors[s.input]
            entry.update(input=s.input, key=s.key, modality=pre.modality, columns=list(pre.columns),
                         preprocessor=type(pre).__name__)
        inputs.append(entry)
    out: dict[str, Any] = {"name": output, "dtype": "float32",
                           "shape": ["batch", len(fitted.classes)] if fitted.classes is not None else ["batch"]}
    if fitted.classes is not None:
        out["classes"] = [str(c) for c in fitted.classes]
    return {
        "format": FORMAT, "polymodal": __version__, "torch": torch.__version__, "opset": OPSET,
        "problem_type": fitted.schema.problem_type, "label": fitted.schema.label,
        "model": {"directory": None if model_dir is None else str(Path(model_dir).absolute()),
                  "manifest_sha256": None if model_dir is None else manifest_sha256(model_dir)},
        "inputs": inputs, "outputs": [out],
        "check": {"rows": 3, "max_abs_difference": worst, "tolerance": TOLERANCE},
    }


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` through a temporary sibling (an interrupted write leaves the old file)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelDirError(f"could not write {path}: {exc.strerror or exc}; free disk space or choose a "
                            "writable folder") from None
