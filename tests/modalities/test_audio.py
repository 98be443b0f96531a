"""AudioPreprocessor: decoding of many formats, bad files, log-mel, trimming, augment, persistence."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from polymodal.modalities.audio.features import frame_settings, log_mel
from polymodal.modalities.audio.preprocess import AudioPreprocessor
from polymodal.modalities import get_modality
from polymodal.preprocessing import BadInput
from polymodal.errors import ConfigError

HERE = Path(".")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clips(data_dir) -> list[Path]:
    files = sorted((data_dir / "fsdd").glob("*.wav"))
    if not files:
        pytest.skip(f"no fsdd/*.wav under {data_dir}")
    return files[::250][:12]  # 12 clips spread over digits and speakers


@pytest.fixture(scope="module")
def pre() -> AudioPreprocessor:
    return AudioPreprocessor("voice", ["voice"]).fit(None, HERE)


def test_registered_and_defaults(pre):
    assert get_modality("audio").preprocessor is AudioPreprocessor
    assert (pre.n_fft, pre.hop_length, pre.win_length) == (512, 160, 400)
    assert pre.encoder_inputs() == {"n_mels": 64, "max_frames": 201}
    assert frame_settings(8000) == (256, 80, 200)


def test_load_and_collate_real_clips(pre, clips):
    items = [pre.load({"voice": str(path)}, HERE) for path in clips]
    for item in items:
        assert item.dtype == torch.float16 and item.shape[1] == 64
        assert 1 <= item.shape[0] <= 201 and torch.isfinite(item).all()
    spread = items[0].float()
    assert spread.mean(0).abs().max() < 1e-2 and (spread.std(0, unbiased=False) - 1).abs().max() < 2e-2  # cmvn
    batch = pre.collate(items[:3] + [None])
    assert batch["features"].shape == (4, 201, 64) and batch["features"].dtype == torch.float32
    assert batch["mask"].dtype == torch.bool
    assert batch["mask"].sum(1).tolist() == [i.shape[0] for i in items[:3]] + [0]
    assert (batch["features"][0, items[0].shape[0]:] == 0).all()


def test_relative_path_and_absent_cells(pre, clips):
    relative = pre.load({"voice": clips[0].name}, clips[0].parent)
    assert torch.equal(relative, pre.load({"voice": str(clips[0])}, Path("/elsewhere")))
    for cell in [None, np.nan, "", "  "]:
        assert pre.load({"voice": cell}, HERE) is None


def test_log_mel_of_a_tone():
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t)  # 1 s, 1 kHz
    features = log_mel(tone, 16000, n_mels=40)
    assert features.shape == (1 + 16000 // 160, 40) and features.dtype == torch.float32
    peak_bin = int(features[50].argmax())
    low = log_mel(torch.sin(2 * torch.pi * 300 * t), 16000, n_mels=40)
    assert int(low[50].argmax()) < peak_bin  # a lower tone lands in a lower mel bin
    assert log_mel(torch.zeros(50), 16000).shape == (1, 64)  # shorter than one window


def _samples(clip: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(clip, dtype="float32")
    return data, rate


@pytest.mark.parametrize(
    ("name", "rate", "subtype", "stereo"),
    [
        ("stereo16.wav", 8000, "PCM_16", True),
        ("pcm24.wav", 22050, "PCM_24", False),
        ("float.wav", 44100, "FLOAT", True),
        ("u8.wav", 16000, "PCM_U8", False),
        ("clip.flac", 48000, "PCM_16", False),
        ("clip.ogg", 32000, "VORBIS", True),
    ],
)
def test_formats_decode(pre, clips, tmp_path, name, rate, subtype, stereo):
    import soxr

    data, source_rate = _samples(clips[1])
    data = soxr.resample(data, source_rate, rate)
    if stereo:
        data = np.stack([data, 0.5 * data], axis=1)  # [S, 2]
    sf.write(tmp_path / name, data, rate, subtype=subtype)
    item = pre.load({"voice": name}, tmp_path)
    reference = pre.load({"voice": str(clips[1])}, HERE)
    assert item.shape[1] == 64 and torch.isfinite(item).all()
    assert abs(item.shape[0] - reference.shape[0]) <= 4  # same length after resampling


def test_trims_silence_and_caps_length(pre, clips, tmp_path):
    data, rate = _samples(clips[2])
    silence = np.zeros(rate, np.float32)  # 1 s either side
    sf.write(tmp_path / "padded.wav", np.concatenate([silence, data, silence]), rate)
    trimmed = pre.load({"voice": "padded.wav"}, tmp_path)
    original = pre.load({"voice": str(clips[2])}, HERE)
    assert abs(trimmed.shape[0] - original.shape[0]) <= 6  # window edges; 1 s = 100 frames
    keep = AudioPreprocessor("voice", ["voice"], trim_silence=False)
    assert keep.load({"voice": "padded.wav"}, tmp_path).shape[0] == keep.max_frames  # 2 s cap

    sf.write(tmp_path / "long.wav", np.tile(data, 20), rate)
    assert pre.load({"voice": "long.wav"}, tmp_path).shape[0] == pre.max_frames


def test_silence_and_normalisation_modes(clips, tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(4000, np.float32), 8000)
    for normalize in ["peak", "rms", "none"]:
        pre = AudioPreprocessor("voice", ["voice"], normalize=normalize, cmvn=False, store_float16=False)
        silent = pre.load({"voice": "silent.wav"}, tmp_path)
        assert torch.isfinite(silent).all()
        wave = pre.waveform({"voice": str(clips[3])}, HERE)
        level = {"peak": wave.abs().max(), "rms": wave.pow(2).mean().sqrt()}.get(normalize)
        if level is not None:
            assert abs(float(level) - {"peak": 1.0, "rms": 0.1}[normalize]) < 1e-4


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("zero.wav", b"", "zero-byte file"),
        ("text.wav", b"this is a text file, not audio\n" * 20, "cannot decode audio"),
        ("noise.flac", bytes(range(256)) * 8, "cannot decode audio"),
    ],
)
def test_bad_files_raise_bad_input(pre, tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BadInput, match=reason):
        pre.load({"voice": name}, tmp_path)


def test_truncated_empty_and_missing(pre, clips, tmp_path):
    header = clips[0].read_bytes()[:44]  # RIFF header, no sample data
    (tmp_path / "header.wav").write_bytes(header)
    with pytest.raises(BadInput, match="empty audio|cannot decode audio"):
        pre.load({"voice": "header.wav"}, tmp_path)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 8000)
    with pytest.raises(BadInput, match="empty audio"):
        pre.load({"voice": "empty.wav"}, tmp_path)
    with pytest.raises(BadInput, match="file not found"):
        pre.load({"voice": "missing.wav"}, tmp_path)
    data = clips[0].read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])  # header promises more samples
    item = pre.load({"voice": "cut.wav"}, tmp_path)  # libsndfile reads what is there
    assert item.shape[0] >= 1


def test_augment_reproducible_and_different(pre, clips):
    item = pre.load({"voice": str(clips[4])}, HERE)
    a = pre.augment(item, torch.Generator().manual_seed(1))
    b = pre.augment(item, torch.Generator().manual_seed(1))
    c = pre.augment(item, torch.Generator().manual_seed(2))
    assert a.shape == item.shape and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, item.float())
    off = AudioPreprocessor("voice", ["voice"], spec_augment=False)
    assert torch.equal(off.augment(item, torch.Generator()), item.float())


def test_save_load_from_same_features(clips, tmp_path):
    pre = AudioPreprocessor("voice", ["voice"], sample_rate=8000, n_mels=32, max_seconds=1.0, normalize="rms")
    pre.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    again = AudioPreprocessor.load_from(tmp_path)
    assert again.encoder_inputs() == pre.encoder_inputs() == {"n_mels": 32, "max_frames": 101}
    rows = [{"voice": str(path)} for path in clips[:4]]
    first = pre.collate([pre.load(r, HERE) for r in rows])
    second = again.collate([again.load(r, HERE) for r in rows])
    assert torch.equal(first["features"], second["features"]) and torch.equal(first["mask"], second["mask"])


def test_option_errors():
    with pytest.raises(ConfigError, match="win_length"):
        AudioPreprocessor("voice", ["voice"], n_fft=256, win_length=400)
    with pytest.raises(ConfigError, match="f_max"):
        AudioPreprocessor("voice", ["voice"], sample_rate=8000, f_max=6000)
    with pytest.raises(ConfigError, match="normalize"):
        AudioPreprocessor("voice", ["voice"], normalize="loudness")
    with pytest.raises(ConfigError, match="one column"):
        AudioPreprocessor("voice", ["a", "b"])
