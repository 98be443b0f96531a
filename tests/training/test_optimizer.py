"""The training optimiser: AdamW fused where torch can, and clipping that works with it."""
from __future__ import annotations

import pytest
import torch

from polymodal.training.param_groups import adamw, clip_norm, match_param_layouts, param_groups


def test_adamw_is_fused_on_cpu_and_steps_like_the_plain_one():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3))
    twin.load_state_dict(model.state_dict())
    fused = adamw(param_groups(model, 1e-2, 0.01), lr=1e-2)
    plain = torch.optim.AdamW(param_groups(twin, 1e-2, 0.01), lr=1e-2, foreach=False)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    for _ in range(5):
        for m, opt in ((model, fused), (twin, plain)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_adamw_is_not_fused_where_torch_cannot_fuse():
    meta = torch.nn.Parameter(torch.zeros(2, device="meta"))
    assert not adamw([meta], lr=1e-3).defaults["fused"]


def test_clip_norm_bounds_the_total_gradient_norm():
    layer = torch.nn.Linear(4, 4)
    opt = adamw(layer.parameters(), lr=1e-3)
    (layer(torch.randn(16, 4)) * 100).sum().backward()
    before = torch.cat([p.grad.flatten() for p in layer.parameters()]).norm()
    assert before > 1.0
    clip_norm(opt, 1.0)
    after = torch.cat([p.grad.flatten() for p in layer.parameters()]).norm()
    assert after.item() == pytest.approx(1.0, rel=1e-4)
    clip_norm(opt, None)  # no clipping asked: nothing changes
    assert torch.cat([p.grad.flatten() for p in layer.parameters()]).norm().item() == pytest.approx(1.0, rel=1e-4)


def test_restored_moments_take_a_channels_last_weights_layout():
    def run(restore_at: int | None) -> torch.Tensor:
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(3, 8, 3).to(memory_format=torch.channels_last)
        opt = adamw(conv.parameters(), lr=1e-2)
        x = torch.randn(4, 3, 8, 8).to(memory_format=torch.channels_last)
        for step in range(6):
            if step == restore_at:  # as a checkpoint stores them: contiguous copies
                state = opt.state_dict()
                state["state"] = {k: {n: v.contiguous().clone() for n, v in s.items()} for k, s in state["state"].items()}
                opt = adamw(conv.parameters(), lr=1e-2)
                opt.load_state_dict(state)
                assert opt.state[conv.weight]["exp_avg"].stride() != conv.weight.stride()
                match_param_layouts(opt)
                assert opt.state[conv.weight]["exp_avg"].stride() == conv.weight.stride()
            opt.zero_grad()
            conv(x).square().mean().backward()
            opt.step()
        return conv.weight.detach().clone()

    assert torch.equal(run(None), run(3))  # without the match, the fused step pairs the wrong moments
