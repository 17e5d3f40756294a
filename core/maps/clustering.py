"""Group map points with HDBSCAN, and give new points a cluster without pickled models.

HDBSCAN (the ``hdbscan`` package) finds clusters of varying density and marks the rest as noise
(label ``-1``). A clustering is stored as its labels and probabilities; new points (live frames)
get the label of their nearest clustered point with :func:`assign_nearest`, which needs only the
stored points and labels.

Example
-------
>>> import numpy as np
>>> from core.maps.clustering import cluster_hdbscan, assign_nearest
>>> rng = np.random.default_rng(0)
>>> X = np.concatenate([rng.normal(c, 0.1, size=(50, 2)) for c in (0, 5)])
>>> result = cluster_hdbscan(X, min_cluster_size=10)
>>> result.n_clusters
2
>>> assign_nearest([[5.0, 5.0]], X, result.labels).tolist() == [result.labels[-1]]
True
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class ClusterResult:
    """One HDBSCAN clustering.

    Attributes
    ----------
    labels : ndarray of shape (n_samples,), int64
        Cluster of each point, ``0 .. n_clusters - 1``; ``-1`` is noise.
    probabilities : ndarray of shape (n_samples,), float32
        Strength of each point's membership in its cluster (0 for noise, 1 for core points).
    n_clusters : int
        Clusters found (noise not counted).
    noise_fraction : float
        Fraction of points labelled noise.
    params : dict
        JSON-able parameters that produced it (``method``, the HDBSCAN parameters, ``n_samples``).
    """

    labels: np.ndarray
    probabilities: np.ndarray
    n_clusters: int
    noise_fraction: float
    params: dict


def cluster_hdbscan(
    X: Any,
    *,
    min_cluster_size: int = 15,
    min_samples: int | None = None,
    cluster_selection_epsilon: float = 0.0,
) -> ClusterResult:
    """Cluster points (usually map coordinates or latents) with HDBSCAN.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite points; at least ``min_cluster_size`` of them.
    min_cluster_size : int, default 15
        Smallest group worth calling a cluster (at least 2).
    min_samples : int or None, default None
        Neighbours that make a point a core point; larger = more conservative, more noise.
        ``None`` means ``min_cluster_size``. Must be at least 1 and below ``n_samples``.
    cluster_selection_epsilon : float, default 0.0
        Clusters closer than this distance are merged (0 = off).

    Returns
    -------
    ClusterResult

    Examples
    --------
    >>> result = cluster_hdbscan(embedding, min_cluster_size=30)   # doctest: +SKIP
    >>> result.labels.shape, result.n_clusters                      # doctest: +SKIP
    ((10000,), 7)
    """
    X = _check_points(X, "X")
    n = X.shape[0]
    if not _is_int(min_cluster_size) or min_cluster_size < 2:
        raise ValueError(f"min_cluster_size={min_cluster_size!r} must be an integer of at least 2")
    if min_samples is not None and (not _is_int(min_samples) or min_samples < 1):
        raise ValueError(f"min_samples={min_samples!r} must be None or an integer of at least 1")
    if (
        not isinstance(cluster_selection_epsilon, numbers.Real)
        or isinstance(cluster_selection_epsilon, bool)
        or not math.isfinite(cluster_selection_epsilon)
        or cluster_selection_epsilon < 0
    ):
        raise ValueError(
            f"cluster_selection_epsilon={cluster_selection_epsilon!r} must be a finite number >= 0"
        )
    if n < min_cluster_size:
        raise ValueError(
            f"HDBSCAN needs at least min_cluster_size={min_cluster_size!r} points, got {n}: "
            "lower min_cluster_size or add points"
        )
    effective_min_samples = min_cluster_size if min_samples is None else min_samples
    if effective_min_samples >= n:
        raise ValueError(
            f"min_samples={effective_min_samples!r} must be below the number of points ({n}); "
            "lower min_samples (None uses min_cluster_size)"
        )

    import hdbscan

    model = hdbscan.HDBSCAN(
        min_cluster_size=int(min_cluster_size),
        min_samples=None if min_samples is None else int(min_samples),
        cluster_selection_epsilon=float(cluster_selection_epsilon),
        core_dist_n_jobs=1,
    )
    model.fit(X)
    labels = np.asarray(model.labels_, dtype=np.int64)
    n_clusters = int(labels.max()) + 1 if labels.size else 0
    noise_fraction = float(np.mean(labels == -1))
    params = {
        "method": "hdbscan",
        "min_cluster_size": int(min_cluster_size),
        "min_samples": None if min_samples is None else int(min_samples),
        "cluster_selection_epsilon": float(cluster_selection_epsilon),
        "n_samples": int(n),
    }
    log.info("HDBSCAN: %d clusters, %.1f %% noise of %d points", n_clusters,
             100 * noise_fraction, n)
    return ClusterResult(
        labels=labels,
        probabilities=np.asarray(model.probabilities_, dtype=np.float32),
        n_clusters=n_clusters,
        noise_fraction=noise_fraction,
        params=params,
    )


def assign_nearest(X_new: Any, X_fit: Any, labels_fit: Any) -> np.ndarray:
    """Label new points with the cluster of their nearest clustered (non-noise) fitted point.

    A stand-in for ``hdbscan.approximate_predict`` that needs only stored arrays. Every new
    point gets a cluster, however far it lies from the fitted points; only when the fit has no
    clusters at all is everything ``-1``.

    Parameters
    ----------
    X_new : array-like of shape (n_new, n_features)
    X_fit : array-like of shape (n_fit, n_features)
        The points that were clustered (same space as ``X_new``).
    labels_fit : array-like of shape (n_fit,)
        Their labels; ``-1`` (noise) points are ignored.

    Returns
    -------
    labels : ndarray of shape (n_new,), int64
    """
    X_new = _check_points(X_new, "X_new", allow_empty=True)
    X_fit = _check_points(X_fit, "X_fit")
    labels_fit = np.asarray(labels_fit)
    if labels_fit.shape != (X_fit.shape[0],):
        raise ValueError(
            f"labels_fit has shape {labels_fit.shape}; expected ({X_fit.shape[0]},), "
            "one label per row of X_fit"
        )
    if X_new.shape[1] != X_fit.shape[1]:
        raise ValueError(
            f"X_new has {X_new.shape[1]} features but X_fit has {X_fit.shape[1]}"
        )
    clustered = labels_fit != -1
    if X_new.shape[0] == 0 or not clustered.any():
        return np.full(X_new.shape[0], -1, dtype=np.int64)

    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(X_fit[clustered])
    nearest = nn.kneighbors(X_new, return_distance=False)[:, 0]
    return labels_fit[clustered][nearest].astype(np.int64)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_points(X: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} has no rows")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} has NaN or inf values; drop or fix those rows first")
    return X
