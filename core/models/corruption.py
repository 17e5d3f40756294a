"""Noise models for a denoising VAE (DESIGN §1, Moola, Cherian and Das): training corrupts the
inputs while the loss targets the clean image, so the encoder learns to see through detector and
optics artefacts.

Three noise models, each off at its zero setting, in any mix (applied in this order):

- **FFT ring mask**: ``ring_count`` rings at normalised frequency radii (k + 1) / (ring_count + 1),
  k = 0 … ring_count − 1, each ``ring_width`` wide, multiplied by the gain 1 − ``ring_intensity``;
  the radius is |f| / 0.5 cycles/px (1 at the Nyquist frequency along an axis);
- **sinusoidal grid**: + ``grid_amplitude`` · sin(2π f (x cos θ + y sin θ) + phase), f =
  ``grid_frequency`` cycles/px (period 1/f px), θ = ``grid_angle`` degrees from the x axis
  (columns), a random phase per image, then clipped to [0, 1];
- **salt and pepper**: each pixel flipped with probability ``flip_prob`` to the other extreme
  (1 if it was below 0.5, else 0): for binary microstructures exactly a flip, last so that its
  rate holds exactly.

Everything works on torch tensors (B, C, H, W) on their own device, drawing from a caller's
``torch.Generator`` so a training run is repeatable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.limits import BadParameter


@dataclass
class CorruptionParams:
    flip_prob: float = 0.0  # p_flip; the study's salt-and-pepper levels are a few per cent
    grid_amplitude: float = 0.0  # A_g, in image units ([0, 1] intensities)
    grid_frequency: float = 0.125  # f_g, cycles/px: an 8 px period, visible at 64 px
    grid_angle: float = 30.0  # θ_g, degrees
    ring_count: int = 0  # N_rings
    ring_width: float = 0.05  # w, in normalised frequency radius (1 = Nyquist)
    ring_intensity: float = 0.8  # I_fm: a ring keeps 1 − I_fm of its amplitude

    def validate(self) -> CorruptionParams:
        """Raise BadParameter naming the first bad field and its range."""
        for name, lo, hi in (("flip_prob", 0.0, 1.0), ("grid_amplitude", 0.0, 1.0), ("grid_frequency", 0.0, 0.5),
                             ("ring_width", 0.0, 1.0), ("ring_intensity", 0.0, 1.0)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and lo <= value <= hi):
                raise BadParameter(name, value, f"must be a number between {lo:g} and {hi:g}")
        if not (isinstance(self.ring_count, int) and 0 <= self.ring_count <= 32):
            raise BadParameter("ring_count", self.ring_count, "must be a whole number between 0 and 32")
        return self

    @property
    def active(self) -> bool:
        """True when at least one noise model changes images."""
        rings = self.ring_count > 0 and self.ring_intensity > 0 and self.ring_width > 0
        return self.flip_prob > 0 or self.grid_amplitude > 0 or rings


def salt_and_pepper(x: torch.Tensor, flip_prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each pixel, with probability ``flip_prob``, set to 1 if it was below 0.5 and to 0 otherwise."""
    flip = torch.rand(x.shape, generator=generator, device=x.device) < flip_prob
    return torch.where(flip, (x < 0.5).to(x.dtype), x)


def sinusoidal_grid(x: torch.Tensor, amplitude: float, frequency: float, angle: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """x + A sin(2π f (col cos θ + row sin θ) + φ), φ uniform per image; clipped to [0, 1]."""
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device, dtype=x.dtype)[:, None]
    cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, :]
    theta = math.radians(angle)
    wave = 2 * math.pi * frequency * (cols * math.cos(theta) + rows * math.sin(theta))  # (H, W)
    phase = 2 * math.pi * torch.rand((len(x),) + (1,) * (x.dim() - 1), generator=generator, device=x.device)
    return (x + amplitude * torch.sin(wave + phase.to(x.dtype))).clamp(0, 1)


def ring_mask(h: int, w: int, count: int, width: float, intensity: float,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """The (H, W) gain in fft2's layout: 1 − intensity within width/2 of each ring radius, else 1."""
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.fftfreq(w, device=device)[None, :]
    radius = torch.sqrt(fy**2 + fx**2) / 0.5  # 1 at Nyquist along an axis
    mask = torch.ones(h, w, device=device)
    for k in range(count):
        mask[(radius - (k + 1) / (count + 1)).abs() <= width / 2] = 1 - intensity
    return mask


def fft_ring(x: torch.Tensor, count: int, width: float, intensity: float) -> torch.Tensor:
    """Rings of the spectrum damped by the gain 1 − intensity; back to real space, clipped to [0, 1]."""
    mask = ring_mask(*x.shape[-2:], count, width, intensity, device=x.device)
    return torch.fft.ifft2(torch.fft.fft2(x) * mask).real.clamp(0, 1).to(x.dtype)


def corrupt(x: torch.Tensor, params: CorruptionParams, generator: torch.Generator | None = None) -> torch.Tensor:
    """The noisy input for clean images x (B, C, H, W) in [0, 1]: rings, then grid, then flips."""
    if params.ring_count > 0 and params.ring_intensity > 0 and params.ring_width > 0:
        x = fft_ring(x, params.ring_count, params.ring_width, params.ring_intensity)
    if params.grid_amplitude > 0:
        x = sinusoidal_grid(x, params.grid_amplitude, params.grid_frequency, params.grid_angle, generator)
    if params.flip_prob > 0:
        x = salt_and_pepper(x, params.flip_prob, generator)
    return x
