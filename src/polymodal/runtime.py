"""Where and at which precision tensors run: a neutral leaf that fit and the backbones share."""
from __future__ import annotations

import torch

__all__ = ["device_for", "resolve_precision"]


def _wants_cuda(accelerator: str) -> bool:
    return accelerator in ("auto", "gpu") and torch.cuda.is_available()


def device_for(accelerator: str) -> str:
    """``"cuda"`` when it is available and ``accelerator`` asks for it (auto/gpu), else ``"cpu"``."""
    return "cuda" if _wants_cuda(accelerator) else "cpu"


def resolve_precision(requested: str, accelerator: str) -> str:
    """``"bf16"`` where bf16 matmuls are fast (CUDA with bf16, CPUs with AVX512-BF16/AMX)."""
    if requested != "auto":
        return requested
    if _wants_cuda(accelerator):
        return "bf16" if torch.cuda.is_bf16_supported() else "32"
    fast = [getattr(torch.cpu, f, lambda: False) for f in
            ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return "bf16" if any(f() for f in fast) else "32"
