"""Conditional flow matching in a map's latent space: u (a 2-D map coordinate) -> latents z.

The Latent Space Explorer study (arXiv 2606.14999, Supplementary Note 2; DESIGN §1): a velocity
network learns the straight-line flow x_t = (1 − t) x_0 + t x_1 from noise x_0 ~ N(0, I) to a
latent x_1 given its map coordinate u; the target velocity is x_1 − x_0. The network is 6
residual blocks with adaptive layer norm, conditioned on a sinusoidal embedding of t plus a
learned embedding of u (256-d). Classifier-free guidance: u is replaced by a learned "no
coordinate" embedding with probability 0.15 in training, and sampling follows
v = v_uncond + s (v_cond − v_uncond) with s = 5 and 20 Euler steps.

Latents and coordinates are standardised with statistics kept as buffers, so a stored model
needs nothing else to be used. :class:`ConditionalMLP` is shared with the latent diffusion model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.models.device import pick_device


@dataclass
class FlowMatchingConfig:
    latent_dim: int = 16  # d of the map's latents (set from the data)
    coord_dim: int = 2  # 2-D maps
    width: int = 256  # the study's 256-d conditioning; also the blocks' width
    n_blocks: int = 6  # the study's 6 residual AdaLN blocks
    p_uncond: float = 0.15  # the study's probability of dropping u (classifier-free guidance)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of times t (B,) in [0, 1] (transformer-style frequencies)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t[:, None].float() * freqs[None]  # (B, half); ×1000 spreads t over the bands
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class AdaLNBlock(nn.Module):
    """Residual MLP block whose layer norm is scaled, shifted and gated by the conditioning."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.SiLU(), nn.Linear(4 * width, width))
        self.modulation = nn.Linear(width, 3 * width)
        nn.init.zeros_(self.modulation.weight)  # start as identity blocks: stable early training
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(F.silu(c)).chunk(3, dim=1)  # each (B, width)
        return h + (1 + gate) * self.mlp(self.norm(h) * (1 + scale) + shift)


class ConditionalMLP(nn.Module):
    """f(x (B, d), t (B,), u (B, coord_dim) or None) -> (B, d); None = the null condition."""

    def __init__(self, latent_dim: int, coord_dim: int, width: int, n_blocks: int):
        super().__init__()
        self.width = width
        self.input = nn.Linear(latent_dim, width)
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.coord = nn.Sequential(nn.Linear(coord_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.null_coord = nn.Parameter(torch.zeros(width))  # learned "no coordinate" embedding
        self.blocks = nn.ModuleList(AdaLNBlock(width) for _ in range(n_blocks))
        self.out_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, latent_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, u: torch.Tensor | None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        """``drop`` (B,) bool replaces u by the null embedding for those rows (training CFG)."""
        c = self.time(timestep_embedding(t, self.width))  # (B, width)
        null = self.null_coord.expand(len(x), -1)
        if u is None:
            c = c + null
        else:
            cu = self.coord(u)
            c = c + (cu if drop is None else torch.where(drop[:, None], null, cu))
        h = self.input(x)
        for block in self.blocks:
            h = block(h, c)
        return self.output(self.out_norm(h))


class Standardiser(nn.Module):
    """Per-dimension mean and std of latents and coordinates, stored with the weights."""

    def __init__(self, latent_dim: int, coord_dim: int):
        super().__init__()
        self.register_buffer("z_mean", torch.zeros(latent_dim))
        self.register_buffer("z_std", torch.ones(latent_dim))
        self.register_buffer("u_mean", torch.zeros(coord_dim))
        self.register_buffer("u_std", torch.ones(coord_dim))

    def fit(self, z: np.ndarray, u: np.ndarray) -> None:
        for name, x in (("z", z), ("u", u)):
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(x.mean(0)))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(x.std(0) + 1e-6))

    def z(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.z_mean) / self.z_std

    def z_back(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.z_std + self.z_mean

    def u(self, u: torch.Tensor) -> torch.Tensor:
        return (u - self.u_mean) / self.u_std


class FlowMatching(nn.Module):
    """Velocity field v(x_t, t | u) with classifier-free guidance; see the module docstring."""

    def __init__(self, config: FlowMatchingConfig):
        super().__init__()
        self.config = config
        self.net = ConditionalMLP(config.latent_dim, config.coord_dim, config.width, config.n_blocks)
        self.scale = Standardiser(config.latent_dim, config.coord_dim)

    def loss(self, z: torch.Tensor, u: torch.Tensor, generator: torch.Generator | None = None
             ) -> torch.Tensor:
        """Flow matching loss on a batch of standardised latents z (B, d) and coordinates u (B, 2)."""
        b = len(z)
        x0 = torch.randn(z.shape, device=z.device, generator=generator)
        t = torch.rand(b, device=z.device, generator=generator)
        drop = torch.rand(b, device=z.device, generator=generator) < self.config.p_uncond
        xt = (1 - t[:, None]) * x0 + t[:, None] * z
        return F.mse_loss(self.net(xt, t, u, drop), z - x0)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, u: torch.Tensor | None, guidance: float
                 ) -> torch.Tensor:
        """Guided velocity v_uncond + s (v_cond − v_uncond); u None = unconditional."""
        v_uncond = self.net(x, t, None)
        if u is None or guidance == 0:
            return v_uncond
        return v_uncond + guidance * (self.net(x, t, u) - v_uncond)

    @torch.no_grad()
    def sample(self, coords: np.ndarray | None, n: int, *, seed: int = 0, guidance: float = 5.0,
               steps: int = 20) -> np.ndarray:
        """Latents float32 (M, n, d) for coordinates (M, 2) by Euler steps from noise.

        ``coords=None`` draws ``n`` unconditional latents as (1, n, d). The noise depends only
        on ``seed`` and the shapes, so guidance 0 and the unconditional model start alike.
        """
        x, u = start_noise(self, coords, n, seed)
        dt = 1.0 / steps
        for i in range(steps):
            t = torch.full((len(x),), i * dt, device=x.device)
            x = x + dt * self.velocity(x, t, u, guidance)
        return to_latents(self, x, n)


def start_noise(model: nn.Module, coords: np.ndarray | None, n: int, seed: int
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sampling's start: noise x (M·n, d) drawn on the CPU from ``seed`` (the same draws on any
    device) and the standardised coordinates repeated n times (M·n, 2), or None (M = 1)."""
    device = next(model.parameters()).device
    m = 1 if coords is None else len(coords)
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn((m * n, model.config.latent_dim), generator=g).to(device)  # (M·n, d)
    if coords is None:
        return x, None
    u = torch.as_tensor(np.asarray(coords, np.float32), device=device)
    return x, model.scale.u(u).repeat_interleave(n, dim=0)  # (M·n, 2)


def to_latents(model: nn.Module, x: torch.Tensor, n: int) -> np.ndarray:
    """Standardised samples (M·n, d) back to latents float32 (M, n, d)."""
    return model.scale.z_back(x).reshape(-1, n, model.config.latent_dim).float().cpu().numpy()


@dataclass
class FitResult:
    """History of a fit: mean loss per epoch on the training and held-out split."""

    train_loss: list[float]
    val_loss: list[float]
    seconds: float


def fit_latent_model(
    model: nn.Module,
    latents: np.ndarray,
    coords: np.ndarray,
    *,
    epochs: int = 200,
    batch_size: int = 256,
    lr: float = 3e-4,
    weight_decay: float = 1e-4,
    val_fraction: float = 0.1,
    val_mask: np.ndarray | None = None,
    seed: int = 0,
    device: str = "auto",
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> FitResult:
    """Train a flow matching or latent diffusion model (anything with ``loss`` and ``scale``).

    The study's recipe: AdamW (lr 3e-4, weight decay 1e-4), cosine schedule over all steps,
    90/10 split (``val_mask``, bool (N,), names the held-out rows instead of a random
    ``val_fraction``). ``on_epoch(epoch, train_loss, val_loss)`` reports progress.
    """
    import time

    latents = np.asarray(latents, np.float32)
    coords = np.asarray(coords, np.float32)
    if len(latents) != len(coords) or len(latents) < 2:
        raise ValueError(f"need ≥ 2 latents with one coordinate each, got {len(latents)} and {len(coords)}")
    start = time.perf_counter()
    dev = pick_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if val_mask is None:
        order = rng.permutation(len(latents))
        n_val = int(round(val_fraction * len(latents))) if len(latents) >= 10 else 0
        val, train = order[:n_val], order[n_val:]
    else:
        val, train = np.flatnonzero(val_mask), np.flatnonzero(~np.asarray(val_mask, bool))
    if len(train) == 0:
        raise ValueError("no training rows left after the held-out split")
    model.scale.fit(latents[train], coords[train])
    model.to(dev).train()
    z = model.scale.z(torch.as_tensor(latents, device=dev))
    u = model.scale.u(torch.as_tensor(coords, device=dev))
    steps_per_epoch = math.ceil(len(train) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
    result = FitResult([], [], 0.0)
    train_t = torch.as_tensor(train, device=dev)
    for epoch in range(epochs):
        perm = train_t[torch.randperm(len(train_t), device=dev)]
        total = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            loss = model.loss(z[idx], u[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        result.train_loss.append(total / len(train))
        result.val_loss.append(_held_out_loss(model, z, u, val, seed))
        if on_epoch is not None:
            on_epoch(epoch, result.train_loss[-1], result.val_loss[-1])
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


@torch.no_grad()
def _held_out_loss(model: nn.Module, z: torch.Tensor, u: torch.Tensor, val: np.ndarray,
                   seed: int) -> float:
    """Loss on the held-out rows with fixed noise (comparable across epochs); NaN without them."""
    if len(val) == 0:
        return float("nan")
    model.eval()
    g = torch.Generator(device=z.device).manual_seed(seed)
    idx = torch.as_tensor(val, device=z.device)
    loss = model.loss(z[idx], u[idx], generator=g).item()
    model.train()
    return loss
