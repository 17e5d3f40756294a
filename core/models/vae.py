"""A convolutional VAE whose depth follows the image size.

The encoder resizes the image onto its grid (the power of two at or above its side, see
``core.models``) and halves it with stride-2 convolutions until a 4×4 map is left (so 28 or 32
px take 3 blocks, 512 px takes 7), then (with ``fc_hidden``) a fully connected layer, and two
linear heads give the posterior mean and log-variance. The decoder mirrors it and resizes back, so
images come out at their own side. Moola et al.'s denoising VAE (DESIGN §1) is base_channels=32
at 64 px (32-64-128-256), fc_hidden=1024, latent_dim=128.
GroupNorm rather than BatchNorm: results do not depend on the batch (one live frame encodes
exactly like the same frame in a batch of 256) and every entry of the state dict is a float
parameter, which is what the checkpoint stores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.limits import FC_HIDDEN
from core.models import check_shape_fields, grid_size, resize


@dataclass
class VAEConfig:
    image_size: int = 64  # square input side; any side, the convolutions run on its grid
    channels: int = 1  # 1 for detector/microscope frames, 3 for RGB, 4 for RGBA
    latent_dim: int = 32  # enough for a colloid series; the map is made from these d numbers
    base_channels: int = 32  # width of the first block; doubles per block
    max_channels: int = 256  # cap on the doubling so a 512 px model stays at ~6M parameters
    beta: float = 1.0  # weight of the KL term; >1 trades reconstructions for a tidier latent space
    # width of a fully connected layer between the conv stack and the latent heads (mirrored in the
    # decoder); 0 = none, the heads read the 4×4 map directly (models saved before it existed)
    fc_hidden: int = 0

    def validate(self) -> VAEConfig:
        """Raise ValueError naming the bad field, its value and the allowed range."""
        check_shape_fields(self)
        beta = self.beta
        if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta={self.beta!r} must be a finite number >= 0")
        fc, (lo, hi) = self.fc_hidden, FC_HIDDEN
        if not (isinstance(fc, int) and not isinstance(fc, bool) and lo <= fc <= hi):
            raise ValueError(f"fc_hidden={fc!r} must be an integer between {lo} and {hi} (0: no hidden layer)")
        return self

    @property
    def grid(self) -> int:
        """Side the convolutions work at: the power of two at or above image_size."""
        return grid_size(self.image_size)

    @property
    def n_blocks(self) -> int:
        """Stride-2 blocks from the grid down to 4×4."""
        return int(math.log2(self.grid)) - 2

    @property
    def widths(self) -> list[int]:
        """Output channels of each encoder block."""
        return [min(self.base_channels * 2**i, self.max_channels) for i in range(self.n_blocks)]


def _norm(c: int) -> nn.GroupNorm:
    # Up to 8 groups; gcd keeps it valid for any width (1 group = LayerNorm over C, H, W).
    return nn.GroupNorm(math.gcd(8, c), c)


class Down(nn.Module):
    """Halve H and W: (B, cin, H, W) -> (B, cout, H/2, W/2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1)
        self.norm = _norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.norm(self.conv(x)))


class Up(nn.Module):
    """Double H and W: (B, cin, H, W) -> (B, cout, 2H, 2W).

    Nearest upsampling then a 3×3 conv instead of a transposed conv: no checkerboard
    artefacts, which on sparse particle images look like texture that isn't there.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        self.norm = _norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.silu(self.norm(self.conv(x)))


class VAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config.validate()
        w = config.widths
        ins = [config.channels] + w[:-1]
        self.encoder = nn.Sequential(*[Down(cin, cout) for cin, cout in zip(ins, w)])
        flat, fc = w[-1] * 4 * 4, config.fc_hidden
        # Identity when fc_hidden=0: no parameters, so the state dict is the one saved before fc_hidden.
        self.enc_fc = nn.Sequential(nn.Linear(flat, fc), nn.SiLU()) if fc else nn.Identity()
        self.to_mu = nn.Linear(fc or flat, config.latent_dim)
        self.to_logvar = nn.Linear(fc or flat, config.latent_dim)
        self.from_z = nn.Linear(config.latent_dim, fc or flat)
        self.dec_fc = nn.Sequential(nn.SiLU(), nn.Linear(fc, flat)) if fc else nn.Identity()
        # Mirror: widths reversed, and the last block stays at w[0] before the output conv.
        dec = w[::-1] + [w[0]]
        self.decoder = nn.Sequential(*[Up(cin, cout) for cin, cout in zip(dec[:-1], dec[1:])])
        self.to_image = nn.Conv2d(w[0], config.channels, kernel_size=3, padding=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior N(mu, exp(logvar)) of each image: (B, C, S, S) -> 2 × (B, d)."""
        h = self.enc_fc(self.encoder(resize(x, self.config.grid)).flatten(1))  # (B, fc_hidden or w[-1] * 16)
        return self.to_mu(h), self.to_logvar(h)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Draw z = mu + sigma * eps so the sample stays differentiable in mu and logvar."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, C, S, S) with values in [0, 1]."""
        h = self.dec_fc(self.from_z(z)).view(-1, self.config.widths[-1], 4, 4)  # (B, w[-1], 4, 4)
        logits = self.to_image(self.decoder(h))  # (B, C, grid, grid)
        return torch.sigmoid(resize(logits, self.config.image_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample z while training; use the mean in eval mode so outputs are reproducible."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar


def vae_loss(
    x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO per image: (total, rec, kl), each a mean over the batch.

    rec is binary cross-entropy summed over pixels. Images are intensities in [0, 1], and a
    summed per-pixel log-likelihood is on the same scale as the KL term, so beta=1 means what it
    says. Summed MSE is a Gaussian likelihood with a fixed variance of 1/2: far flatter, so the KL
    term wins and reconstructions of sparse, mostly dark frames blur into the background.
    BCE's minimum is the targets' own entropy, not 0, for grey-level images: compare losses
    between runs on the same data, not against zero.
    """
    rec = F.binary_cross_entropy(x_hat, x, reduction="none").flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
    return rec + beta * kl, rec, kl
