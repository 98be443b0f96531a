"""Generation models end to end on tiny real tables: one epoch each; shapes, seeded
reproducibility, save → load → the same samples, the CLI, and the errors a user meets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from PIL import Image

from polymodal import Predictor
from polymodal.config import load_config
from polymodal.datasets.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from polymodal.errors import ConfigError, DataError
from polymodal.samples.evaluate import frechet_distance

pytestmark = pytest.mark.usefixtures("one_thread")

TRAINING = {"max_epochs": 1, "batch_size": 16, "progress_bar": False, "precision": "32"}
IMAGE = {"preprocess": {"size": 16, "grayscale": True, "augment": False}}
AUDIO = {"preprocess": {"sample_rate": 8000, "max_seconds": 0.5, "n_mels": 16, "n_fft": 256, "hop_length": 80,
                        "win_length": 200, "cmvn": False}}


def _config(model: str, **generate) -> dict:
    return {"problem_type": "generation", "label": "label", "image": IMAGE, "training": TRAINING,
            "generate": {"target": "image", "model": model, "latent_dim": 8, "width": 8, **generate}}


@pytest.fixture(scope="module")
def fashion(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 Fashion-MNIST training images of 4 classes as PNGs, and ``train.csv`` (image, label)."""
    root = tmp_path_factory.mktemp("fashion")
    images, labels = load_fashion_mnist(data_dir, "train")
    keep = [i for i in range(400) if labels[i] < 4][:48]
    for i in keep:
        Image.fromarray(images[i]).save(root / f"{i}.png")
    pd.DataFrame({"image": [f"{i}.png" for i in keep],
                  "label": [FASHION_MNIST_CLASSES[labels[i]] for i in keep]}).to_csv(root / "train.csv", index=False)
    return root


@pytest.fixture(scope="module")
def av(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 rows pairing an FSDD clip with a digit image: ``train.csv`` (audio, image, label)."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("av")
    digits = load_digits()
    rows = []
    for k in range(32):
        digit, take = k % 4, k // 4
        index = int(np.flatnonzero(digits.target == digit)[take])
        Image.fromarray((digits.images[index] * 16).clip(0, 255).astype(np.uint8)).save(root / f"d{k}.png")
        rows.append({"audio": str(data_dir / "fsdd" / f"{digit}_george_{take}.wav"), "image": f"d{k}.png",
                     "label": digit})
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    return root


@pytest.fixture(scope="module")
def vae(fashion: Path) -> Predictor:
    return Predictor(config=_config("vae")).fit(str(fashion / "train.csv"))


@pytest.mark.parametrize("model, extra", [("vae", {}), ("gan", {}), ("gan", {"discriminator": "auxiliary",
                                                                             "gan_loss": "nonsaturating"}),
                                          ("gan", {"mode_seeking": 1.0})])
def test_label_to_image_fits_samples_repeatably_and_survives_save(fashion: Path, tmp_path: Path, model, extra):
    predictor = Predictor(config=_config(model, **extra)).fit(str(fashion / "train.csv"))
    conditions = [{"label": "Trouser"}, {"label": "Dress"}]
    first = predictor.generate(conditions, n=3, seed=1)
    assert first.arrays.shape == (6, 1, 16, 16) and np.isfinite(first.arrays).all()
    assert list(first.table["label"]) == ["Trouser"] * 3 + ["Dress"] * 3
    again = predictor.generate(conditions, n=3, seed=1)
    np.testing.assert_array_equal(first.arrays, again.arrays)
    assert not np.allclose(first.arrays, predictor.generate(conditions, n=3, seed=2).arrays)
    predictor.save(tmp_path / "m")
    loaded = Predictor.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.generate(conditions, n=3, seed=1).arrays, first.arrays, atol=1e-5)
    assert (tmp_path / "m" / "plots" / "samples_image.png").is_file()  # the per-epoch sample grids
    loaded.save(tmp_path / "again")  # a loaded model cannot draw them again: a re-save keeps them
    grid = "plots/samples_image.png"
    assert (tmp_path / "again" / grid).read_bytes() == (tmp_path / "m" / grid).read_bytes()
    assert (tmp_path / "again" / "plots" / "curves.png").is_file()


def _training_batch(predictor: Predictor, table: Path) -> dict:
    """The first 8 rows of ``table`` collated as training sees them (with their labels)."""
    from polymodal.data import Collator, MultimodalDataset

    fitted = predictor.fitted_
    loaded, target = fitted.load_inputs(fitted.read_table(str(table)), labelled=True)
    return Collator(fitted.preprocessors)([MultimodalDataset(loaded, fitted.preprocessors, target)[i] for i in range(8)])


def test_mode_seeking_penalises_a_generator_that_ignores_its_noise(fashion: Path):
    predictor = Predictor(config=_config("gan", mode_seeking=1.0)).fit(str(fashion / "train.csv"))
    history = predictor.fitted_.history
    assert np.isfinite(history["train_g_mode_seeking"]).all() and (history["train_g_mode_seeking"] > 0).all()
    model, batch = predictor.fitted_.model, _training_batch(predictor, fashion / "train.csv")
    noise = torch.randn(8, model.latent_dim)
    model.eval()
    _, uses = model.generator_loss(batch, noise)
    decoder = model.generator.decoder
    z = model.latent_dim
    with torch.no_grad():
        decoder.project.weight[:, :z] = 0.0  # the first layer drops the noise: one sample per condition
    _, ignores = model.generator_loss(batch, noise)
    assert ignores["g_mode_seeking"] > 1e4 > uses["g_mode_seeking"]
    with pytest.raises(ConfigError, match="mode_seeking is for model: gan"):
        load_config(_config("vae", mode_seeking=1.0))


def test_gan_label_weight_teaches_both_condition_encoders_the_label(av: Path, fashion: Path):
    config = {"problem_type": "generation", "label": "label", "image": IMAGE, "audio": AUDIO, "training": TRAINING,
              "generate": {"model": "gan", "target": "audio", "conditions": ["image"], "latent_dim": 8, "width": 8,
                           "label_weight": 2.0}}
    predictor = Predictor(config=config).fit(str(av / "train.csv"))
    history = predictor.fitted_.history
    for part in ("train_g_label_nll", "train_d_label_nll"):
        assert np.isfinite(history[part]).all() and (history[part] > 0).all()
    model, batch = predictor.fitted_.model, _training_batch(predictor, av / "train.csv")
    noise = torch.randn(8, model.latent_dim)
    model.eval()
    weighted, parts = model.generator_loss(batch, noise)
    critic, critic_parts = model.critic_loss(batch, noise)
    model.label_weight = 0.0
    plain, _ = model.generator_loss(batch, noise)
    plain_critic, _ = model.critic_loss(batch, noise)
    assert (weighted - plain).item() == pytest.approx(2.0 * parts["g_label_nll"].item(), rel=1e-4)
    assert (critic - plain_critic).item() == pytest.approx(2.0 * critic_parts["d_label_nll"].item(), rel=1e-4)
    with pytest.raises(ConfigError, match="is itself a condition"):  # label → image: nothing to learn
        Predictor(config=_config("gan", label_weight=1.0)).fit(str(fashion / "train.csv"))


def test_samples_follow_their_condition_row_not_the_batch(vae: Predictor):
    predictor = vae
    alone = predictor.generate({"label": "Dress"}, n=2, seed=0).arrays
    together = predictor.generate([{"label": "Dress"}, {"label": "Trouser"}], n=2, seed=0, batch_rows=1).arrays
    np.testing.assert_allclose(together[:2], alone, atol=1e-5)


def test_vae_scores_are_a_likelihood(vae: Predictor):
    history = vae.fitted_.history
    assert (history["train_nll"] > 0).all() and (history["train_kl"] > 0).all()  # the target reached the loss
    metrics = vae.fitted_.metrics
    assert metrics["elbo"] == pytest.approx(-(metrics["nll"] + metrics["kl"]), rel=1e-4)
    assert metrics["mse"] > 0 and metrics["kl"] >= 0


def test_multimodal_vae_makes_either_column_from_the_other(av: Path, tmp_path: Path):
    config = {"problem_type": "generation", "label": "label", "image": IMAGE, "audio": AUDIO, "training": TRAINING,
              "generate": {"model": "mvae", "columns": ["image", "audio"], "conditions": [], "latent_dim": 8,
                           "width": 8}}
    frame = pd.read_csv(av / "train.csv")
    frame.loc[:3, "image"] = None  # rows with a modality missing still train
    frame.to_csv(av / "partial.csv", index=False)
    predictor = Predictor(config=config).fit(str(av / "partial.csv"))
    images = predictor.generate(str(av / "train.csv"), target="image", seed=0)
    assert images.arrays.shape == (32, 1, 16, 16)
    clips = predictor.generate(str(av / "train.csv"), target="audio", seed=0, out=tmp_path / "s")
    frames = 1 + 4000 // 80
    assert clips.arrays.shape == (32, frames, 16)
    info = sf.info(str(tmp_path / "s" / clips.table["audio"].iloc[0]))
    assert info.samplerate == 8000 and info.subtype == "PCM_16"
    predictor.save(tmp_path / "m")
    again = Predictor.load(tmp_path / "m").generate(str(av / "train.csv"), target="image", seed=0)
    np.testing.assert_allclose(again.arrays, images.arrays, atol=1e-5)
    with pytest.raises(ConfigError, match="name the one to generate"):
        predictor.generate(str(av / "train.csv"))
    _check_likelihood_scaling(predictor.fitted_.model)


def _check_likelihood_scaling(model) -> None:
    """Training weighs each column by the largest column's values over its own; eval does not."""
    stub = {"inputs": {"image": {"pixel_values": torch.zeros(2, 1, 16, 16)},
                       "audio": {"features": torch.zeros(2, 51, 16), "mask": torch.ones(2, 51, dtype=torch.bool)}}}
    decoders = model.decoders
    sizes = {t: decoders[t].target(stub["inputs"][t])[0].numel() for t in ("image", "audio")}
    model.train()
    scales = model._scales(stub)
    assert scales["image"] == pytest.approx(max(sizes.values()) / sizes["image"]) and scales["image"] > 1
    assert scales["audio"] == pytest.approx(max(sizes.values()) / sizes["audio"])
    model.eval()
    assert model._scales(stub) == {"image": 1.0, "audio": 1.0}


def test_multimodal_vae_label_weight_learns_the_label_outside_the_elbo(av: Path):
    config = {"problem_type": "generation", "label": "label", "image": IMAGE, "audio": AUDIO, "training": TRAINING,
              "generate": {"model": "mvae", "columns": ["image", "audio"], "conditions": [], "latent_dim": 8,
                           "width": 8, "label_weight": 1.0}}
    predictor = Predictor(config=config).fit(str(av / "train.csv"))
    history = predictor.fitted_.history
    assert (history["train_label_nll"] > 0).all() and (history["val_label_nll"] > 0).all()
    model = predictor.fitted_.model
    assert model.label_decoder.out_features == 4  # the label's classes
    from polymodal.data import Collator, MultimodalDataset

    fitted = predictor.fitted_
    loaded, target = fitted.load_inputs(fitted.read_table(str(av / "train.csv")), labelled=True)
    batch = Collator(fitted.preprocessors)([MultimodalDataset(loaded, fitted.preprocessors, target)[i] for i in range(8)])

    def both(batch):  # the loss with and without the labels, on the same noise
        losses = []
        for b in (batch, {**batch, "target": None}):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                losses.append(model.loss(b, 1.0))
        return losses

    model.eval()
    (labelled, parts), (unlabelled, _) = both(batch)
    assert labelled.item() == pytest.approx(unlabelled.item())  # eval: the inputs' ELBO only
    assert parts["label_nll"] > 0
    model.train()
    (trained, _), (trained_unlabelled, _) = both(batch)
    assert trained.item() > trained_unlabelled.item()  # training adds the weighted label term
    model.eval()
    with pytest.raises(ConfigError, match="label_weight needs label"):
        Predictor(config={**config, "label": None}).fit(str(av / "train.csv"))
    with pytest.raises(ConfigError, match="label_weight is for model: mvae"):
        load_config(_config("vae", label_weight=1.0))


def test_cli_generate_writes_files_csv_and_grid_and_refuses_bad_conditions(fashion: Path, tmp_path: Path):
    cfg = tmp_path / "gen.yaml"
    cfg.write_text(yaml.safe_dump(_config("vae")))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True, text=True,
                              env=env, timeout=300)

    fit = cli("fit", "--train", str(fashion / "train.csv"), "--config", str(cfg), "--out", str(tmp_path / "m"))
    assert fit.returncode == 0, fit.stderr
    out = tmp_path / "samples"
    ok = cli("generate", str(tmp_path / "m"), "--condition", "label=Trouser", "--condition", "label=Dress",
             "-n", "4", "--out", str(out))
    assert ok.returncode == 0, ok.stderr
    written = pd.read_csv(out / "samples.csv")
    assert len(written) == 8 and set(written["label"]) == {"Trouser", "Dress"}
    assert all((out / p).is_file() for p in written["image"]) and (out / "grid_image.png").is_file()
    grid = Image.open(out / "grid_image.png")
    assert grid.size[1] < grid.size[0]  # 2 rows of 4 samples
    unknown = cli("generate", str(tmp_path / "m"), "--condition", "label=Sneakr", "--out", str(tmp_path / "x"))
    assert unknown.returncode == 2 and "Sneakr" in unknown.stderr and "Trouser" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    pd.DataFrame({"colour": ["red"]}).to_csv(tmp_path / "nocond.csv", index=False)
    lacking = cli("generate", str(tmp_path / "m"), "--from", str(tmp_path / "nocond.csv"), "--out", str(tmp_path / "y"))
    assert lacking.returncode == 2 and "missing conditioning column" in lacking.stderr and "'label'" in lacking.stderr
    both = cli("generate", str(tmp_path / "m"), "--out", str(tmp_path / "z"))
    assert both.returncode == 2 and "--condition" in both.stderr
    no_reference = cli("evaluate", str(tmp_path / "m"), "--data", str(fashion / "train.csv"),
                       "--reference", str(tmp_path / "nowhere"))
    assert no_reference.returncode == 2 and "nowhere" in no_reference.stderr and "Traceback" not in no_reference.stderr
    predict = cli("predict", str(tmp_path / "m"), "--data", str(fashion / "train.csv"), "--out", str(tmp_path / "p.csv"))
    assert predict.returncode == 2 and "generate" in predict.stderr


def test_many_samples_are_made_in_batches(vae: Predictor, tmp_path: Path):
    made = vae.generate({"label": "Dress"}, n=300, seed=0, out=tmp_path / "many", keep_arrays=False)
    assert made.arrays is None and len(list((tmp_path / "many" / "image").glob("*.png"))) == 300


def test_generation_config_errors_name_the_fix(fashion: Path):
    with pytest.raises(ConfigError, match="needs generate.target"):
        load_config({"problem_type": "generation", "generate": {"model": "vae"}})
    with pytest.raises(ConfigError, match="two or more distinct columns"):
        load_config({"problem_type": "generation", "generate": {"model": "mvae", "columns": ["image"]}})
    with pytest.raises(ConfigError, match="needs a generate: section"):
        load_config({"problem_type": "generation"})
    with pytest.raises(ConfigError, match="cannot be generated"):
        Predictor(config=_config("vae", target="label")).fit(str(fashion / "train.csv"))
    with pytest.raises(ConfigError, match="auxiliary needs label"):
        config = _config("gan", discriminator="auxiliary")
        del config["label"]
        Predictor(config=config).fit(str(fashion / "train.csv"))
    with pytest.raises(DataError, match="not in the table"):
        Predictor(config=_config("vae", target="photo")).fit(str(fashion / "train.csv"))


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 2.0) == pytest.approx(16.0, rel=1e-3)  # |shift|² over 4 dims


def test_evaluate_scores_samples_with_a_reference_classifier(vae: Predictor, fashion: Path):
    reference = Predictor(config={"label": "label", "image": IMAGE, "training": TRAINING}).fit(str(fashion / "train.csv"))
    metrics = vae.evaluate_samples(str(fashion / "train.csv"), reference=reference, train=str(fashion / "train.csv"))
    for key in ("conditional_accuracy", "cas", "reference_accuracy_real"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["frechet_distance"] >= 0 and metrics["n_scored"] == 48 and metrics["cas_train_rows"] == 48
    assert "elbo" in metrics  # a VAE's test likelihood comes with it
    with pytest.raises(ConfigError, match="reference classifier"):
        vae.evaluate_samples(str(fashion / "train.csv"))


def test_bf16_training_gives_finite_samples(fashion: Path):
    config = _config("vae")
    config["training"] = {**TRAINING, "precision": "bf16"}
    predictor = Predictor(config=config).fit(str(fashion / "train.csv"))
    assert predictor.fitted_.fit_info["precision"] == "bf16"
    assert np.isfinite(predictor.generate({"label": "Dress"}, n=2).arrays).all()


def test_unreadable_condition_files_follow_on_bad_input(av: Path, tmp_path: Path):
    config = {"problem_type": "generation", "label": "label", "image": IMAGE, "audio": AUDIO, "training": TRAINING,
              "columns": {"audio": "audio"}, "generate": {"target": "image", "model": "vae", "latent_dim": 4, "width": 4}}
    predictor = Predictor(config=config).fit(str(av / "train.csv"))
    frame = pd.read_csv(av / "train.csv").head(4)
    frame.loc[1, "audio"] = str(tmp_path / "gone.wav")
    frame.to_csv(tmp_path / "conditions.csv", index=False)
    with pytest.raises(DataError, match="gone.wav"):
        predictor.generate(str(tmp_path / "conditions.csv"))
    made = predictor.generate(str(tmp_path / "conditions.csv"), on_bad_input="skip_row")
    assert list(made.table["row"]) == [0, 2, 3]


def test_only_the_named_inputs_are_augmented(fashion: Path):
    from polymodal.data import MultimodalDataset

    fitted = Predictor(config={"label": "label", "image": {"preprocess": {"size": 16}}, "training": TRAINING}) \
        .fit(str(fashion / "train.csv")).fitted_
    loaded, _ = fitted.load_inputs(fitted.read_table(str(fashion / "train.csv")))
    (name,) = list(fitted.preprocessors)
    kept = MultimodalDataset(loaded, fitted.preprocessors, augment=[], seed=0)[0][0][name]
    assert kept is loaded.items[name][0]  # untouched, never dropped
    moved = MultimodalDataset(loaded, fitted.preprocessors, augment=[name], seed=0)[0][0][name]
    assert moved is not None and not np.array_equal(np.asarray(moved, dtype=np.float32),
                                                    np.asarray(loaded.items[name][0], dtype=np.float32))
