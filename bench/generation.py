"""Generation benchmarks: Fashion-MNIST label → image (conditional VAE and GAN) and av-digits
audio ↔ image (the multimodal VAE), each scored by a reference classifier.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/generation.py                  # everything
    POLYMODAL_DATA=../shared/data .venv/bin/python bench/generation.py --only fashion-vae

- **fashion-vae**, **fashion-gan**: trained on ``--train-rows`` rows of the Fashion-MNIST
  training split (the first ones; all 60,000 by default), scored on the test split (10,000)
  with a CNN reference classifier trained on the same real training rows: conditional
  accuracy (a sample per test row, made from its label), CAS (a classifier of the reference's
  architecture trained on one sample per training row, scored on the real test images), and
  the Fréchet distance in the reference's feature space. **fashion-baseline**: per-class mean
  plus per-pixel Gaussian noise of the class's std, scored the same way (conditional accuracy
  and Fréchet distance).
- **av-audio2image**, **av-image2audio**: one multimodal VAE over ``image`` and ``audio`` of the
  av-digits train split; from each test clip (speakers never heard in training) an image is
  made and labelled by an image reference classifier; from each test image a clip is made and
  labelled by the av-digits audio-only classifier (the fusion bench's settings, trained once and
  kept in the work folder; ``--audio-model`` names another saved one).
- **av-image2audio-gan**: image → audio with the conditional GAN of ``examples/generate_av_gan.yaml``
  (the label teaches its image encoders, it is not a condition), scored the same way.

Every line gives the wall time. ``--figures DIR`` writes sample grids and a few WAVs there.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from polymodal import Predictor
from polymodal.data.tables import Table
from polymodal.datasets.av_digits import build_av_digits
from polymodal.datasets.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from polymodal.samples.evaluate import features, frechet_distance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fusion import AV_DIGITS  # noqa: E402  (the audio-only classifier's settings)

# The generation settings are the shipped examples' (examples/generate_{vae,gan,mvae}.yaml).

FAST = {"progress_bar": False, "precision": "auto"}
FASHION_REFERENCE = {"label": "label", "problem_type": "classification", "columns": {"image": "image"},
                     "image": {"preprocess": {"size": 28, "grayscale": True, "augment": False},
                               "encoder": {"name": "cnn", "channels": [32, 64]}},
                     "training": {"max_epochs": 4, "batch_size": 128, "learning_rate": 0.003, **FAST}}
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str) -> dict[str, Any]:
    """A shipped example config (the settings users start from), without progress bars."""
    config = yaml.safe_load((EXAMPLES / name).read_text())
    return {**config, "training": {**config["training"], **FAST}}


FASHION = {"vae": _example("generate_vae.yaml"), "gan": _example("generate_gan.yaml")}
MVAE = _example("generate_mvae.yaml")
AV_GAN = _example("generate_av_gan.yaml")
AV_ROWS = ["av-audio2image", "av-image2audio", "av-image2audio-gan"]
DIGIT_REFERENCE = {"label": "label", "problem_type": "classification",
                   "columns": {"image": "image", "audio": "ignore", "speaker": "ignore"},  # the image alone
                   "image": {"preprocess": {"size": 16, "grayscale": True},
                             "encoder": {"name": "cnn", "channels": [32, 64]}},
                   "training": {"max_epochs": 15, "batch_size": 64, "learning_rate": 0.003, **FAST}}


def fashion_tables(work: Path, train_rows: int | None) -> dict[str, Path]:
    """PNG files and ``{split}.csv`` (image, label) of Fashion-MNIST under ``work/fashion``."""
    root = work / "fashion"
    out = {}
    for split in ("train", "test"):
        images, labels = load_fashion_mnist(None, split)
        n = len(images) if split == "test" or train_rows is None else min(train_rows, len(images))
        table = root / f"{split}-{n}.csv"
        if not table.exists():
            (root / split).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                path = root / split / f"{i}.png"
                if not path.exists():
                    Image.fromarray(images[i]).save(path)
            pd.DataFrame({"image": [f"{split}/{i}.png" for i in range(n)],
                          "label": [FASHION_MNIST_CLASSES[k] for k in labels[:n]]}).to_csv(table, index=False)
        out[split] = table
    return out


def timed(what: str, fn: Any) -> Any:
    start = time.perf_counter()
    value = fn()
    print(f"  {what}: {time.perf_counter() - start:.0f} s", flush=True)
    return value


def cached(folder: Path, what: str, train: Any) -> Predictor:
    """The classifier saved in ``folder``, or trained (and saved there) when there is none."""
    if (folder / "manifest.json").is_file():
        return Predictor.load(folder)
    model = timed(what, train)
    model.save(folder)
    return model


def report(name: str, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
    keys = ("conditional_accuracy", "cas", "frechet_distance", "reference_accuracy_real", "elbo", "mse")
    shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)
    print(f"{name}: {shown}; fit {seconds:.0f} s", flush=True)
    return {"bench": name, **{k: metrics[k] for k in keys if k in metrics}, "fit_seconds": round(seconds, 1)}


def fashion_baseline(tables: dict[str, Path], reference: Predictor, work: Path) -> dict[str, Any]:
    """Per-class mean + N(0, per-pixel class std), one image per test row."""
    train = pd.read_csv(tables["train"])
    base = tables["train"].parent
    pixels = np.stack([np.asarray(Image.open(base / p), dtype=np.float64) for p in train["image"]])
    stats = {c: (pixels[train["label"] == c].mean(0), pixels[train["label"] == c].std(0)) for c in FASHION_MNIST_CLASSES}
    test = pd.read_csv(tables["test"])
    rng = np.random.default_rng(0)
    folder = work / "baseline"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, c in enumerate(test["label"]):
        mean, std = stats[c]
        image = np.clip(mean + rng.standard_normal(mean.shape) * std, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i}.png")
        paths.append(str(folder / f"{i}.png"))
    fake = pd.DataFrame({"image": paths, "label": test["label"]})
    predicted = reference.predict(fake).astype(str).to_numpy()
    real = Table(test, tables["test"].parent, str(tables["test"]))
    fd = frechet_distance(features(reference.fitted_, real), features(reference.fitted_, fake))
    return {"conditional_accuracy": float(np.mean(predicted == test["label"].to_numpy())), "frechet_distance": fd}


def _epochs(config: dict[str, Any], epochs: dict[str, Any], key: str) -> dict[str, Any]:
    """``config`` with ``max_epochs`` from ``--epochs`` when it names ``key``."""
    if key not in epochs:
        return config
    return {**config, "training": {**config["training"], "max_epochs": int(epochs[key])}}


def _audio_figures(model: Predictor, picks: pd.DataFrame, tables: dict[str, Path], work: Path, figures: Path,
                   name: str) -> None:
    """The grid of the clips made from one test image per digit, and the WAVs of 0, 3 and 7."""
    made = model.generate(Table(picks.drop(columns=["audio"]), tables["test"].parent, "test images"),
                          n=1, seed=0, target="audio", out=work / f"{name}-grid", keep_arrays=False)
    shutil.copy(made.grid, figures / f"{name}.png")
    for digit in (0, 3, 7):
        shutil.copy(work / f"{name}-grid" / made.table[made.table["row"] == digit]["audio"].iloc[0],
                    figures / f"{name}_{digit}.wav")


def av_digits(args: argparse.Namespace, only: set[str], work: Path) -> list[dict[str, Any]]:
    """The av-digits rows: the multimodal VAE (audio → image, image → audio), the GAN (image → audio)."""
    tables = build_av_digits(None, work / "av-digits")
    rows = []
    audio = None
    if only & {"av-image2audio", "av-image2audio-gan"}:
        audio_config = {**AV_DIGITS, "columns": {**AV_DIGITS["columns"], "image": "ignore"}}
        audio = Predictor.load(args.audio_model) if args.audio_model is not None else \
            cached(work / "av-digits-audio-classifier", "audio-only classifier",
                   lambda: Predictor(config=audio_config).fit(str(tables["train"]), str(tables["val"])))
    test = pd.read_csv(tables["test"])
    picks = test.groupby("label").head(1).sort_values("label")
    if "av-image2audio-gan" in only:
        start = time.perf_counter()
        gan = Predictor(config=_epochs(AV_GAN, args.epochs, "av-gan")).fit(str(tables["train"]), str(tables["val"]))
        seconds = time.perf_counter() - start
        gan.save(work / "av-gan")
        metrics = gan.evaluate_samples(str(tables["test"]), reference=audio, target="audio", cas=False)
        rows.append(report("av-image2audio-gan", metrics, seconds))
        if args.figures:
            _audio_figures(gan, picks, tables, work, args.figures, "generation_av_gan_image_to_audio")
    if not only & {"av-audio2image", "av-image2audio"}:
        return rows
    start = time.perf_counter()
    mvae = Predictor(config=_epochs(MVAE, args.epochs, "mvae")).fit(str(tables["train"]), str(tables["val"]))
    seconds = time.perf_counter() - start
    mvae.save(work / "av-mvae")
    if "av-audio2image" in only:
        ref = cached(work / "av-digits-image-classifier", "digit image classifier",
                     lambda: Predictor(config=DIGIT_REFERENCE).fit(str(tables["train"]), str(tables["val"])))
        metrics = mvae.evaluate_samples(str(tables["test"]), reference=ref, train=str(tables["train"]), target="image")
        rows.append(report("av-audio2image", metrics, seconds))
    if "av-image2audio" in only:
        metrics = mvae.evaluate_samples(str(tables["test"]), reference=audio, target="audio", cas=False)
        rows.append(report("av-image2audio", metrics, seconds))
    if args.figures:
        made = mvae.generate(Table(picks.drop(columns=["image"]), tables["test"].parent, "test clips"),
                             n=8, seed=0, target="image", out=work / "av-grid-image", keep_arrays=False)
        shutil.copy(made.grid, args.figures / "generation_av_audio_to_image.png")
        _audio_figures(mvae, picks, tables, work, args.figures, "generation_av_image_to_audio")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=None,
                        choices=["fashion-vae", "fashion-gan", "fashion-baseline", *AV_ROWS])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/polymodal-bench-generation"))
    parser.add_argument("--train-rows", type=int, default=None, help="Fashion-MNIST training rows (default all)")
    parser.add_argument("--cas-rows", type=int, default=None,
                        help="samples CAS trains on (default: one per training row, as many as the real data)")
    parser.add_argument("--audio-model", type=Path, default=None, help="a saved av-digits audio-only classifier")
    parser.add_argument("--figures", type=Path, default=None, help="write sample grids and WAVs here")
    parser.add_argument("--epochs", type=json.loads, default={},
                        help='e.g. \'{"vae": 4, "gan": 2, "mvae": 30, "av-gan": 50}\'')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    only = set(args.only or ["fashion-vae", "fashion-gan", "fashion-baseline", *AV_ROWS])
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    if only & {"fashion-vae", "fashion-gan", "fashion-baseline"}:
        tables = timed("fashion tables", lambda: fashion_tables(work, args.train_rows))
        reference = cached(work / f"fashion-reference-{tables['train'].stem}", "fashion reference classifier",
                           lambda: Predictor(config=FASHION_REFERENCE).fit(str(tables["train"])))
        print(f"fashion reference: real test accuracy {reference.evaluate(str(tables['test']))['accuracy']:.4f}", flush=True)
        if "fashion-baseline" in only:
            start = time.perf_counter()
            rows.append(report("fashion-baseline", fashion_baseline(tables, reference, work), time.perf_counter() - start))
        for kind in ("vae", "gan"):
            if f"fashion-{kind}" not in only:
                continue
            config = _epochs(FASHION[kind], args.epochs, kind)
            start = time.perf_counter()
            model = Predictor(config=config).fit(str(tables["train"]))
            seconds = time.perf_counter() - start
            model.save(work / f"fashion-{kind}")
            metrics = timed("scoring", lambda: model.evaluate_samples(str(tables["test"]), reference=reference,
                                                                        train=str(tables["train"]), cas_rows=args.cas_rows))
            rows.append(report(f"fashion-{kind}", metrics, seconds))
            if args.figures:
                grid = model.generate([{"label": c} for c in FASHION_MNIST_CLASSES], n=10, seed=0,
                                      out=work / f"fashion-{kind}-grid", keep_arrays=False).grid
                shutil.copy(grid, args.figures / f"generation_fashion_{kind}.png")
    if only & set(AV_ROWS):
        rows += av_digits(args, only, work)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
