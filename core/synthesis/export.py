"""Generated images as files a scientist takes away: NPZ (arrays + provenance) and multi-page TIFF.

Both carry what made them (sampler, its parameters, seed, model and map ids, the asked map
coordinates and where each generated latent landed when projected back), so a sequence can be
regenerated and its images told from measured ones.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np


def _checked(images: Any, asked: Any, landed: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = np.asarray(images, dtype=np.float32)
    asked, landed = np.asarray(asked, dtype=np.float64), np.asarray(landed, dtype=np.float64)
    if images.ndim != 4:
        raise ValueError(f"images of shape {images.shape} must be (n, C, H, W)")
    n = len(images)
    for name, xy in (("asked", asked), ("landed", landed)):
        if xy.shape != (n, 2):
            raise ValueError(f"{name} of shape {xy.shape} must be ({n}, 2): one map point per image")
    return images, asked, landed


def to_npz(images: Any, asked: Any, landed: Any, provenance: Mapping[str, Any]) -> bytes:
    """``np.load`` gives ``images`` (n, C, H, W) float32 in [0, 1], ``asked`` and ``landed`` (n, 2)
    map coordinates, and ``provenance``, a JSON string (sampler, params, seed, ids)."""
    images, asked, landed = _checked(images, asked, landed)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, asked=asked, landed=landed,
                        provenance=np.array(json.dumps(dict(provenance), sort_keys=True)))
    return buffer.getvalue()


def to_tiff(images: Any, asked: Any, landed: Any, provenance: Mapping[str, Any]) -> bytes:
    """One page per image in sequence order (float32, 0 = black, 1 = white); the provenance and
    the asked/landed coordinates in the TIFF's ImageDescription as JSON (tifffile reads it back)."""
    import tifffile  # only an export needs it

    images, asked, landed = _checked(images, asked, landed)
    pages = images[:, 0] if images.shape[1] == 1 else images  # (n, H, W) or (n, C, H, W)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pages, photometric="minisblack", metadata={
        "axes": "IYX" if pages.ndim == 3 else "ICYX", **dict(provenance),
        "asked": asked.tolist(), "landed": landed.tolist()})
    return buffer.getvalue()
