"""Contract tests over the head registry: shapes, finite loss, gradients, eval determinism,
save → load → same output. Every registered head needs an entry in ``EXAMPLES``."""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

from polymodal.heads import get_head, head_names

B, D = 2, 8


def _classification() -> tuple[Any, tuple, torch.Tensor]:
    head = get_head("classification")(D, 3, hidden=4)
    return head, (torch.randn(B, D, requires_grad=True),), torch.tensor([0, 2])


def _regression() -> tuple[Any, tuple, torch.Tensor]:
    head = get_head("regression")(D, hidden=4, target_mean=5.0, target_std=2.0)
    return head, (torch.randn(B, D, requires_grad=True),), torch.tensor([4.0, 7.0])


def _late() -> tuple[Any, tuple, torch.Tensor]:
    head = get_head("late")(get_head("classification")(D, 3), ["a", "b"])
    weights = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    return head, (torch.randn(B, 2, D, requires_grad=True), weights), torch.tensor([1, 0])


def _alignment() -> tuple[Any, tuple, torch.Tensor]:
    head = get_head("alignment")({"a": D, "b": 4}, dim=4)
    present = {"a": torch.ones(B, dtype=torch.bool), "b": torch.ones(B, dtype=torch.bool)}
    pooled = {"a": torch.randn(B, D, requires_grad=True), "b": torch.randn(B, 4, requires_grad=True)}
    return head, (pooled, present), torch.arange(B)


def _multilabel() -> tuple[Any, tuple, torch.Tensor]:
    head = get_head("multilabel")(D, 3, hidden=4, pos_weight=torch.tensor([1.0, 4.0, 2.0]))
    return head, (torch.randn(B, D, requires_grad=True),), torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])


def _multioutput() -> tuple[Any, tuple, torch.Tensor]:
    heads = {"kind": get_head("classification")(D, 3), "price": get_head("regression")(D, target_mean=5.0),
             "tags": get_head("multilabel")(D, 2)}
    head = get_head("multioutput")(heads, [3, 1, 2], [1, 1, 2], [lambda t: t.long(), lambda t: t.float(),
                                                                 lambda t: t.float()],
                                   [1.0, 0.5, 1.0], ["classification", "regression", "multilabel"])
    target = torch.tensor([[2.0, 4.5, 1.0, 0.0], [0.0, 6.0, 0.0, 1.0]])  # class, value, two tags
    return head, (torch.randn(B, D, requires_grad=True),), target


EXAMPLES: dict[str, Callable[[], tuple[Any, tuple, torch.Tensor]]] = {
    "classification": _classification, "regression": _regression, "late": _late, "alignment": _alignment,
    "multilabel": _multilabel, "multioutput": _multioutput,
}


def test_every_registered_head_has_an_example():
    assert set(head_names()) <= set(EXAMPLES), "add an example for the new head to EXAMPLES"


# The first argument of each example is the input gradients must reach (a tensor, or a dict of them).


def _tensors(output: Any) -> list[torch.Tensor]:
    return list(output.embeddings.values()) if hasattr(output, "embeddings") else [output]


@pytest.mark.parametrize("name", head_names())
def test_head_contract(name):
    torch.manual_seed(0)
    head, args, target = EXAMPLES[name]()
    output = head(*args)
    assert all(t.shape[0] == B and torch.isfinite(t).all() for t in _tensors(output))
    loss = head.loss(output, target)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    first = args[0]
    grads = [v.grad for v in first.values()] if isinstance(first, dict) else [first.grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    head.eval()
    with torch.no_grad():
        a = _tensors(head(*args))
        assert all(torch.equal(x, y) for x, y in zip(a, _tensors(head(*args))))  # eval is deterministic
        again, _, _ = EXAMPLES[name]()
        again.load_state_dict(head.state_dict())
        again.eval()
        assert all(torch.allclose(x, y) for x, y in zip(a, _tensors(again(*args))))  # save → load
