"""The study's evaluation of samplers (arXiv 2606.14999, Supplementary Note 2), on any map.

Query points are map points held out from every fit (a seeded 10 % of the map, the same for all
samplers and for the training flows: :data:`HELDOUT`), drawn evenly per cluster. For each query the sampler is
asked for one latent at the point's map coordinate u; the scores are

- ``latent_l2``: ‖ẑ − z*‖₂ to the point's own latent z* (latent units);
- ``pixel_mse``: mean over pixels of (G(ẑ) − G(z*))², both decoded by the map's model, so
  the decoder's own reconstruction error does not enter (intensity² with images in [0, 1]);
- ``landing``: ‖P(ẑ) − u‖₂, where the generated latent lands when placed with the map's stored
  projection (map units): whether it went where it was asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from core.synthesis.base import Sampler

HELDOUT = {"fraction": 0.1, "seed": 0}  # the study's 90/10 split; one split per map, whoever fits


def heldout_mask(n: int, *, fraction: float = HELDOUT["fraction"], seed: int = HELDOUT["seed"]) -> np.ndarray:
    """bool (n,): the rows no sampler is fitted on, a seeded ``fraction`` of the map."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction={fraction!r} must be in [0, 1)")
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).permutation(n)[: int(round(fraction * n))]] = True
    return mask


def query_rows(labels: np.ndarray, heldout: np.ndarray, *, per_cluster: int, seed: int = 0) -> np.ndarray:
    """Up to ``per_cluster`` held-out members of each cluster (noise excluded), sorted rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(heldout & (labels == label))
        rows.extend(rng.choice(members, min(per_cluster, len(members)), replace=False))
    if not rows:
        raise ValueError("no held-out point belongs to a cluster: use a clustered map with more points")
    return np.sort(np.asarray(rows, np.int64))


def score_samplers(
    samplers: Mapping[str, Sampler],
    targets: np.ndarray,
    coords: np.ndarray,
    *,
    decode: Callable[[np.ndarray], np.ndarray],
    project: Callable[[np.ndarray], np.ndarray],
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """One row per (sampler, query): ``sampler``, ``query`` (0..Q−1) and the three scores; and
    the seconds each sampler took to draw the Q latents.

    Parameters
    ----------
    samplers : name -> fitted Sampler
    targets : (Q, d) latents of the query points; coords : (Q, 2) their map coordinates
    decode : latents (B, d) -> images (B, ...); project : latents (B, d) -> map coords (B, 2)
    """
    targets = np.asarray(targets, np.float32)
    coords = np.asarray(coords, np.float64)
    target_images = decode(targets)
    frames, seconds = [], {}
    for name, sampler in samplers.items():
        start = time.perf_counter()
        z = sampler.sample(coords, n=1, seed=seed)[:, 0]  # (Q, d)
        seconds[name] = time.perf_counter() - start
        images = decode(z)
        frames.append(pd.DataFrame({
            "sampler": name,
            "query": np.arange(len(targets)),
            "latent_l2": np.linalg.norm(z - targets, axis=1),
            "pixel_mse": ((images - target_images) ** 2).reshape(len(z), -1).mean(1),
            "landing": np.linalg.norm(np.asarray(project(z), np.float64) - coords, axis=1),
        }))
    return pd.concat(frames, ignore_index=True), seconds


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of each score per sampler, best latent ℓ2 first."""
    table = scores.groupby("sampler", sort=False).agg(
        n=("query", "size"),
        latent_l2_mean=("latent_l2", "mean"), latent_l2_std=("latent_l2", "std"),
        pixel_mse_mean=("pixel_mse", "mean"), pixel_mse_std=("pixel_mse", "std"),
        landing_mean=("landing", "mean"), landing_std=("landing", "std"),
    )
    return table.sort_values("latent_l2_mean").reset_index()
