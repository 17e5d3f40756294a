"""The study's baselines for synthesis from the map: retrieval of neighbours, and PCA draws that
ignore the coordinate. They bound what a sampler must beat (DESIGN §1, Supplementary Note 2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.synthesis.base import Sampler, check_map
from core.synthesis.umap_pca import UMAPGuidedPCA


class KNNRetrieval(Sampler):
    """The mean latent of the k map points nearest to u: no model, only the stored map.

    A deterministic answer (every draw is the same), so it has no spread at all; it shows how
    far plain look-up of measured neighbours gets. ``k=1`` returns a measured latent unchanged.
    """

    name = "knn_retrieval"

    def __init__(self, *, k: int = 5):
        self.k = k

    @property
    def params(self) -> dict[str, Any]:
        return {"k": self.k}

    @property
    def latent_dim(self) -> int:
        return int(self.latents_.shape[1])

    def fit(self, latents: Any, coords: Any) -> KNNRetrieval:
        if not (isinstance(self.k, int) and self.k >= 1):
            raise ValueError(f"k={self.k!r} must be an integer >= 1")
        from sklearn.neighbors import NearestNeighbors

        self.latents_, coords = check_map(latents, coords)
        self.nn_ = NearestNeighbors(n_neighbors=min(self.k, len(coords))).fit(coords)
        return self

    def _sample(self, coords: np.ndarray, n: int, seed: int) -> np.ndarray:
        if not hasattr(self, "nn_"):
            raise RuntimeError("this KNNRetrieval is not fitted: call fit first")
        idx = self.nn_.kneighbors(coords, return_distance=False)  # (M, k)
        mean = self.latents_[idx].mean(1)  # (M, d)
        return np.repeat(mean[:, None], n, axis=1)


class PCARandom(UMAPGuidedPCA):
    """Gaussian draws in the PCA space of all latents, whatever u is: UMAP-guided PCA with one
    cluster holding every point (same clamp to μ ± 2.5σ)."""

    name = "pca_random"

    def fit(self, latents: Any, coords: Any) -> PCARandom:  # type: ignore[override]
        n = len(np.asarray(coords))
        return super().fit(latents, coords, np.zeros(n, np.int64), np.ones(n))

    @property
    def params(self) -> dict[str, Any]:
        return {k: v for k, v in super().params.items() if k in ("clamp_sigma", "n_components", "noise_scale")}
