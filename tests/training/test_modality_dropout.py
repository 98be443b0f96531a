"""Modality dropout hides whole inputs, never all of a row's."""
import torch

from polymodal.training.modality_dropout import drop_modalities


def test_never_drops_every_input_of_a_row():
    present = torch.ones(2000, 3, dtype=torch.bool)
    present[::3, 1] = False  # some rows lack an input already
    kept = drop_modalities(present, 0.9, torch.Generator().manual_seed(0))
    assert kept.any(dim=1).all()
    assert not (kept & ~present).any()  # an absent input never comes back


def test_rate_is_about_p_and_zero_is_the_identity():
    present = torch.ones(4000, 2, dtype=torch.bool)
    kept = drop_modalities(present, 0.3, torch.Generator().manual_seed(1))
    # Each input is dropped with p, except when both were drawn (p², then one is kept).
    dropped = 1 - kept.float().mean().item()
    assert abs(dropped - (0.3 - 0.3 ** 2 / 2)) < 0.02
    assert torch.equal(drop_modalities(present, 0.0), present)


def test_a_row_with_one_input_keeps_it():
    present = torch.tensor([[True, False, False], [False, False, True]])
    assert torch.equal(drop_modalities(present, 0.99, torch.Generator().manual_seed(2)), present)


def test_rows_with_nothing_stay_empty():
    present = torch.tensor([[False, False], [True, True]])
    assert not drop_modalities(present, 0.5, torch.Generator().manual_seed(3))[0].any()
