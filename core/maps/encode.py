"""Images -> posterior mean and log-variance, in batches, with bounded memory.

The posterior mean is what the map is built from; the log-variance feeds the "active units"
figure (KL per dimension) and lets a projection weigh uncertain frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from core.data.results.datasets import images_node, iter_images


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _as_batch(model: nn.Module, batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """Check one numpy batch against the model config; return (B, C, S, S) float32 on device."""
    cfg = model.config
    batch = np.asarray(batch)
    if batch.ndim == 3:
        batch = batch[:, None]  # (B, 1, H, W)
    want = (cfg.channels, cfg.image_size, cfg.image_size)
    if batch.ndim != 4 or batch.shape[1:] != want:
        raise ValueError(
            f"images of shape {batch.shape} do not match the model, which expects "
            f"(N, {', '.join(map(str, want))}) or (N, {cfg.image_size}, {cfg.image_size}) "
            "for one channel: preprocess them the way the training images were"
        )
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or inf: drop or fill those frames before encoding")
    return x


def encode_batches(
    model: nn.Module,
    batches: Iterable[np.ndarray | tuple[int, np.ndarray]],
    *,
    total: int | None = None,
    device: torch.device | str | None = None,
    on_batch: Callable[[int, int | None], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode a stream of image batches; returns (mu, logvar), each float32 (N, d).

    Each item is an (B, [C,] H, W) array, or a ``(start, batch)`` pair as yielded by
    ``core.data.results.datasets.iter_images``. Only one batch of images is in memory at a time; the outputs are
    N × d floats. ``on_batch(done, total)`` is called after each batch (total may be None).
    ``device`` defaults to where the model's parameters are; another device moves the model.
    """
    device = torch.device(device) if device is not None else _device_of(model)
    was_training = model.training
    model.eval().to(device)
    mus, logvars, done = [], [], 0
    try:
        with torch.inference_mode():
            for item in batches:
                batch = item[1] if isinstance(item, tuple) else item
                mu, logvar = model.encode(_as_batch(model, batch, device))  # 2 × (B, d)
                mus.append(mu.float().cpu().numpy())
                logvars.append(logvar.float().cpu().numpy())
                done += len(mu)
                if on_batch is not None:
                    on_batch(done, total)
    finally:
        model.train(was_training)
    d = model.config.latent_dim
    if not mus:
        return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
    return np.concatenate(mus), np.concatenate(logvars)


def encode_images(
    model: nn.Module,
    images: np.ndarray,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    on_batch: Callable[[int, int | None], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior (mu, logvar), each float32 (N, d), of an (N, [C,] H, W) array in [0, 1].

    Example
    -------
    >>> mu, logvar = encode_images(model, frames)  # frames (N, 64, 64) -> mu (N, 32)
    """
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1")
    n = len(images)
    batches = (images[i : i + batch_size] for i in range(0, n, batch_size))
    return encode_batches(model, batches, total=n, device=device, on_batch=on_batch)


def encode_dataset(
    model: nn.Module,
    store: Any,
    dataset_id: str,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    on_batch: Callable[[int, int | None], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode a stored dataset batch by batch (see :func:`core.data.results.datasets.iter_images`)."""
    total = int(images_node(store, dataset_id).shape[0])
    batches = iter_images(store, dataset_id, batch_size)  # (start, (B, [C,] H, W)) pairs
    return encode_batches(model, batches, total=total, device=device, on_batch=on_batch)
