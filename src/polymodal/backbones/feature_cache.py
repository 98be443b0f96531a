"""Give frozen backbones' inputs their features: from the store, or computed once and stored.

``prepare_backbone_inputs`` runs after a table's inputs are loaded and the model is built,
before any training or prediction. For each column whose pretrained encoder is frozen and
cached, the rows that the store already held came back from ``load`` as features (hits);
the others (misses) are run through the backbone once per distinct input, stored, and
turned into features too. From then on the dataset serves features and the encoder passes
them through, so no epoch, later fit or ``predict`` runs the backbone on those inputs again.
It also reports how many texts were cut to their backbone's limit.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from typing import Any, Mapping, Protocol

import torch

from polymodal.backbones.feature_store import BackboneItem, CachedFeatures
from polymodal.backbones.preprocessor import BackbonePreprocessor
from polymodal.errors import ModelDirError
from polymodal.runtime import device_for, resolve_precision

__all__ = ["prepare_backbone_inputs"]

log = logging.getLogger("polymodal")


class _Loaded(Protocol):
    """What is read of a ``data.LoadedInputs`` (backbones come before the dataset in the flow)."""

    items: Mapping[str, list[Any]]


def prepare_backbone_inputs(model: Any, preprocessors: Mapping[str, Any], loaded: _Loaded,
                            training: Any = None, what: str = "data") -> dict[str, dict[str, int]]:
    """Fill in frozen features for ``loaded`` in place; returns ``{input: {hits, misses}}``.

    Args:
        model: the ``MultimodalModel`` (its ``encoders`` compute the misses).
        training: the ``TrainingConfig``; features are computed under bf16 autocast when
            its precision resolves to bf16, else in float32.
        what: names the table in log messages.
    """
    precision, device = "32", "cpu"
    if training is not None:
        precision = resolve_precision(training.precision, training.accelerator)
        device = device_for(training.accelerator)
    stats = {}
    for name in sorted(preprocessors):
        pre = preprocessors[name]
        if not isinstance(pre, BackbonePreprocessor):
            continue
        items = loaded.items[name]
        _report_truncated(pre, items, what)
        encoder = model.encoders[name]
        if not getattr(encoder, "frozen", False) or pre.cache == "off":
            continue
        pending = [i for i, it in enumerate(items) if it is not None and it.features is None]
        present = sum(it is not None for it in items)
        if pending:
            _check_weights(pre, encoder)
            with _computing(pre):  # the processes of a DDP run compute each input once
                pending = _stored_meanwhile(pre, items, pending)
                if pending:
                    _compute(pre, encoder, items, pending, precision, device)
        stats[name] = {"hits": present - len(pending), "misses": len(pending)}
        where = pre.store.root if pre.store is not None else "memory only"
        log.info("feature cache for '%s' (frozen %s) on %s: %d hits, %d misses (%s)",
                 name, pre.backbone, what, present - len(pending), len(pending), where)
    return stats


def _computing(pre: BackbonePreprocessor) -> Any:
    """A lock on the store's folder while misses are computed: of several processes
    sharing the cache (a DDP run, parallel jobs), one computes and the others then read."""
    if pre.store is None:
        return contextlib.nullcontext()
    from filelock import FileLock

    try:
        pre.store.folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable cache: each process computes for itself (put() says so)
        return contextlib.nullcontext()
    return FileLock(str(pre.store.folder / ".computing.lock"))


def _stored_meanwhile(pre: BackbonePreprocessor, items: list[BackboneItem | None],
                      pending: list[int]) -> list[int]:
    """Fill in what another process stored while this one waited; the rows still missing."""
    if pre.store is None:
        return pending
    missing = []
    for i in pending:
        hit = pre.store.get(items[i].key) if items[i].key is not None else None
        if hit is None:
            missing.append(i)
        else:
            items[i] = BackboneItem(key=items[i].key, features=hit[0], truncated=hit[1])
    return missing


def _compute(pre: BackbonePreprocessor, encoder: torch.nn.Module, items: list[BackboneItem | None],
             pending: list[int], precision: str, device: str = "cpu") -> None:
    """Run the backbone once per distinct pending input; store and assign the features."""
    def ident(i: int) -> Any:  # rows with the same content key share one computation
        return items[i].key if items[i].key is not None else ("row", i)

    first: dict[Any, int] = {}  # identity -> first row holding it
    for i in pending:
        first.setdefault(ident(i), i)
    rows = list(first.values())
    if pre.sort_by_length:  # similar lengths together: less padding
        rows.sort(key=lambda i: len(items[i].value))
    start = time.perf_counter()
    log.info("computing frozen %s features of %d input(s) with %r ...", pre.modality, len(rows), pre.backbone)
    size = pre.feature_batch
    autocast = (torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    was_training = encoder.training
    home = next(encoder.parameters(), torch.empty(0)).device  # a lazily loaded backbone has none
    encoder.eval().to(device)
    computed: dict[Any, CachedFeatures] = {}
    try:
        for begin in range(0, len(rows), size):
            chunk = rows[begin: begin + size]
            batch = {k: v.to(device) for k, v in pre.collate([items[i] for i in chunk]).items()}
            with torch.no_grad(), autocast:
                out = encoder.features(batch)
            for j, i in enumerate(chunk):
                tokens = out.tokens[j][out.mask[j]].to("cpu", torch.float16) if pre.cache == "tokens" else None
                features = CachedFeatures(out.pooled[j].to("cpu", torch.float32).clone(), tokens)  # [D], [T_j, D]
                computed[ident(i)] = features
                if items[i].key is not None and pre.store is not None:
                    pre.store.put(items[i].key, features, items[i].truncated)
    finally:
        encoder.to(home).train(was_training)
    for i in pending:
        item = items[i]
        items[i] = BackboneItem(key=item.key, features=computed[ident(i)], truncated=item.truncated)
    log.info("computed %d feature vector(s) in %.1fs", len(rows), time.perf_counter() - start)


def _weights_digest(module: torch.nn.Module) -> str:
    """A cheap digest of a module's weights: every name and shape, and four tensors' bytes."""
    state = module.state_dict()
    names = list(state)
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}:{tuple(state[name].shape)};".encode())
    for name in sorted({names[0], names[len(names) // 3], names[2 * len(names) // 3], names[-1]} if names else ()):
        digest.update(state[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_weights(pre: BackbonePreprocessor, encoder: torch.nn.Module) -> None:
    """Features go into a store keyed by the pretrained weights: never compute them with others."""
    digest = _weights_digest(encoder.tower())
    if pre.weights_digest_ is None and not pre.saved_:
        pre.weights_digest_ = digest  # weights just read from the backbone's own files
    elif pre.weights_digest_ != digest:
        raise ModelDirError(
            f"input '{pre.name}': the frozen backbone {pre.backbone!r} does not hold its pretrained "
            f"weights (its source folder {pre.source_} is gone or changed), so its features cannot be "
            f"computed; start the fit again without resuming, or load a saved model directory"
        )


def _report_truncated(pre: BackbonePreprocessor, items: list[BackboneItem | None], what: str) -> None:
    cut = sum(1 for it in items if it is not None and it.truncated)
    if cut:
        total = sum(it is not None for it in items)
        log.warning("column '%s' in %s: %d of %d texts are longer than %d tokens (backbone %r) and "
                    "were truncated; raise preprocess.max_length up to the backbone's limit, or "
                    "shorten or split those texts", pre.columns[0], what, cut, total,
                    getattr(pre, "max_length_", 0), pre.backbone)
