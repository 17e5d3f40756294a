"""UMAP-guided PCA sampling: a latent for any map coordinate without training.

The Latent Space Explorer study (arXiv 2606.14999, Supplementary Note 2; DESIGN §1): keep the
*core* members of each HDBSCAN cluster (membership probability > 0.8); per cluster take the
centroid c_j of their map coordinates and a PCA of their latents. For a query u, weight the
k = 2 nearest centroids by w_j ∝ exp(−‖u − c_j‖² / T) with T = 0.1, pick a cluster by w, draw
Gaussian noise in that cluster's PCA space (variance of each component as fitted), map it back,
and clamp every dimension to μ ± 2.5σ of that cluster's core latents so no draw leaves the
range the data covers.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> coords = np.concatenate([rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))])
>>> latents = np.concatenate([rng.normal(-3, 1, (50, 4)), rng.normal(3, 1, (50, 4))])
>>> labels, probs = np.repeat([0, 1], 50), np.ones(100)
>>> s = UMAPGuidedPCA().fit(latents, coords, labels, probs)
>>> bool(s.sample([[5.0, 5.0]], n=8, seed=1).mean() > 1)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.synthesis.base import Sampler, check_coords, check_map


class UMAPGuidedPCA(Sampler):
    """Per-cluster PCA draws, the cluster picked by a softmax over nearby map centroids.

    Parameters
    ----------
    temperature : float, default 0.1
        T in w_j ∝ exp(−‖u − c_j‖² / T), in squared map units; small T = nearest cluster only.
    k_nearest : int, default 2
        Centroids that share the weight (the others get 0).
    core_membership : float, default 0.8
        Members with HDBSCAN membership probability above this build the clusters.
    clamp_sigma : float, default 2.5
        Each latent dimension is clamped to μ ± clamp_sigma·σ of the picked cluster's core.
    n_components : int or None, default None
        PCA components per cluster; None keeps all (min(d, n_core − 1)).
    noise_scale : float, default 1.0
        Multiplies the standard deviation of every PCA component (1 = the cluster's spread).
    """

    name = "umap_pca"

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        k_nearest: int = 2,
        core_membership: float = 0.8,
        clamp_sigma: float = 2.5,
        n_components: int | None = None,
        noise_scale: float = 1.0,
    ):
        self.temperature = temperature
        self.k_nearest = k_nearest
        self.core_membership = core_membership
        self.clamp_sigma = clamp_sigma
        self.n_components = n_components
        self.noise_scale = noise_scale

    @property
    def params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "k_nearest": self.k_nearest,
            "core_membership": self.core_membership,
            "clamp_sigma": self.clamp_sigma,
            "n_components": self.n_components,
            "noise_scale": self.noise_scale,
        }

    @property
    def latent_dim(self) -> int:
        self._check_fitted()
        return int(self.means_.shape[1])

    def _validate(self) -> None:
        for name in ("temperature", "clamp_sigma"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r} must be a finite number > 0")
        if not (isinstance(self.noise_scale, (int, float)) and 0 <= self.noise_scale < np.inf):
            raise ValueError(f"noise_scale={self.noise_scale!r} must be a finite number >= 0")
        if not (isinstance(self.k_nearest, int) and self.k_nearest >= 1):
            raise ValueError(f"k_nearest={self.k_nearest!r} must be an integer >= 1")
        if not (isinstance(self.core_membership, (int, float)) and 0 <= self.core_membership < 1):
            raise ValueError(f"core_membership={self.core_membership!r} must be in [0, 1)")
        if self.n_components is not None and not (
            isinstance(self.n_components, int) and self.n_components >= 1
        ):
            raise ValueError(f"n_components={self.n_components!r} must be None or an integer >= 1")

    def fit(self, latents: Any, coords: Any, labels: Any, probabilities: Any) -> UMAPGuidedPCA:
        """Learn centroids, per-cluster PCA and clamp ranges from one clustered map.

        Parameters
        ----------
        latents : array-like (N, d); coords : array-like (N, 2)
        labels : array-like (N,) int, −1 = noise; probabilities : array-like (N,) in [0, 1]
        """
        self._validate()
        latents, coords = check_map(latents, coords)
        labels = np.asarray(labels).astype(np.int64)
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if labels.shape != (len(latents),) or probabilities.shape != (len(latents),):
            raise ValueError(f"labels and probabilities must have shape ({len(latents)},)")
        core = (labels >= 0) & (probabilities > self.core_membership)
        clusters, centroids, means, stds, components, scales = [], [], [], [], [], []
        for label in np.unique(labels[core]):
            z = latents[core & (labels == label)].astype(np.float64)
            if len(z) < 2:  # one point has no spread to sample from
                continue
            mean = z.mean(0)
            # PCA by SVD of the centred core latents: rows of vt are the components.
            _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
            keep = min(len(s), len(z) - 1, self.n_components or len(s))
            clusters.append(int(label))
            centroids.append(coords[core & (labels == label)].mean(0))
            means.append(mean)
            stds.append(z.std(0))
            components.append(vt[:keep])  # (k, d)
            scales.append(s[:keep] / np.sqrt(len(z) - 1))  # std of each component
        if not clusters:
            raise ValueError(
                f"no cluster has 2 or more core members (membership > {self.core_membership}); "
                "cluster the map first or lower core_membership"
            )
        self.clusters_ = np.asarray(clusters)
        self.centroids_ = np.stack(centroids)  # (C, 2)
        self.means_ = np.stack(means)  # (C, d)
        self.stds_ = np.stack(stds)  # (C, d)
        self.components_ = components  # C arrays (k_c, d)
        self.scales_ = scales  # C arrays (k_c,)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "centroids_"):
            raise RuntimeError("this UMAPGuidedPCA is not fitted: call fit first")

    def weights(self, coords: Any) -> np.ndarray:
        """Cluster weights (M, C): softmax of −‖u − c_j‖²/T over the k nearest, 0 elsewhere."""
        self._check_fitted()
        coords = check_coords(coords)
        d2 = ((coords[:, None, :] - self.centroids_[None]) ** 2).sum(-1)  # (M, C)
        k = min(self.k_nearest, d2.shape[1])
        nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]  # (M, k)
        logits = -np.take_along_axis(d2, nearest, 1) / self.temperature
        logits -= logits.max(1, keepdims=True)  # far from every centroid must not underflow to 0/0
        w = np.exp(logits)
        w /= w.sum(1, keepdims=True)
        out = np.zeros_like(d2)
        np.put_along_axis(out, nearest, w, 1)
        return out

    def _sample(self, coords: np.ndarray, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        weights = self.weights(coords)
        out = np.empty((len(coords), n, self.latent_dim))
        for i, w in enumerate(weights):
            picks = rng.choice(len(w), size=n, p=w)
            for j, c in enumerate(picks):
                eps = rng.standard_normal(len(self.scales_[c])) * self.scales_[c] * self.noise_scale
                z = self.means_[c] + eps @ self.components_[c]
                half = self.clamp_sigma * self.stds_[c]
                out[i, j] = np.clip(z, self.means_[c] - half, self.means_[c] + half)
        return out
