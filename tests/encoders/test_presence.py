"""encode_present: encoders see only the rows whose input is present."""
import torch
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.encoders.presence import encode_present


class _Recorder(nn.Module):
    out_dim = 4

    def __init__(self):
        super().__init__()
        self.proj, self.seen = nn.Linear(3, 4), []

    def forward(self, batch):
        self.seen.append(batch["x"].shape[0])
        tokens = self.proj(batch["x"])  # [B, T, 4]
        return EncoderOutput(tokens=tokens, pooled=tokens.mean(1), mask=torch.ones(tokens.shape[:2], dtype=torch.bool))


def test_subset_none_and_one_present_row():
    enc, x = _Recorder(), torch.randn(5, 2, 3)
    out = encode_present(enc.eval(), {"x": x}, torch.tensor([True, False, True, True, False]))
    assert enc.seen == [3]
    assert out.pooled.shape == (5, 4) and (out.pooled[[1, 4]] == 0).all() and not out.mask[[1, 4]].any()
    torch.testing.assert_close(out.pooled[0], enc({"x": x[:1]}).pooled[0])

    enc.seen.clear()
    out = encode_present(enc, {"x": x}, torch.zeros(5, dtype=torch.bool))
    assert enc.seen == [] and out.pooled.shape == (5, 4) and not out.mask.any()

    out = encode_present(enc.train(), {"x": x}, torch.tensor([False, True, False, False, False]))
    assert enc.seen == [5]  # one row cannot train BatchNorm: the whole batch runs, absent rows zeroed
    assert (out.pooled[[0, 2, 3, 4]] == 0).all() and out.mask.sum() == 2
