"""Reconstruction quality of a VAE on its held-out frames: MSE, PSNR and SSIM, for clean inputs
and (a denoising VAE) for corrupted inputs, always against the clean image.

Definitions (images in [0, 1], data range 1): MSE is the per-pixel mean squared error; PSNR =
10 log10(1 / MSE) dB per image (MSE floored at 1e-10, so at most 100 dB); SSIM is Wang et al.
(2004) with an 11 × 11 Gaussian window of σ = 1.5, K1 = 0.01, K2 = 0.03, over the window
positions inside the image (as ``skimage.metrics.structural_similarity(gaussian_weights=True,
use_sample_covariance=False, data_range=1)``); images under 11 px (8 px is allowed) use the
largest odd window that fits. Each figure is the mean over images (and channels).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.models.corruption import CorruptionParams, corrupt
from core.models.train import TrainParams, check_images, split_train_val

MSE_FLOOR = 1e-10  # PSNR ≤ 100 dB: a perfect reconstruction stays a finite number in metadata
SSIM_SIGMA, SSIM_RADIUS = 1.5, 5  # skimage: truncate 3.5 σ → radius int(3.5·1.5 + 0.5) = 5, an 11 px window
K1, K2 = 0.01, 0.03


def _gaussian_window(device: torch.device, radius: int) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    g = torch.exp(-(r**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, 11, 11)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image of (B, C, H, W) pairs in [0, 1] → (B,)."""
    b, c, h, w = x.shape
    win = _gaussian_window(x.device, min(SSIM_RADIUS, (min(h, w) - 1) // 2))
    x = x.reshape(b * c, 1, h, w).double()
    y = y.reshape(b * c, 1, h, w).double()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, win)  # valid positions only

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = K1**2, K2**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.reshape(b, c, -1).mean(dim=(1, 2)).float()


def image_scores(x_hat: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image MSE, PSNR (dB) and SSIM of reconstructions against targets, each (B,)."""
    mse = ((x_hat - target) ** 2).flatten(1).mean(dim=1)
    psnr = 10 * torch.log10(1 / mse.clamp_min(MSE_FLOOR))
    return {"mse": mse, "psnr": psnr, "ssim": ssim(x_hat, target)}


def reconstruction_metrics(model: torch.nn.Module, images: np.ndarray, *, corruption: CorruptionParams | None = None,
                           seed: int = 0, batch_size: int = 64) -> dict[str, dict[str, float]]:
    """``{"clean": {mse, psnr, ssim}[, "corrupted": {…}]}``: the model (in eval mode, so the
    posterior mean is decoded) reconstructing ``images`` (N, C, H, W) from clean inputs and, when
    ``corruption`` is active, from inputs corrupted with a generator seeded with ``seed``; every
    score against the clean image. ``model(x)`` returns (x_hat, mu, logvar) as the VAE does."""
    device = next(model.parameters()).device
    kinds = ["clean"] + (["corrupted"] if corruption is not None and corruption.active else [])
    gen = torch.Generator(device=device).manual_seed(seed)
    sums = {kind: {"mse": 0.0, "psnr": 0.0, "ssim": 0.0} for kind in kinds}
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)  # (B, C, S, S)
            for kind in kinds:
                inputs = x if kind == "clean" else corrupt(x, corruption, gen)
                scores = image_scores(model(inputs)[0].clamp(0, 1), x)
                for name, values in scores.items():
                    sums[kind][name] += float(values.sum())
    n = max(len(images), 1)
    return {kind: {name: total / n for name, total in figures.items()} for kind, figures in sums.items()}



def held_out_metrics(model: torch.nn.Module, images: np.ndarray, params: TrainParams) -> dict[str, dict[str, float]]:
    """:func:`reconstruction_metrics` on the frames ``train_vae`` held out for these ``params``
    (the same seeded split), with the run's corruption; {} when nothing was held out."""
    data = check_images(images, model.config)  # (N, C, S, S) float32
    _, val_idx = split_train_val(len(data), params.val_fraction, np.random.default_rng(params.seed))
    if not len(val_idx):
        return {}
    return reconstruction_metrics(model, data[val_idx], corruption=params.corruption, seed=params.seed,
                                  batch_size=params.batch_size)
