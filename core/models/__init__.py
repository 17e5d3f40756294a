"""Generative models, one file per family (``vae``, ``gan``), and what their configs share."""

from __future__ import annotations

from typing import Any


def check_shape_fields(config: Any) -> None:
    """Raise ValueError naming the bad field, its value and the allowed range.

    The fields every image model's config has: image_size, channels, latent_dim, base_channels,
    max_channels (both families grow or shrink by powers of two between 4×4 and the image).
    """
    s = config.image_size
    if not (isinstance(s, int) and 32 <= s <= 512 and s & (s - 1) == 0):
        raise ValueError(
            f"image_size={s!r} must be a power of two between 32 and 512 "
            "(resize or crop the images to 32, 64, 128, 256 or 512 pixels)"
        )
    if not (isinstance(config.channels, int) and 1 <= config.channels <= 3):
        raise ValueError(f"channels={config.channels!r} must be between 1 and 3")
    if not (isinstance(config.latent_dim, int) and 2 <= config.latent_dim <= 512):
        raise ValueError(f"latent_dim={config.latent_dim!r} must be between 2 and 512")
    if not (isinstance(config.base_channels, int) and 1 <= config.base_channels <= 1024):
        raise ValueError(f"base_channels={config.base_channels!r} must be between 1 and 1024")
    mc = config.max_channels
    if not (isinstance(mc, int) and config.base_channels <= mc <= 4096):
        raise ValueError(f"max_channels={mc!r} must be between base_channels={config.base_channels} and 4096")
