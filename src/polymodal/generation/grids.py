"""Sample grids: one row of pictures per condition row, one column per sample."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from polymodal.generation.model import GenerativeModel, decoding_of

__all__ = ["tile", "pick_rows", "hide", "epoch_grid", "save_epoch_grids"]


def pick_rows(targets: list[int], limit: int = 10) -> list[int]:
    """Positions of up to ``limit`` rows, one per distinct class first (in class order)."""
    first: dict[int, int] = {}
    for i, t in enumerate(targets):
        first.setdefault(int(t), i)
    picks = [first[k] for k in sorted(first)][:limit]
    return picks + [i for i in range(len(targets)) if i not in picks][: limit - len(picks)]


def hide(rows: list[tuple[dict[str, Any], Any]], name: str) -> list[tuple[dict[str, Any], Any]]:
    """The rows with input ``name`` absent (the model must make it from the rest)."""
    return [({**items, name: None}, target) for items, target in rows]


def epoch_grid(model: GenerativeModel, dataset: Any, collator: Any, per_row: int = 8,
               seed: int = 0) -> Callable[[GenerativeModel], dict[str, np.ndarray]]:
    """A function drawing the same grid of every target on each call (fixed rows, fixed noise)."""
    targets = [int(dataset[i][1]) if dataset[i][1] is not None else 0 for i in range(len(dataset))]
    positions = pick_rows(targets)
    rows = [dataset[i] for i in positions]
    noise = torch.randn(len(rows) * per_row, model.latent_dim, generator=torch.Generator().manual_seed(seed))

    def draw(current: GenerativeModel) -> dict[str, np.ndarray]:
        out = {}
        for name in current.targets:
            batch = collator([r for r in hide(rows, name) for _ in range(per_row)])
            device = next(current.parameters()).device
            batch = _to(batch, device)
            with torch.no_grad():
                made = current.generate(batch, name, noise.to(device)).cpu()
            pre = collator.preprocessors[name]
            preview = decoding_of(pre).preview
            pictures = [[preview(pre, made[r * per_row + k]) for k in range(per_row)] for r in range(len(rows))]
            out[name] = tile(pictures)
        return out

    return draw


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def tile(pictures: list[list[np.ndarray]], pad: int = 2) -> np.ndarray:
    """Rows of equally sized pictures as one uint8 image (grey or RGB), ``pad`` pixels apart."""
    first = pictures[0][0]
    h, w = first.shape[:2]
    rgb = any(p.ndim == 3 for row in pictures for p in row)
    cols = max(len(row) for row in pictures)
    canvas = np.full(((h + pad) * len(pictures) + pad, (w + pad) * cols + pad, *((3,) if rgb else ())), 255, np.uint8)
    for r, row in enumerate(pictures):
        for c, p in enumerate(row):
            if rgb and p.ndim == 2:
                p = np.repeat(p[:, :, None], 3, axis=2)
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            canvas[y:y + h, x:x + w] = p[:h, :w]
    return canvas


def save_epoch_grids(grids: list[tuple[int, np.ndarray]], path: Path, most: int = 8) -> Path:
    """The sample grids of up to ``most`` epochs (the first, evenly spaced ones, the last)
    side by side, each captioned with its epoch, as one PNG."""
    from PIL import Image, ImageDraw

    if len(grids) > most:
        picks = sorted({round(i * (len(grids) - 1) / (most - 1)) for i in range(most)})
        grids = [grids[i] for i in picks]
    pictures = [np.repeat(p[:, :, None], 3, axis=2) if p.ndim == 2 else p for _, p in grids]
    height = max(p.shape[0] for p in pictures)
    caption = 14
    canvas = Image.new("RGB", (sum(p.shape[1] + 6 for p in pictures), height + caption), "white")
    draw, x = ImageDraw.Draw(canvas), 0
    for (epoch, _), picture in zip(grids, pictures):
        canvas.paste(Image.fromarray(picture), (x, caption))
        draw.text((x + 2, 1), f"epoch {epoch}", fill="black")
        x += picture.shape[1] + 6
    canvas.save(path)
    return path
