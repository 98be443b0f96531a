"""Speed and frequency-warp perturbation of log-mel frames."""
import torch

from polymodal.modalities.audio.preprocess import AudioPreprocessor
from polymodal.modalities.audio.augment import perturb, stretch_time, warp_frequency


def test_stretch_changes_length_and_keeps_bins():
    x = torch.randn(100, 8)
    assert stretch_time(x, 1.25).shape == (80, 8)
    assert stretch_time(x, 0.8).shape == (125, 8)
    torch.testing.assert_close(stretch_time(x, 1.0), x)


def test_warp_moves_energy_along_the_mel_axis():
    x = torch.zeros(5, 20)
    x[:, 10] = 1.0
    assert warp_frequency(x, 1.2).argmax(dim=1).eq(12).all()  # bin f reads bin f / 1.2
    assert warp_frequency(x, 0.8).argmax(dim=1).eq(8).all()
    torch.testing.assert_close(warp_frequency(x, 1.0), x)


def test_perturb_is_seeded_and_off_by_default():
    x = torch.randn(50, 16)
    a = perturb(x, 0.2, 0.1, torch.Generator().manual_seed(0))
    b = perturb(x, 0.2, 0.1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)
    pre = AudioPreprocessor("audio", ["audio"], n_mels=16, spec_augment=False)
    torch.testing.assert_close(pre.augment(x, torch.Generator().manual_seed(0)), x)
    pre = AudioPreprocessor("audio", ["audio"], n_mels=16, spec_augment=False, speed_perturb=0.2)
    assert pre.augment(x, torch.Generator().manual_seed(0)).shape[1] == 16
