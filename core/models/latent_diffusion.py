"""A DDPM in a map's latent space, conditioned on the map coordinate or not, sampled in few steps.

Moola, Cherian and Das (DESIGN §1) refine generated microstructures with a diffusion model
trained on VAE latents. Training is the DDPM recipe (Ho et al. 2020): a linear β schedule over
T = 1000 steps and x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε. The network predicts v = √ᾱ_t ε − √(1 − ᾱ_t) x_0
(Salimans and Ho 2022) rather than ε: at high noise ε ≈ x_t carries almost nothing about x_0,
so an ε-predictor learned the coordinate's effect poorly (measured on a toy: conditional means
off by 0.6–1.1 after 40–80 epochs, against 0.03 with v after 40). Sampling uses
the deterministic DDIM update (Song et al. 2021) on a subsequence of ``steps`` timesteps, so 20
network calls replace 1000; on a Gaussian it keeps the mean and narrows the spread (std 0.43
for 0.5 in 20 steps, 0.47 in 50, 0.499 in 1000: the first-order step's known bias). When conditioned, the coordinate is dropped with probability
``p_uncond`` in training so classifier-free guidance can be used as in flow matching.
The noise-predicting network is the flow matching model's :class:`ConditionalMLP`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.models.flow_matching import ConditionalMLP, Standardiser, start_noise, to_latents


@dataclass
class LatentDiffusionConfig:
    latent_dim: int = 16  # d of the map's latents (set from the data)
    coord_dim: int = 2  # 2-D maps
    width: int = 256  # as the flow matching network, so the two compare like for like
    n_blocks: int = 6
    conditional: bool = True  # False: a plain latent prior, the coordinate is never seen
    p_uncond: float = 0.15  # coordinate dropped in training (classifier-free guidance)
    n_timesteps: int = 1000  # DDPM's T
    beta_start: float = 1e-4  # DDPM's linear schedule
    beta_end: float = 0.02


def ddpm_alpha_bar(n_timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """ᾱ_t = Π_{s ≤ t} (1 − β_s) for the linear schedule, float64 (T,)."""
    betas = torch.linspace(beta_start, beta_end, n_timesteps, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor
             ) -> torch.Tensor:
    """Forward process: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε for integer timesteps t (B,)."""
    ab = alpha_bar.to(x0.device)[t].to(x0.dtype)[:, None]  # (B, 1)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def ddim_sample(eps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                alpha_bar: torch.Tensor, steps: int) -> torch.Tensor:
    """Deterministic DDIM from x_T (B, d) down to x_0 over ``steps`` evenly spaced timesteps.

    ``eps(x_t, t)`` predicts the noise, t an integer tensor (B,). Each step estimates x_0 from
    the predicted noise and re-noises it to the next, smaller ᾱ.
    """
    n_timesteps = len(alpha_bar)
    if not 1 <= steps <= n_timesteps:
        raise ValueError(f"steps={steps!r} must be between 1 and {n_timesteps}")
    ts = np.linspace(n_timesteps - 1, 0, steps).round().astype(int)
    ab = alpha_bar.to(x.device, torch.float64)
    for i, t in enumerate(ts):
        a_t = ab[t]
        a_next = ab[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), dtype=torch.float64, device=x.device)
        e = eps(x, torch.full((len(x),), int(t), device=x.device)).to(torch.float64)
        x0 = (x.to(torch.float64) - (1 - a_t).sqrt() * e) / a_t.sqrt()
        x = (a_next.sqrt() * x0 + (1 - a_next).sqrt() * e).to(x.dtype)
    return x


class LatentDiffusion(nn.Module):
    """v-predictor v(x_t, t | u) over standardised latents; see the module docstring."""

    def __init__(self, config: LatentDiffusionConfig):
        super().__init__()
        self.config = config
        self.net = ConditionalMLP(config.latent_dim, config.coord_dim, config.width, config.n_blocks)
        self.scale = Standardiser(config.latent_dim, config.coord_dim)
        # recomputed from the config, not stored: it is not a weight
        self.register_buffer("alpha_bar", ddpm_alpha_bar(
            config.n_timesteps, config.beta_start, config.beta_end).float(), persistent=False)

    def _t_input(self, t: torch.Tensor) -> torch.Tensor:
        return t.float() / self.config.n_timesteps  # the embedding expects t in [0, 1]

    def loss(self, z: torch.Tensor, u: torch.Tensor, generator: torch.Generator | None = None
             ) -> torch.Tensor:
        """v-prediction loss on standardised latents z (B, d) and coordinates u (B, 2)."""
        b = len(z)
        noise = torch.randn(z.shape, device=z.device, generator=generator)
        t = torch.randint(0, self.config.n_timesteps, (b,), device=z.device, generator=generator)
        xt = q_sample(z, t, noise, self.alpha_bar)
        if self.config.conditional:
            drop = torch.rand(b, device=z.device, generator=generator) < self.config.p_uncond
            pred = self.net(xt, self._t_input(t), u, drop)
        else:
            pred = self.net(xt, self._t_input(t), None)
        ab = self.alpha_bar[t][:, None]  # (B, 1)
        return F.mse_loss(pred, ab.sqrt() * noise - (1 - ab).sqrt() * z)

    def eps(self, x: torch.Tensor, t: torch.Tensor, u: torch.Tensor | None, guidance: float
            ) -> torch.Tensor:
        """Guided noise ε_uncond + s (ε_cond − ε_uncond); unconditional models ignore u."""
        v = self.net(x, self._t_input(t), None)
        if u is not None and self.config.conditional and guidance != 0:
            v = v + guidance * (self.net(x, self._t_input(t), u) - v)
        ab = self.alpha_bar[t][:, None]  # (B, 1); ε = √(1 − ᾱ) x_t + √ᾱ v
        return (1 - ab).sqrt() * x + ab.sqrt() * v

    @torch.no_grad()
    def sample(self, coords: np.ndarray | None, n: int, *, seed: int = 0, guidance: float = 1.0,
               steps: int = 20) -> np.ndarray:
        """Latents float32 (M, n, d) for coordinates (M, 2); ``coords=None`` gives (1, n, d)."""
        x, u = start_noise(self, coords, n, seed)
        x = ddim_sample(lambda x, t: self.eps(x, t, u, guidance), x, self.alpha_bar, steps)
        return to_latents(self, x, n)
