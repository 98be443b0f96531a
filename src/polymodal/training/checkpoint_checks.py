"""Checks that a training checkpoint read back from disk is one Lightning can resume from.

A checkpoint file is untrusted input: it may have been damaged or edited. Rather than let
Lightning fail deep inside ``trainer.fit`` (an AttributeError, a size mismatch), its tree is
checked up front (``check_state``) and against the model and optimizers about to be trained
(``check_fits``, ``check_optimizers``);
every problem is a ``ModelDirError`` that names the file.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import torch

from polymodal.errors import ModelDirError

__all__ = ["check_state", "check_fits", "check_optimizers"]


def _fail(path: Path, problem: str) -> ModelDirError:
    return ModelDirError(f"checkpoint {path} is damaged: {problem}; drop --resume (or delete its folder) "
                         "to start the run over")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_state(state: Any, path: Path) -> None:
    """The shape of a Lightning checkpoint: counters, weights, loops, callbacks, optimizers.

    Raises:
        ModelDirError: naming ``path`` and the first part that is not as Lightning writes it.
    """
    if not isinstance(state, dict):
        raise _fail(path, f"expected an object at the top, got {type(state).__name__}")
    for key in ("epoch", "global_step"):
        if not _is_int(state.get(key)) or state[key] < 0:
            raise _fail(path, f"{key!r} must be a whole number >= 0, got {state.get(key)!r}")
    weights = state.get("state_dict")
    if not isinstance(weights, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in weights.items()):
        raise _fail(path, "'state_dict' must map parameter names to tensors")
    for key in ("loops", "callbacks"):
        part = state.get(key, {})
        if not isinstance(part, dict) or not all(isinstance(v, dict) for v in part.values()):
            raise _fail(path, f"{key!r} must be an object of objects")
    optimizers = state.get("optimizer_states", [])
    if not isinstance(optimizers, list):
        raise _fail(path, "'optimizer_states' must be a list")
    for n, opt in enumerate(optimizers):
        where = f"optimizer_states[{n}]"
        if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) or not isinstance(
                opt.get("param_groups"), list):
            raise _fail(path, f"{where} must be an object with 'state' (object) and 'param_groups' (list)")
        ids: list[Any] = []
        for group in opt["param_groups"]:
            if not isinstance(group, dict) or not isinstance(group.get("params"), list):
                raise _fail(path, f"{where}: every param group must be an object with a 'params' list")
            ids += group["params"]
        if not all(_is_int(i) for i in ids) or len(set(ids)) != len(ids):
            raise _fail(path, f"{where}: parameter ids must be distinct whole numbers")
        if not all(k in ids and isinstance(v, dict) for k, v in opt["state"].items()):
            raise _fail(path, f"{where}: 'state' names parameters that no param group holds")
    schedulers = state.get("lr_schedulers", [])
    if not isinstance(schedulers, list) or not all(isinstance(s, dict) for s in schedulers):
        raise _fail(path, "'lr_schedulers' must be a list of objects")


def check_fits(state: Mapping[str, Any], path: Path, module: torch.nn.Module) -> None:
    """The checkpoint's weights fit ``module``: the same names and shapes.

    Raises:
        ModelDirError: a weight missing, unexpected or of another shape.
    """
    own = module.state_dict()
    saved = state["state_dict"]
    missing, extra = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
    wrong = [k for k in own if k in saved and tuple(saved[k].shape) != tuple(own[k].shape)]
    if missing or extra or wrong:
        first = (missing and f"missing weight {missing[0]!r}") or (extra and f"unexpected weight {extra[0]!r}") \
            or f"weight {wrong[0]!r} has shape {list(saved[wrong[0]].shape)}, the model {list(own[wrong[0]].shape)}"
        raise _fail(path, f"its weights do not fit this model ({first})")


def check_optimizers(state: Mapping[str, Any], path: Path, optimizers: list[torch.optim.Optimizer]) -> None:
    """The checkpoint's optimizer states load into fresh optimizers over the same parameters.

    Raises:
        ModelDirError: an optimizer state that ``torch.optim`` refuses (other groups, sizes, ...).
    """
    saved = state.get("optimizer_states", [])
    if len(saved) != len(optimizers):
        raise _fail(path, f"it holds {len(saved)} optimizer states, the run has {len(optimizers)} optimizers")
    for n, (opt, saved_opt) in enumerate(zip(optimizers, saved)):
        fresh = type(opt)([{**g, "params": list(g["params"])} for g in opt.param_groups])  # same tensors
        try:
            fresh.load_state_dict(copy.deepcopy(saved_opt))
        except Exception as exc:  # noqa: BLE001 - torch raises ValueError, KeyError, TypeError, ...
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise _fail(path, f"optimizer_states[{n}] does not fit this model's optimizer ({reason})") from None
