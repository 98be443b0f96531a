"""A plain-torch conditional GAN on Fashion-MNIST, for scale next to polymodal's (bench/generation.py).

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/gan_plain.py '{"width": 32, "seconds": 480}'

polymodal's own image decoder and critic (``ImageDecoder``, ``ImageCritic``), the class as a
32-wide embedding concatenated to z (64), a projection critic (plus an AC-GAN term with
``"aux": w``; ``"proj": 0`` drops the projection), hinge loss, Adam (0, 0.9), an EMA of the
generator (0.999), batches of 64, fp32, trained for ``seconds`` of wall time. Every minute it
prints the conditional accuracy of 2,000 samples (EMA and raw generator) under a plain-torch CNN
trained 2 epochs on the real images (cached in ``--reference``, /tmp/polymodal-gan-plain-ref.pt
by default); at the end the conditional accuracy on the 10,000 test labels, CAS (the same CNN
trained 2 epochs on one sample per label of the first 20,000 training rows, scored on the real
test images) and the within-class pixel standard deviation of samples and of real test images
(how varied a class's samples are). Settings are a JSON object: width, z, batch, seconds, aux,
proj, lr_g, lr_d, dsteps, threads.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from polymodal.datasets.fashion_mnist import load_fashion_mnist
from polymodal.modalities.image.decoder import ImageCritic, ImageDecoder

DEFAULTS = {"width": 32, "z": 64, "batch": 64, "seconds": 480, "aux": 0.0, "proj": 1.0,
            "lr_g": 2e-4, "lr_d": 2e-4, "dsteps": 1, "threads": 2}
EMBED = 32  # width of the class embedding the generator reads


class Classifier(nn.Module):
    """The yardstick CNN: two conv blocks, a 128-wide hidden layer, 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.out = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 28, 28] -> [B, 10]
        return self.out(self.features(x))


class Generator(nn.Module):
    def __init__(self, z: int, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, EMBED)
        self.decoder = ImageDecoder(z + EMBED, in_channels=1, image_size=28, width=width)

    def forward(self, noise: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([noise, self.embed(y)], dim=1))  # [B, 1, 28, 28]


class Critic(nn.Module):
    """A projection critic ``w·h + proj <V y, h>`` with class logits for the AC-GAN term."""

    def __init__(self, width: int, proj: float) -> None:
        super().__init__()
        self.body = ImageCritic(in_channels=1, image_size=28, width=width)
        h = self.body.out_dim
        self.score = spectral_norm(nn.Linear(h, 1))
        self.embed = spectral_norm(nn.Embedding(10, h))
        self.classify = nn.Linear(h, 10)
        self.proj = proj

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)  # [B, H]
        return self.score(h).squeeze(1) + self.proj * (self.embed(y) * h).sum(1), self.classify(h)


def train_classifier(x: torch.Tensor, y: torch.Tensor, epochs: int = 2) -> Classifier:
    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = order[i:i + 128]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    predicted = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float(predicted.eq(y).float().mean())


@torch.no_grad()
def sample(generator: nn.Module, y: torch.Tensor, z: int) -> torch.Tensor:
    return torch.cat([generator(torch.randn(len(y[i:i + 1000]), z), y[i:i + 1000]) for i in range(0, len(y), 1000)])


def variety(x: torch.Tensor, y: torch.Tensor) -> float:
    """The mean over classes of the per-pixel standard deviation within the class."""
    return float(np.mean([x[y == k].std(0).mean().item() for k in range(10)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="?", type=json.loads, default={}, help="a JSON object, see above")
    parser.add_argument("--reference", type=Path, default=Path("/tmp/polymodal-gan-plain-ref.pt"))
    args = parser.parse_args()
    s = {**DEFAULTS, **args.settings}
    unknown = set(s) - set(DEFAULTS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    torch.manual_seed(0)
    torch.set_num_threads(int(s["threads"]))
    train_images, train_labels = load_fashion_mnist(None, "train")
    test_images, test_labels = load_fashion_mnist(None, "test")
    mean, std = train_images.mean() / 255, train_images.std() / 255

    def pixels(images: np.ndarray) -> torch.Tensor:  # uint8 [N, 28, 28] -> [N, 1, 28, 28]
        return torch.tensor((images / 255 - mean) / std, dtype=torch.float32).unsqueeze(1)

    x, y = pixels(train_images), torch.tensor(train_labels, dtype=torch.long)
    x_test, y_test = pixels(test_images), torch.tensor(test_labels, dtype=torch.long)
    start = time.perf_counter()
    reference = Classifier()
    if args.reference.is_file():
        reference.load_state_dict(torch.load(args.reference))
        reference.eval()
    else:
        reference = train_classifier(x, y)
        torch.save(reference.state_dict(), args.reference)
    print(f"reference real test accuracy {accuracy(reference, x_test, y_test):.4f} "
          f"({time.perf_counter() - start:.0f} s)", flush=True)

    z, batch = int(s["z"]), int(s["batch"])
    g, d = Generator(z, int(s["width"])), Critic(int(s["width"]), float(s["proj"]))
    ema = AveragedModel(g, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)
    opt_g = torch.optim.Adam(g.parameters(), s["lr_g"], betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), s["lr_d"], betas=(0.0, 0.9))
    print(f"parameters: generator {sum(p.numel() for p in g.parameters()):,}, "
          f"critic {sum(p.numel() for p in d.parameters()):,}", flush=True)
    aux, step, start, report_at = float(s["aux"]), 0, time.perf_counter(), 60.0
    while time.perf_counter() - start < s["seconds"]:
        order = torch.randperm(len(x))
        for i in range(0, len(x) - batch + 1, batch):
            real, labels = x[order[i:i + batch]], y[order[i:i + batch]]
            for _ in range(int(s["dsteps"])):
                with torch.no_grad():
                    fake = g(torch.randn(batch, z), labels)
                d_real, logits = d(real, labels)
                d_fake, _ = d(fake, labels)
                loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean() + aux * F.cross_entropy(logits, labels)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            wanted = torch.randint(0, 10, (batch,))
            d_fake, logits = d(g(torch.randn(batch, z), wanted), wanted)
            loss_g = -d_fake.mean() + aux * F.cross_entropy(logits, wanted)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            ema.update_parameters(g)
            step += 1
            elapsed = time.perf_counter() - start
            if elapsed > report_at or elapsed > s["seconds"]:
                report_at += 60
                few = y_test[:2000]
                print(f"{elapsed:.0f} s, step {step} ({elapsed / step * 1000:.0f} ms/step): conditional accuracy "
                      f"EMA {accuracy(reference, sample(ema.module, few, z), few):.4f}, "
                      f"raw {accuracy(reference, sample(g, few, z), few):.4f}; "
                      f"critic loss {loss_d.item():.3f}, generator loss {loss_g.item():.3f}", flush=True)
                if elapsed > s["seconds"]:
                    break
    made = sample(ema.module, y_test, z)
    cas = train_classifier(sample(ema.module, y[:20000], z), y[:20000])
    print(f"final ({step} steps): conditional accuracy {accuracy(reference, made, y_test):.4f}, "
          f"CAS {accuracy(cas, x_test, y_test):.4f}, within-class pixel std of samples {variety(made, y_test):.3f} "
          f"(real test images {variety(x_test, y_test):.3f})", flush=True)


if __name__ == "__main__":
    main()
