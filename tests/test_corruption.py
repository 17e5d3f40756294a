"""Noise models of the denoising VAE (core.models.corruption) read back from their statistics and
spectra, and the reconstruction figures (core.models.reconstruction) on cases known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.models.corruption import CorruptionParams, corrupt, fft_ring, ring_mask, salt_and_pepper, sinusoidal_grid
from core.models.reconstruction import reconstruction_metrics, ssim


def binary_images(n: int = 16, side: int = 64) -> torch.Tensor:
    return (torch.rand((n, 1, side, side), generator=torch.Generator().manual_seed(1)) < 0.4).float()


def test_salt_and_pepper_flips_at_its_rate():
    """p = 0.1 on 65,536 binary pixels: the flipped share is 0.1 ± 4σ (σ = 0.0012), each flip 0 ↔ 1."""
    x = binary_images()
    y = salt_and_pepper(x, 0.1, torch.Generator().manual_seed(2))
    changed = y != x
    assert changed.float().mean().item() == pytest.approx(0.1, abs=4 * math.sqrt(0.1 * 0.9 / x.numel()))
    assert torch.equal(y[changed], 1 - x[changed])


def test_grid_period_and_angle_from_the_spectrum():
    """f = 0.125 cycles/px at θ = 30° on 128 px: the spectrum peaks at bin (kx, ky) = (14, 8) of
    the exact (13.86, 8.0), i.e. a period of 128 / √260 = 7.94 px (8 set) at 29.7° (30° set)."""
    x = torch.full((2, 1, 128, 128), 0.5)
    y = sinusoidal_grid(x, 0.2, 0.125, 30.0, torch.Generator().manual_seed(3))
    assert y.min() >= 0.3 - 1e-6 and y.max() <= 0.7 + 1e-6  # 0.5 ± A, nothing clipped
    power = torch.fft.rfft2(y[0, 0] - y[0, 0].mean()).abs() ** 2  # (ky, kx ≥ 0)
    ky, kx = np.unravel_index(int(power.argmax()), power.shape)
    ky = ky - 128 if ky > 64 else ky
    assert (kx, ky) == (14, 8)
    assert 128 / math.hypot(kx, ky) == pytest.approx(8.0, abs=0.1)
    assert math.degrees(math.atan2(ky, kx)) == pytest.approx(30.0, abs=0.5)


def test_ring_radii_in_the_spectrum():
    """3 rings of width 0.04 and gain 1 − 0.75: on a noise image, the frequencies whose amplitude
    falls to 0.25 lie within 0.02 of radii 0.25, 0.5 and 0.75 (1 = Nyquist), and all others keep it."""
    x = (0.5 + 0.1 * torch.randn((1, 1, 128, 128), generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    y = fft_ring(x, 3, 0.04, 0.75)
    ratio = (torch.fft.fft2(y[0, 0]).abs() / torch.fft.fft2(x[0, 0]).abs())
    fy, fx = torch.fft.fftfreq(128)[:, None], torch.fft.fftfreq(128)[None, :]
    radius = torch.sqrt(fy**2 + fx**2) / 0.5
    damped = radius[ratio < 0.5]
    nearest = torch.stack([(damped - r).abs() for r in (0.25, 0.5, 0.75)]).min(dim=0).values
    assert nearest.max() <= 0.02 + 1e-6
    assert all(((damped - r).abs() <= 0.02).any() for r in (0.25, 0.5, 0.75))
    assert torch.allclose(ratio[ratio < 0.5], torch.tensor(0.25), atol=1e-3)
    assert torch.allclose(ratio[ratio >= 0.5], torch.tensor(1.0), atol=1e-3)
    assert (ring_mask(128, 128, 3, 0.04, 0.75) < 1).sum() == damped.numel()


def test_off_at_zero_and_mixed_in_order():
    """All strengths zero: inputs pass unchanged; all on: flips last, so binary flips still show."""
    x = binary_images(4)
    assert not CorruptionParams().active and torch.equal(corrupt(x, CorruptionParams()), x)
    mixed = CorruptionParams(flip_prob=0.05, grid_amplitude=0.1, ring_count=2)
    y = corrupt(x, mixed.validate(), torch.Generator().manual_seed(5))
    assert mixed.active and y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.equal(x, y)
    with pytest.raises(ValueError, match="flip_prob=1.5"):
        CorruptionParams(flip_prob=1.5).validate()


class Identity(torch.nn.Module):
    """A 'VAE' that returns its input: its clean reconstruction is perfect."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x, None, None


def test_metrics_clean_and_corrupted_by_hand():
    """An identity model on binary images with 10 % flips: clean MSE 0 (PSNR at its 100 dB cap,
    SSIM 1); corrupted MSE = the flipped share ≈ 0.1, so PSNR ≈ 10 log10(1 / 0.1) = 10 dB."""
    images = binary_images(8).numpy()
    metrics = reconstruction_metrics(Identity(), images, corruption=CorruptionParams(flip_prob=0.1), seed=0)
    assert metrics["clean"] == {"mse": 0.0, "psnr": pytest.approx(100.0), "ssim": pytest.approx(1.0)}
    assert metrics["corrupted"]["mse"] == pytest.approx(0.1, abs=0.01)
    assert metrics["corrupted"]["psnr"] == pytest.approx(10.0, abs=0.5)
    assert 0 < metrics["corrupted"]["ssim"] < 0.9
    assert set(reconstruction_metrics(Identity(), images)) == {"clean"}


def test_ssim_matches_skimage():
    """Our SSIM is skimage's Gaussian-window SSIM (population covariance, data range 1)."""
    metrics = pytest.importorskip("skimage.metrics")
    gen = np.random.default_rng(6)
    a = gen.random((40, 40)).astype(np.float32)
    b = np.clip(a + 0.2 * gen.standard_normal((40, 40)), 0, 1).astype(np.float32)
    ours = ssim(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None]).item()
    theirs = metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                           data_range=1.0)
    assert ours == pytest.approx(theirs, abs=1e-4)


def test_ssim_of_small_images():
    """8 px images (the smallest ingest makes) get a 7 px window: identical images score 1."""
    x = torch.rand((2, 1, 8, 8), generator=torch.Generator().manual_seed(7))
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0])
