"""Generative models, one file per family (``vae``, ``gan``), and what their configs share.

Any square image side that ingest produces trains (``core.data.preprocess.SIZE_RANGE``, so no step
accepts a size a later one refuses). The convolutions halve or double by powers of two between
4×4 and a *grid* side, the power of two at or above the image side (28 -> 32, 101 -> 128, 64 ->
64): images are resized onto the grid on the way in and back to their own side on the way out
(bilinear, antialiased when shrinking). Resizing rather than padding keeps every grid pixel a
picture of the sample, so a GAN's critic never sees a border the generator has to imitate.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from core.data.preprocess import SIZE_RANGE
from core.limits import BASE_CHANNELS, LATENT_DIM


def grid_size(image_size: int) -> int:
    """The power of two >= image_size that the convolutions work at (28 -> 32, 101 -> 128)."""
    return 1 << (image_size - 1).bit_length()


def resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, side, side); the same tensor when it already has that side.

    Bilinear weights are non-negative and sum to one, so values in [0, 1] stay in [0, 1].
    """
    if x.shape[-2:] == (side, side):
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)


def square_side(shape: tuple[int, ...], dataset_id: str) -> int:
    """The side of a dataset's square frames (N, [C,] S, S), or ValueError saying how to fix it."""
    if shape[-2] != shape[-1]:
        raise ValueError(
            f"dataset {dataset_id} has {shape[-2]}×{shape[-1]} px frames; the models need square "
            f"frames: ingest the images again with a size (e.g. size=64)"
        )
    return int(shape[-1])


def check_shape_fields(config: Any) -> None:
    """Raise ValueError naming the bad field, its value and the allowed range.

    The fields every image model's config has: image_size, channels, latent_dim, base_channels,
    max_channels.
    """
    s, (lo, hi) = config.image_size, SIZE_RANGE
    if not (isinstance(s, int) and not isinstance(s, bool) and lo <= s <= hi):
        raise ValueError(
            f"image_size={s!r} must be an integer between {lo} and {hi} "
            f"(ingest the images again with a size in that range, e.g. 64)"
        )
    if not (isinstance(config.channels, int) and 1 <= config.channels <= 4):  # ingest keeps RGBA
        raise ValueError(f"channels={config.channels!r} must be between 1 and 4")
    (d_lo, d_hi), (c_lo, c_hi) = LATENT_DIM, BASE_CHANNELS
    if not (isinstance(config.latent_dim, int) and d_lo <= config.latent_dim <= d_hi):
        raise ValueError(f"latent_dim={config.latent_dim!r} must be between {d_lo} and {d_hi}")
    if not (isinstance(config.base_channels, int) and c_lo <= config.base_channels <= c_hi):
        raise ValueError(f"base_channels={config.base_channels!r} must be between {c_lo} and {c_hi}")
    mc = config.max_channels
    if not (isinstance(mc, int) and config.base_channels <= mc <= 4096):
        raise ValueError(f"max_channels={mc!r} must be between base_channels={config.base_channels} and 4096")
