"""Ask a sampler for latents at map coordinates, decode them, and place them back on the map.

Placing the generated latents with the map's own stored projection is the honest check of a
sampler: an image asked for at u is only "the state at u" if its latent lands near u. How far it
landed is reported beside how far u is from the nearest measured frame, so an empty-space click
that lands on the nearest cluster (UMAP-guided PCA does this by construction: it only draws inside
clusters) reads as what it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.synthesis.base import Sampler, check_coords

Decode = Callable[[np.ndarray], np.ndarray]  # latents (B, d) -> images (B, C, H, W) in [0, 1]
Project = Callable[[np.ndarray], np.ndarray]  # latents (B, d) -> map coordinates (B, 2)


@dataclass(frozen=True)
class Generated:
    """What one request produced: M asked map points, n draws each."""

    asked: np.ndarray  # (M, 2) map coordinates asked for
    latents: np.ndarray  # (M, n, d) float32
    images: np.ndarray  # (M, n, C, H, W) float32 in [0, 1]
    landed: np.ndarray  # (M, n, 2) where each latent lands on the map (stored projection)
    nearest_measured: np.ndarray  # (M,) distance from each asked point to the nearest map point

    @property
    def distances(self) -> np.ndarray:
        """(M, n) map distance from the asked point to where each draw landed."""
        return np.hypot(*(self.landed - self.asked[:, None, :]).transpose(2, 0, 1))


def generate(sampler: Sampler, coords: np.ndarray, *, n: int, seed: int, decode: Decode, project: Project,
             embedding: np.ndarray) -> Generated:
    """Draw ``n`` latents per map coordinate, decode them and project them back.

    Parameters
    ----------
    sampler : a fitted Sampler of this map
    coords : (M, 2) map coordinates (empty space included)
    n, seed : draws per coordinate and the sampler's seed (same seed, same images)
    decode : the map's model's decoder, latents (B, d) -> images (B, C, H, W)
    project : the map's stored projection, latents (B, d) -> (B, 2)
    embedding : (N, 2) the map's points, to tell how far each asked point is from measured data
    """
    asked = check_coords(coords)
    latents = sampler.sample(asked, n=n, seed=seed)  # (M, n, d)
    flat = latents.reshape(-1, latents.shape[-1])  # (M·n, d)
    images = np.asarray(decode(flat), dtype=np.float32)
    images = images.reshape(*latents.shape[:2], *images.shape[1:])  # (M, n, C, H, W)
    landed = np.asarray(project(flat), dtype=np.float64)
    if landed.shape != (len(flat), 2):
        raise ValueError(f"the projection placed the latents at shape {landed.shape}; a 2-D map is needed")
    return Generated(asked, latents, images, landed.reshape(*latents.shape[:2], 2),
                     nearest_distance(asked, embedding))


def nearest_distance(points: np.ndarray, embedding: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(M,) distance from each point (M, 2) to the nearest of the map's N points (N, 2)."""
    embedding = np.asarray(embedding, dtype=np.float64)[:, :2]
    best = np.full(len(points), np.inf)
    for start in range(0, len(embedding), chunk):  # (M, chunk) at a time: a 1M-point map stays small
        block = embedding[start:start + chunk]
        d2 = ((points[:, None, :] - block[None]) ** 2).sum(-1)
        best = np.minimum(best, d2.min(1))
    return np.sqrt(best)
