"""Generation parts of the image and audio modalities: decoders, critics, writers, mel inversion."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize

from polymodal.datasets.root import data_root
from polymodal.errors import DataError
from polymodal.modalities import get_modality
from polymodal.modalities.audio.decoder import AudioCritic, AudioDecoder, check_audio, preview_audio, write_audio
from polymodal.modalities.audio.features import log_mel
from polymodal.modalities.audio.invert import mel_to_waveform
from polymodal.modalities.audio.preprocess import AudioPreprocessor
from polymodal.modalities.image.decoder import ImageCritic, ImageDecoder, check_image, preview_image, write_image
from polymodal.modalities.image.preprocess import ImagePreprocessor

pytestmark = pytest.mark.usefixtures("one_thread")

FSDD = dict(sample_rate=8000, n_fft=256, hop_length=80, win_length=200, f_min=20.0, f_max=None)


@pytest.fixture(scope="module")
def clip() -> Path:
    try:
        root = data_root(None)
    except DataError:
        pytest.skip("POLYMODAL_DATA is not set to the benchmark data folder")
    files = sorted((root / "fsdd").glob("*.wav"))
    if not files:
        pytest.skip(f"no fsdd/*.wav under {root}")
    return files[0]


def _fsdd_mel(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    s = FSDD
    return log_mel(torch.as_tensor(wave), s["sample_rate"], n_mels=40, n_fft=s["n_fft"],
                   hop_length=s["hop_length"], win_length=s["win_length"], f_min=s["f_min"])  # [T, F]


def _spectrally_normalised(module: nn.Module) -> None:
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    assert layers
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def test_registered_on_the_modalities():
    image, audio = get_modality("image").decoding, get_modality("audio").decoding
    assert (image.decoder, image.critic, image.extension) == (ImageDecoder, ImageCritic, ".png")
    assert (image.write, image.preview, image.check) == (write_image, preview_image, check_image)
    assert (audio.decoder, audio.critic, audio.extension) == (AudioDecoder, AudioCritic, ".wav")
    assert (audio.write, audio.preview, audio.check) == (write_audio, preview_audio, check_audio)


@pytest.mark.parametrize("size", [8, 16, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_image_decoder_and_critic_shapes(size, channels):
    torch.manual_seed(0)
    inputs = {"in_channels": channels, "image_size": size}
    decoder, critic = ImageDecoder(8, **inputs, width=8), ImageCritic(**inputs, width=8)
    out = decoder(torch.randn(2, 8))
    assert out.shape == (2, channels, size, size)
    features = critic(out)
    assert features.shape == (2, critic.out_dim)
    features.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in decoder.parameters())
    _spectrally_normalised(critic)


def test_image_decoder_resizes_sides_not_reached_by_doubling():
    decoder = ImageDecoder(4, in_channels=3, image_size=100, width=8)
    assert decoder(torch.randn(1, 4)).shape == (1, 3, 100, 100)


@pytest.mark.parametrize("frames, mels", [(101, 40), (201, 64), (5, 3)])
def test_audio_decoder_and_critic_shapes(frames, mels):
    torch.manual_seed(0)
    inputs = {"n_mels": mels, "max_frames": frames}
    decoder, critic = AudioDecoder(8, **inputs, width=8), AudioCritic(**inputs, width=8)
    out = decoder(torch.randn(2, 8))
    assert out.shape == (2, frames, mels)
    features = critic(out)
    assert features.shape == (2, critic.out_dim)
    features.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in decoder.parameters())
    _spectrally_normalised(critic)


@pytest.mark.parametrize("module", [ImageDecoder, AudioDecoder])
def test_reconstruction_is_a_per_row_sum_of_squares(module):
    target = torch.randn(3, 2, 5, 5)
    assert torch.equal(module.reconstruction(target, target), torch.zeros(3))
    output = target.clone()
    output[1, 0, 0, 0] += 2.0
    assert torch.allclose(module.reconstruction(output, target), torch.tensor([0.0, 4.0, 0.0]))


def test_audio_target_fills_padding_with_silence():
    decoder = AudioDecoder(4, n_mels=3, max_frames=6, width=8)
    features = torch.randn(2, 6, 3)
    mask = torch.tensor([[True] * 4 + [False] * 2, [False] * 6])
    target = decoder.target({"features": features, "mask": mask})
    assert torch.equal(target[0, :4], features[0, :4])
    assert torch.allclose(target[0, 4:], torch.full((2, 3), math.log(1e-6)))
    decoder.silence = math.log(1e-4)
    assert torch.allclose(decoder.target({"features": features, "mask": mask})[1], torch.full((6, 3), math.log(1e-4)))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_write_image_round_trip(tmp_path, mode):
    rng = np.random.default_rng(0)
    shape = (16, 16) if mode == "L" else (16, 16, 3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    frame = pd.DataFrame({"photo": [f"{i}.png" for i in range(3)]})
    pre = ImagePreprocessor("photo", ["photo"], size=16, augment=False).fit(frame, tmp_path)
    items = [pre.load({"photo": name}, tmp_path) for name in frame["photo"]]
    row = pre.collate(items)["pixel_values"][1]  # [C, 16, 16]
    path = write_image(pre, row, tmp_path / "out" / "sample.1")
    assert path == tmp_path / "out" / "sample.1.png"
    with Image.open(path) as image:
        assert image.mode == mode
        written = np.asarray(image).astype(int)
    original = np.asarray(Image.open(tmp_path / "1.png")).astype(int)
    assert np.abs(written - original).max() <= 1
    preview = preview_image(pre, row)
    assert preview.dtype == np.uint8 and preview.shape == shape
    assert np.array_equal(preview, written)


def test_check_image():
    assert check_image(ImagePreprocessor("photo", ["photo"])) is None
    stand_in = SimpleNamespace(name="photo", columns=["photo"], backbone="vit-tiny")
    reason = check_image(stand_in)
    assert "'photo'" in reason and "pretrained backbone" in reason and "image.backbone" in reason


def test_mel_to_waveform_inverts_a_real_clip(clip):
    samples, rate = sf.read(clip, dtype="float32")
    assert rate == 8000
    wave = torch.from_numpy(samples / np.abs(samples).max())
    target = _fsdd_mel(wave)  # [T, 40]
    rebuilt = mel_to_waveform(target, **FSDD, seed=0)
    assert rebuilt.dtype == np.float32 and rebuilt.shape == ((target.shape[0] - 1) * 80,)
    error = (_fsdd_mel(rebuilt) - target).abs().mean().item()
    # Measured on 30 FSDD clips: 0.09 mean, 0.14 worst (white noise of the clip's RMS: 3 to 6).
    assert error < 0.3
    noise = torch.randn(len(rebuilt), generator=torch.Generator().manual_seed(1)) * wave.pow(2).mean().sqrt()
    assert (_fsdd_mel(noise) - target).abs().mean().item() > 10 * error
    assert np.array_equal(mel_to_waveform(target, **FSDD, seed=0), rebuilt)
    assert not np.array_equal(mel_to_waveform(target, **FSDD, seed=1), rebuilt)


def test_write_audio_writes_the_clip_without_its_padding(tmp_path, clip):
    pre = AudioPreprocessor("voice", ["voice"], sample_rate=8000, n_mels=40, cmvn=False, max_seconds=3.0)
    item = pre.load({"voice": str(clip)}, Path("."))
    collated = pre.collate([item])
    row = AudioDecoder(4, **pre.encoder_inputs()).target(collated)[0]  # [T, F], padding = silence
    assert row.shape[0] > item.shape[0] + 50
    path = write_audio(pre, row, tmp_path / "voice")
    info = sf.info(str(path))
    assert path.suffix == ".wav"
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert (item.shape[0] - 10) * pre.hop_length <= info.frames <= (item.shape[0] - 1) * pre.hop_length
    samples, _ = sf.read(str(path), dtype="float32")
    assert abs(np.abs(samples).max() - 0.9) < 1e-3


def test_preview_audio_puts_low_bins_at_the_bottom():
    row = torch.full((7, 4), -10.0)
    row[:, 0] = 2.0  # loud lowest mel bin
    picture = preview_audio(None, row)
    assert picture.dtype == np.uint8 and picture.shape == (4, 7)
    assert (picture[-1] == 255).all() and (picture[:-1] == 0).all()
    assert (preview_audio(None, torch.zeros(3, 2)) == 0).all()


def test_check_audio():
    assert check_audio(AudioPreprocessor("voice", ["voice"], cmvn=False)) is None
    reason = check_audio(AudioPreprocessor("voice", ["voice"]))
    assert "'voice'" in reason and "audio.preprocess.cmvn: false" in reason
    assert "column_overrides.voice.preprocess.cmvn" in reason
    stand_in = SimpleNamespace(name="voice", columns=["voice"], backbone="wav2vec2")
    assert "pretrained backbone" in check_audio(stand_in) and "audio.backbone" in check_audio(stand_in)
