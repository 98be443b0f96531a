"""The alignment head: projections into one space and the contrastive losses."""
from __future__ import annotations

import math

import pytest
import torch

from polymodal.heads import AlignmentHead

B, D_TEXT, D_IMAGE, E = 6, 8, 12, 4


def _batch(seed: int = 0, b: int = B) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    pooled = {"caption": torch.randn(b, D_TEXT, generator=g), "photo": torch.randn(b, D_IMAGE, generator=g)}
    present = {"caption": torch.ones(b, dtype=torch.bool), "photo": torch.ones(b, dtype=torch.bool)}
    return pooled, present


@pytest.mark.parametrize("loss", ["infonce", "siglip"])
def test_unit_vectors_gradients_and_no_nan(loss):
    torch.manual_seed(0)
    head = AlignmentHead({"photo": D_IMAGE, "caption": D_TEXT}, dim=E, loss=loss)
    pooled, present = _batch()
    pooled = {k: v.requires_grad_() for k, v in pooled.items()}
    aligned = head(pooled, present)
    assert head.names == ["caption", "photo"]
    for name in head.names:
        assert aligned.embeddings[name].shape == (B, E)
        assert torch.allclose(aligned.embeddings[name].norm(dim=-1), torch.ones(B), atol=1e-5)
    value = head.loss(aligned)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())
    assert all(v.grad is not None for v in pooled.values())


def test_infonce_is_low_when_aligned_and_high_when_shuffled():
    head = AlignmentHead({"a": E, "b": E}, dim=E, temperature=0.05)
    with torch.no_grad():
        for proj in head.proj.values():
            proj.weight.copy_(torch.eye(E))
            proj.bias.zero_()
    z = torch.eye(E)  # four orthogonal rows
    present = {"a": torch.ones(E, dtype=torch.bool), "b": torch.ones(E, dtype=torch.bool)}
    matched = head.loss(head({"a": z, "b": z}, present))
    shuffled = head.loss(head({"a": z, "b": z.roll(1, dims=0)}, present))
    assert matched < 0.01 < math.log(E) < shuffled


def test_label_groups_make_duplicates_positives():
    """Two rows of one group showing the same item: with groups the loss does not push them apart."""
    head = AlignmentHead({"a": E, "b": E}, dim=E, temperature=0.05)
    with torch.no_grad():
        for proj in head.proj.values():
            proj.weight.copy_(torch.eye(E))
            proj.bias.zero_()
    z = torch.eye(E)[[0, 0, 1, 2]]  # rows 0 and 1 are the same item
    present = {"a": torch.ones(4, dtype=torch.bool), "b": torch.ones(4, dtype=torch.bool)}
    aligned = head({"a": z, "b": z}, present)
    per_row = head.loss(aligned)
    grouped = head.loss(aligned, torch.tensor([7, 7, 1, 2]))
    assert grouped < 0.01 < per_row


def test_absent_rows_do_not_change_the_loss():
    torch.manual_seed(0)
    head = AlignmentHead({"caption": D_TEXT, "photo": D_IMAGE}, dim=E)
    pooled, present = _batch()
    present["photo"][[1, 4]] = False
    base = head.loss(head(pooled, present))
    noisy = {k: v.clone() for k, v in pooled.items()}
    noisy["photo"][[1, 4]] = 1e3
    noisy["caption"][[1, 4]] = -7.0
    assert torch.allclose(base, head.loss(head(noisy, present)))
    assert (head(noisy, present).embeddings["photo"][[1, 4]] == 0).all()


def test_fewer_than_two_complete_rows_gives_zero_loss_that_still_backpropagates():
    head = AlignmentHead({"caption": D_TEXT, "photo": D_IMAGE}, dim=E, loss="siglip")
    pooled, present = _batch(b=3)
    present["photo"][:2] = False
    value = head.loss(head(pooled, present))
    assert value.item() == 0.0
    value.backward()


def test_three_inputs_average_every_pair_and_dict_order_does_not_matter():
    torch.manual_seed(0)
    dims = {"c": 3, "a": 5, "b": 4}
    head = AlignmentHead(dims, dim=E).eval()
    g = torch.Generator().manual_seed(1)
    pooled = {n: torch.randn(B, d, generator=g) for n, d in dims.items()}
    present = {n: torch.ones(B, dtype=torch.bool) for n in dims}
    forward = head.loss(head(pooled, present))
    backward = head.loss(head(dict(reversed(list(pooled.items()))), dict(reversed(list(present.items())))))
    assert torch.equal(forward, backward)
    assert head.names == ["a", "b", "c"]


def test_temperature_is_learned_or_fixed_and_capped():
    learned = AlignmentHead({"a": 2, "b": 2}, temperature=0.07)
    fixed = AlignmentHead({"a": 2, "b": 2}, temperature=0.07, learn_temperature=False)
    assert learned.logit_scale.requires_grad and not fixed.logit_scale.requires_grad
    assert learned.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        learned.logit_scale.fill_(10.0)
    assert learned.scale().item() == pytest.approx(100.0)


def test_needs_two_inputs():
    with pytest.raises(ValueError, match="at least two"):
        AlignmentHead({"a": 2})
