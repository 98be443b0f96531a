"""The network a fitted model runs after collation, as one module over a flat list of tensors.

``FittedModel.forward`` collates each batch into ``{input: {key: tensor}}`` and ``present
[B, M]``, then runs encoders → fusion → head → the task's read-out. ``ExportedNetwork`` runs
the same on the tensors in the order of a ``Signature``: what an ONNX graph takes. Each
encoder runs on the whole batch and its absent rows are zeroed after (``zero_absent``), so
the graph has no branch on which rows are present; in eval mode that gives the rows what
``encode_present`` gives them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from polymodal.encoders.presence import zero_absent
from polymodal.errors import ExportError

__all__ = ["TensorSpec", "Signature", "signature", "ExportedNetwork", "EncoderProbe", "store_free"]

_DTYPES = {torch.float32: "float32", torch.int64: "int64", torch.bool: "bool"}
_NUMPY = {"float32": np.float32, "int64": np.int64, "bool": np.bool_}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input: ``input`` / ``key`` of the collated batch (both None for ``present``).

    ``shape`` holds ints for fixed axes and names for dynamic ones (``"batch"``,
    ``"<input>.tokens"``); ``absent``: the shape of an all-absent batch of two rows.
    """

    name: str
    input: str | None
    key: str | None
    dtype: str
    shape: tuple[int | str, ...]
    absent: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Signature:
    """The graph's inputs: every collated tensor of every input (sorted), then ``present``."""

    tensors: tuple[TensorSpec, ...]
    names: tuple[str, ...]  # the model inputs, sorted: the M axis of ``present``

    def flat(self, batch: Mapping[str, Any]) -> list[torch.Tensor]:
        """A collated batch's tensors in graph order."""
        return [batch["present"] if s.input is None else batch["inputs"][s.input][s.key] for s in self.tensors]

    def batch(self, tensors: Sequence[torch.Tensor]) -> dict[str, Any]:
        """The collated batch that ``flat`` came from (``inputs`` and ``present``)."""
        inputs: dict[str, dict[str, torch.Tensor]] = {n: {} for n in self.names}
        for spec, tensor in zip(self.tensors, tensors):
            if spec.input is not None:
                inputs[spec.input][spec.key] = tensor
        return {"inputs": inputs, "present": tensors[-1]}

    def feeds(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """onnxruntime's inputs for a collated batch.

        Raises:
            ExportError: a tensor whose fixed axes differ from the graph's.
        """
        feeds = {}
        for spec, tensor in zip(self.tensors, self.flat(batch)):
            fixed = [(a, n) for a, n in enumerate(spec.shape) if isinstance(n, int)]
            if tensor.dim() != len(spec.shape) or any(tensor.shape[a] != n for a, n in fixed):
                raise ExportError(
                    f"input {spec.input or 'present'!r}: batch tensor {spec.key or 'present'} has shape "
                    f"{list(tensor.shape)}, but the exported graph takes {list(spec.shape)}; a size that varies "
                    "from batch to batch must be named by the preprocessor's dynamic_axes(); export again")
            feeds[spec.name] = np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=_NUMPY[spec.dtype])
        return feeds

    def example(self, rows: int, extra: int, seed: int) -> list[torch.Tensor]:
        """Made-up tensors of the signature, ``rows`` long and ``extra`` longer along dynamic axes
        than an all-absent batch: floats drawn from N(0, 1), masks True up to a length that grows
        with the row, ids 0, and the second row's first input absent."""
        generator = torch.Generator().manual_seed(seed)
        out = []
        for spec in self.tensors:
            shape = [rows if n == "batch" else spec.absent[a] + extra if isinstance(n, str) else n
                     for a, n in enumerate(spec.shape)]
            if spec.dtype == "float32":
                out.append(torch.randn(shape, generator=generator))
            elif spec.dtype == "int64":
                out.append(torch.zeros(shape, dtype=torch.long))
            elif spec.input is None or not any(isinstance(n, str) for n in spec.shape[1:]):
                out.append(torch.ones(shape, dtype=torch.bool))
            else:  # a mask along a dynamic axis: row i real up to a length of its own
                axis = next(a for a, n in enumerate(spec.shape) if a and isinstance(n, str))
                ends = torch.linspace(1, shape[axis], rows).round().long()  # [B]
                positions = torch.arange(shape[axis]).view([-1 if a == axis else 1 for a in range(len(shape))])
                out.append((positions < ends.view(-1, *[1] * (len(shape) - 1))).expand(shape).clone())
        if rows > 1:
            out[-1][1, 0] = False  # present [B, M]: one absent input
        return out


def signature(preprocessors: Mapping[str, Any]) -> Signature:
    """The graph inputs of a model with these (fitted) preprocessors.

    Raises:
        ExportError: a preprocessor whose batch holds something other than float32, int64 or
            bool tensors.
    """
    specs = []
    for name in sorted(preprocessors):
        pre = preprocessors[name]
        absent = pre.collate([None, None])  # the keys, dtypes and fixed sizes of its batches
        axes = pre.dynamic_axes() if hasattr(pre, "dynamic_axes") else {}
        for key in sorted(absent):
            value = absent[key]
            if not torch.is_tensor(value) or value.dtype not in _DTYPES:
                kind = str(value.dtype) if torch.is_tensor(value) else type(value).__name__
                raise ExportError(f"input {name!r} ({pre.modality}): its batches hold {key} as {kind}; an ONNX "
                                  "graph takes float32, int64 or bool tensors; keep runtime='torch' for this model")
            dims = axes.get(key, {})
            shape = ("batch", *[f"{name}.{dims[a]}" if a in dims else int(value.shape[a]) for a in range(1, value.dim())])
            specs.append(TensorSpec(f"{name}.{key}", name, key, _DTYPES[value.dtype], shape, tuple(value.shape)))
    specs.append(TensorSpec("present", None, None, "bool", ("batch", len(preprocessors)), (2, len(preprocessors))))
    return Signature(tuple(specs), tuple(sorted(preprocessors)))


def store_free(preprocessors: Mapping[str, Any]) -> dict[str, Any]:
    """The preprocessors, those of frozen cached backbones without their feature store: their
    items are then the backbone's own inputs, which the exported graph reads."""
    return {n: p.without_store() if getattr(p, "store", None) is not None else p for n, p in preprocessors.items()}


class ExportedNetwork(nn.Module):
    """Encoders → fusion → head → the task's read-out over ``signature``'s tensors.

    Args:
        model: the fitted ``MultimodalModel`` (in eval mode).
        task: its ``Task``; ``read_out`` turns the head's output into what inference keeps
            (probabilities ``[B, K]``, values ``[B]``).
    """

    def __init__(self, model: nn.Module, task: Any, signature: Signature):
        super().__init__()
        self.model, self.task, self.signature = model, task, signature

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        batch = self.signature.batch(tensors)
        present = batch["present"]  # [B, M]
        encoded = {n: zero_absent(self.model.encoders[n](batch["inputs"][n]), present[:, m])
                   for m, n in enumerate(self.model.names)}
        return self.task.read_out(self.model.head, self.model.read_out(self.model.fusion(encoded, present)))


class EncoderProbe(nn.Module):
    """One input's encoder over that input's tensors of ``signature``: ``(tokens [B, T, D],
    pooled [B, D], mask [B, T])``; exported alone to tell which part of a model does not export."""

    def __init__(self, encoder: nn.Module, signature: Signature, name: str):
        super().__init__()
        self.encoder, self.signature, self.name = encoder, signature, name

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.encoder(self.signature.batch(tensors)["inputs"][self.name])
        return out.tokens, out.pooled, out.mask
