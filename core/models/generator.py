"""One interface for "a generator": z (B, d) -> images (B, C, H, W) in [0, 1].

Both families serve: a VAE through its decoder, a GAN through its generator at the resolution
it has grown to. Everything downstream (maps of prior samples, variations, calibration) asks
this module for the decoder, so it never needs to know which family it holds.

A GAN has no encoder: :func:`invert` places real frames in its latent space by optimising z.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

from core.models.device import pick_device
from core.models.gan import GAN
from core.models.vae import VAE

log = logging.getLogger(__name__)


def decoder_for(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function z (B, d) -> images (B, C, H, W) in [0, 1] of a VAE or GAN."""
    if isinstance(model, GAN):
        return model.generate
    if isinstance(model, VAE):
        return model.decode
    raise ValueError(f"{type(model).__name__} has no decoder; pass a VAE or a GAN")


def latent_dim_of(model: nn.Module) -> int:
    """d, the length of the z the decoder takes."""
    decoder_for(model)  # same check, same message
    return int(model.config.latent_dim)


def image_shape_of(model: nn.Module) -> tuple[int, int, int]:
    """(C, H, W) of the decoded images: a GAN's output size at its stage, a VAE's image size."""
    decoder_for(model)
    side = model.output_size if isinstance(model, GAN) else model.config.image_size
    return model.config.channels, side, side


def resolve_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """None: where the model's parameters are; otherwise a preference for ``pick_device``."""
    if device is None:
        return next(model.parameters()).device
    return device if isinstance(device, torch.device) else pick_device(device)


def prior_latents(n: int, d: int, seed: int = 0) -> np.ndarray:
    """n draws from the prior N(0, I): float32 (n, d)."""
    if not (isinstance(n, int) and n >= 0):
        raise ValueError(f"n={n!r} must be an integer >= 0")
    if not (isinstance(d, int) and d >= 1):
        raise ValueError(f"d={d!r} must be an integer >= 1")
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def check_latents(model: nn.Module, z: np.ndarray) -> np.ndarray:
    """float32 (n, d) latents for this model, or ValueError saying what is wrong."""
    z = np.asarray(z, dtype=np.float32)
    d = latent_dim_of(model)
    if z.ndim != 2 or z.shape[1] != d:
        raise ValueError(f"latents of shape {z.shape} must be (n, {d}) for this model")
    if not np.isfinite(z).all():
        raise ValueError("latents contain NaN or inf")
    return z


def decode_batches(
    model: nn.Module,
    z: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> Iterator[np.ndarray]:
    """Decode latents (n, d) batch by batch: yields float32 (B, C, H, W) arrays in [0, 1].

    Only one batch of images exists at a time, so n can be as large as the caller likes.
    """
    _check_batch_size(batch_size)
    z = check_latents(model, z)
    device = resolve_device(model, device)
    for start in range(0, len(z), batch_size):
        yield decode(model, z[start : start + batch_size], device)


def decode(model: nn.Module, z: np.ndarray, device: torch.device) -> np.ndarray:
    """One batch: float32 latents (B, d) -> float32 images (B, C, H, W) in [0, 1], no grad."""
    model.eval().to(device)
    with torch.no_grad():
        zb = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(device)  # (B, d)
        return decoder_for(model)(zb).float().cpu().numpy()  # (B, C, H, W)


def _check_batch_size(batch_size: int) -> None:
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1")


def invert(
    model: nn.Module,
    images: np.ndarray,
    *,
    steps: int = 200,
    lr: float = 0.05,
    restarts: int = 4,
    batch_size: int = 64,
    seed: int = 0,
    device: torch.device | str | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Find z with G(z) ≈ image for each frame (GAN inversion): Adam on z, MSE loss.

    Parameters
    ----------
    images : (N, [C,] H, W) float in [0, 1], at the decoder's output size
    steps, lr : Adam iterations and step size
    restarts : starting points per frame; the best fit is kept. Inversion has local minima
        (on a small test generator one start in four stalls at 10× the error of the others)
    seed : start r of frame i is the prior draw ``default_rng([seed, i, r])``, and the loss is
        summed per frame, so the result does not depend on ``batch_size``; start 0 is the same
        for any number of restarts, so more restarts never fit worse
    on_batch : called as ``on_batch(done, N)`` after each batch

    Returns
    -------
    z : float32 (N, d). A GAN ignores the length of z (it pixel-normalises it), so each z is
        scaled to length sqrt(d), where the prior's draws lie: γ then means the same for
        inverted frames as for prior samples.
    recon_error : float32 (N,), the per-frame mean squared error of G(z) against the frame
    """
    shape = image_shape_of(model)
    x_all = np.asarray(images, dtype=np.float32)
    if x_all.ndim == 3 and shape[0] == 1:
        x_all = x_all[:, None]  # (N, 1, H, W)
    if x_all.ndim != 4 or x_all.shape[1:] != shape:
        raise ValueError(
            f"images of shape {np.shape(images)} do not match the decoder output (N, "
            f"{', '.join(map(str, shape))}): preprocess them like the training images"
        )
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps={steps!r} must be an integer >= 1")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr={lr!r} must be > 0")
    if not (isinstance(restarts, int) and restarts >= 1):
        raise ValueError(f"restarts={restarts!r} must be an integer >= 1")
    _check_batch_size(batch_size)
    d, n = latent_dim_of(model), len(x_all)
    device = resolve_device(model, device)
    model.eval().to(device)
    generate = decoder_for(model)
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)  # only z learns
    zs, errors = [], []
    try:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            x = torch.from_numpy(x_all[start : start + b]).to(device)  # (B, C, H, W)
            x = x.repeat(restarts, 1, 1, 1)  # (R·B, C, H, W): row r·B + j is start r of frame j
            z0 = np.stack([np.random.default_rng([seed, start + j, r]).standard_normal(d)
                           for r in range(restarts) for j in range(b)]).astype(np.float32)
            z = torch.from_numpy(z0).to(device).requires_grad_(True)  # (R·B, d)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                loss = (generate(z) - x).pow(2).flatten(1).mean(1).sum()  # per-frame MSE, summed
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                err = (generate(z) - x).pow(2).flatten(1).mean(1).view(restarts, b)  # (R, B)
                best = err.argmin(dim=0)  # first of equals: start 0 wins ties
                cols = torch.arange(b, device=device)
                z = z.view(restarts, b, d)[best, cols]  # (B, d)
                if isinstance(model, GAN):
                    z = z * (d**0.5 / z.norm(dim=1, keepdim=True).clamp_min(1e-12))
                errors.append(err[best, cols].cpu().numpy())
                zs.append(z.cpu().numpy())
            if on_batch is not None:
                on_batch(min(start + batch_size, n), n)
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    if not zs:
        return np.zeros((0, d), np.float32), np.zeros(0, np.float32)
    z_out, err = np.concatenate(zs).astype(np.float32), np.concatenate(errors).astype(np.float32)
    log.info("inverted %d frames: median MSE %.4g", n, float(np.median(err)))
    return z_out, err
