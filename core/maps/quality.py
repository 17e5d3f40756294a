"""Figures of merit for a latent space and its clustering, as plain JSON-able numbers.

- :func:`participation_ratio`: how many dimensions the latents really spread over.
- :func:`active_units`: latent dimensions the encoder uses (KL to the prior above a threshold).
- :func:`cluster_scores`: silhouette, Davies–Bouldin and Calinski–Harabasz of a labelling.
- :func:`latent_quality`: all of them in one dict, ready for Tiled metadata.

Example
-------
>>> import numpy as np
>>> from core.maps.quality import participation_ratio
>>> t = np.linspace(0, 1, 100)
>>> round(participation_ratio(np.stack([t, 2 * t, -t], axis=1)), 6)
1.0
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SILHOUETTE_SAMPLE = 5000  # silhouette is O(n^2): score a seeded sample of at most this many points


def participation_ratio(X: Any) -> float:
    """Effective number of dimensions: ``(sum λ)^2 / sum λ^2`` of the covariance eigenvalues.

    ``d`` for an isotropic cloud in ``d`` dimensions, 1 for points on a line, 2 for a plane
    with equal variance along both axes; 0.0 when all points coincide (no spread at all).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        At least 2 finite rows.

    Returns
    -------
    float
    """
    X = _check_matrix(X, "X", min_rows=2)
    eigenvalues = np.clip(np.linalg.eigvalsh(np.cov(X, rowvar=False).reshape(X.shape[1], -1)),
                          0.0, None)
    denominator = float(np.sum(eigenvalues**2))
    if denominator == 0.0:
        return 0.0
    return float(np.sum(eigenvalues) ** 2 / denominator)


def active_units(mu: Any, logvar: Any, threshold: float = 0.01) -> tuple[int, np.ndarray]:
    """Count latent dimensions whose mean KL divergence to N(0, 1) exceeds ``threshold``.

    ``KL_j = 0.5 * mean_i(mu_ij^2 + exp(logvar_ij) - logvar_ij - 1)``: a dimension with
    ``mu = 0, logvar = 0`` everywhere carries nothing (KL 0, the encoder ignores it); ``mu = ±1``
    with ``logvar = 0`` gives 0.5.

    Parameters
    ----------
    mu, logvar : array-like of shape (n_samples, latent_dim)
        Encoder means and log-variances.
    threshold : float, default 0.01
        KL (nats) above which a dimension counts as active.

    Returns
    -------
    count : int
    kl_per_dim : ndarray of shape (latent_dim,), float64
    """
    mu = _check_matrix(mu, "mu", min_rows=1)
    logvar = _check_matrix(logvar, "logvar", min_rows=1)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {mu.shape} and logvar {logvar.shape} must have the same shape")
    if (not isinstance(threshold, numbers.Real) or isinstance(threshold, bool)
            or not math.isfinite(threshold) or threshold < 0):
        raise ValueError(f"threshold={threshold!r} must be a finite number >= 0")
    kl_per_dim = 0.5 * np.mean(mu**2 + np.exp(logvar) - logvar - 1.0, axis=0)
    return int(np.sum(kl_per_dim > threshold)), kl_per_dim


def cluster_scores(
    X: Any, labels: Any, *, sample_size: int = SILHOUETTE_SAMPLE, random_state: int = 0
) -> dict[str, float | None]:
    """Silhouette, Davies–Bouldin and Calinski–Harabasz scores of a labelling.

    Noise points (label ``-1``) are left out. Every score is ``None`` when fewer than 2
    clusters remain (or no more points than clusters). Davies–Bouldin and Calinski–Harabasz use
    every clustered point; the silhouette, quadratic in the number of points, is computed on a
    seeded random sample of at most ``sample_size`` of them.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)
    sample_size : int, default 5000
    random_state : int, default 0

    Returns
    -------
    dict
        ``silhouette`` (-1..1, higher is better), ``davies_bouldin`` (>= 0, lower is better),
        ``calinski_harabasz`` (>= 0, higher is better): floats or ``None``.
    """
    from sklearn.metrics import (
        calinski_harabasz_score,
        davies_bouldin_score,
        silhouette_score,
    )

    X = _check_matrix(X, "X", min_rows=1)
    labels = np.asarray(labels)
    if labels.shape != (X.shape[0],):
        raise ValueError(f"labels has shape {labels.shape}; expected ({X.shape[0]},)")
    if not isinstance(sample_size, numbers.Integral) or sample_size < 2:
        raise ValueError(f"sample_size={sample_size!r} must be an integer of at least 2")
    keep = labels != -1
    X, labels = X[keep], labels[keep]
    n_clusters = np.unique(labels).size
    scores: dict[str, float | None] = {
        "silhouette": None, "davies_bouldin": None, "calinski_harabasz": None,
    }
    if n_clusters < 2 or X.shape[0] <= n_clusters:
        return scores
    scores["davies_bouldin"] = float(davies_bouldin_score(X, labels))
    scores["calinski_harabasz"] = float(calinski_harabasz_score(X, labels))
    if X.shape[0] > sample_size:
        rng = np.random.default_rng(random_state)
        pick = rng.choice(X.shape[0], size=sample_size, replace=False)
        X_s, labels_s = X[pick], labels[pick]
    else:
        X_s, labels_s = X, labels
    if 2 <= np.unique(labels_s).size < X_s.shape[0]:
        scores["silhouette"] = float(silhouette_score(X_s, labels_s))
    return {key: _finite_or_none(value) for key, value in scores.items()}


def latent_quality(
    mu: Any, logvar: Any, labels: Any, embedding: Any = None
) -> dict[str, Any]:
    """All quality figures of a latent space and its clustering, JSON-able.

    Cluster scores are computed on ``embedding`` when given (the map the clusters were found
    on), else on ``mu``; ``scored_on`` says which. Participation ratio and active units always
    describe ``mu`` / ``logvar``.

    Parameters
    ----------
    mu, logvar : array-like of shape (n_samples, latent_dim)
    labels : array-like of shape (n_samples,)
        Cluster labels, ``-1`` for noise.
    embedding : array-like of shape (n_samples, 2 | 3), optional

    Returns
    -------
    dict
        ``silhouette``, ``davies_bouldin``, ``calinski_harabasz`` (float or None),
        ``participation_ratio`` (float), ``active_units``, ``latent_dim``, ``n_clusters`` (int),
        ``noise_fraction`` (float), ``scored_on`` ("embedding" or "latent").

    Examples
    --------
    >>> q = latent_quality(mu, logvar, result.labels, embedding=xy)   # doctest: +SKIP
    >>> store.update_metadata("clusterings", id, quality=q)           # doctest: +SKIP
    """
    mu = _check_matrix(mu, "mu", min_rows=2)
    labels = np.asarray(labels)
    if labels.shape != (mu.shape[0],):
        raise ValueError(f"labels has shape {labels.shape}; expected ({mu.shape[0]},)")
    space = mu
    if embedding is not None:
        space = _check_matrix(embedding, "embedding", min_rows=1)
        if space.shape[0] != mu.shape[0]:
            raise ValueError(
                f"embedding has {space.shape[0]} rows but mu has {mu.shape[0]}"
            )
    count, _ = active_units(mu, logvar)
    clustered = labels[labels != -1]
    return {
        **cluster_scores(space, labels),
        "participation_ratio": participation_ratio(mu),
        "active_units": count,
        "latent_dim": int(mu.shape[1]),
        "n_clusters": int(np.unique(clustered).size),
        "noise_fraction": float(np.mean(labels == -1)) if labels.size else 0.0,
        "scored_on": "latent" if embedding is None else "embedding",
    }


def _finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _check_matrix(X: Any, name: str, *, min_rows: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] < min_rows or X.shape[1] == 0:
        raise ValueError(f"{name} needs at least {min_rows} row(s) and 1 column, got {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} has NaN or inf values; drop or fix those rows first")
    return X
