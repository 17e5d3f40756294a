"""Group material variations by their descriptors and lay them out in 2-D.

Descriptors have different units (bits, fractions, ratios), so they are standardised first.
Then: hierarchical agglomerative clustering with average linkage (the linkage matrix and the
dendrogram's line segments for the UI, the cut chosen by the user as a number of clusters or a
distance), HDBSCAN (``core.maps.clustering``), and a seeded 2-D embedding: metric MDS, which keeps
the distances themselves, for fewer than 500 variations; UMAP above that, where MDS's O(n²)
memory and time stop being affordable.

Example
-------
>>> table = sink.descriptor_table()                         # doctest: +SKIP
>>> result = cluster_variations(table, n_clusters=3)        # doctest: +SKIP
>>> result.hac_labels, result.dendrogram["icoord"][:2]      # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy

from core.maps.clustering import cluster_hdbscan

log = logging.getLogger(__name__)

MDS_MAX = 500  # above this many variations, UMAP instead of MDS


@dataclass
class VariationClusters:
    """Clusterings and layout of n variations.

    columns : descriptor columns used (after dropping all-NaN ones)
    X : (n, p) standardised descriptors (NaN filled with the column median, i.e. 0 after scaling)
    linkage : (n − 1, 4) scipy linkage matrix (average linkage, Euclidean)
    hac_labels : (n,) cluster of each variation after the cut, 0-based
    dendrogram : icoord, dcoord (lists of 4-point segments), leaves (variation order), for plotly
    hdbscan_labels, hdbscan_probabilities : (n,); −1 is noise
    embedding : (n, 2) float32; embedding_method: "mds" or "umap"
    """

    columns: list[str]
    X: np.ndarray
    linkage: np.ndarray
    hac_labels: np.ndarray
    dendrogram: dict
    hdbscan_labels: np.ndarray
    hdbscan_probabilities: np.ndarray
    embedding: np.ndarray
    embedding_method: str


def scale_descriptors(
    table: pd.DataFrame, columns: list[str] | None = None, *, scaler: str = "standard"
) -> tuple[np.ndarray, list[str]]:
    """Scale descriptor columns: (n, p) float64 and the columns kept.

    ``scaler``: "standard" (zero mean, unit variance) or "range" (min → 0, max → 1: the
    paper's scaling of trace descriptors, so each spans the same distance whatever its unit).
    Infinite values count as missing; missing values take the column median (a variation with
    no measurable descriptor is treated as typical, not as extreme); all-missing columns are
    dropped; constant columns become 0 (the scalers leave them unscaled).
    """
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    scalers = {"standard": StandardScaler, "range": MinMaxScaler}
    if scaler not in scalers:
        raise ValueError(f"scaler={scaler!r} must be one of {sorted(scalers)}")

    cols = list(columns) if columns is not None else [
        c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])
    ]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(
            f"descriptor columns {missing!r} are not in the table ({list(table.columns)})"
        )
    values = table[cols].to_numpy(dtype=np.float64, copy=True)
    values[~np.isfinite(values)] = np.nan
    keep = ~np.isnan(values).all(axis=0)
    if not keep.any():
        raise ValueError(f"every descriptor column {cols!r} is missing; choose other descriptors")
    values, cols = values[:, keep], [c for c, k in zip(cols, keep) if k]
    medians = np.nanmedian(values, axis=0)
    values = np.where(np.isnan(values), medians, values)
    return scalers[scaler]().fit_transform(values), cols


def hac(
    X: np.ndarray, *, n_clusters: int | None = None, distance: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Average-linkage clustering of X (n, p): (labels (n,) 0-based, linkage (n − 1, 4)).

    Cut the tree into ``n_clusters`` clusters, or at height ``distance``: give exactly one.
    """
    if (n_clusters is None) == (distance is None):
        raise ValueError(
            f"n_clusters={n_clusters!r}, distance={distance!r}: give exactly one of them"
        )
    if distance is not None and not (isinstance(distance, (int, float)) and distance >= 0):
        raise ValueError(f"distance={distance!r} must be >= 0")
    Z = hierarchy.linkage(X, method="average", metric="euclidean")
    if n_clusters is not None:
        return cut(Z, n_clusters), Z
    return hierarchy.fcluster(Z, t=distance, criterion="distance").astype(np.int64) - 1, Z


def _check_cut(linkage: np.ndarray, n_clusters: int) -> int:
    """The number of variations in a linkage; raises unless 1 ≤ n_clusters ≤ that."""
    n = len(linkage) + 1
    if not (isinstance(n_clusters, (int, np.integer)) and 1 <= n_clusters <= n):
        raise ValueError(f"n_clusters={n_clusters!r} must be between 1 and {n} (the variations)")
    return n


def cut(linkage: np.ndarray, n_clusters: int) -> np.ndarray:
    """0-based labels (n,) of a stored tree cut into at most ``n_clusters`` clusters.

    The page re-cuts the linkage a run stored when the user moves the cut, so changing the
    number of clusters never re-clusters (nor re-reads the descriptors).
    """
    _check_cut(linkage, n_clusters)
    return hierarchy.fcluster(linkage, t=int(n_clusters), criterion="maxclust").astype(np.int64) - 1


def cut_height(linkage: np.ndarray, n_clusters: int) -> float:
    """Height of the horizontal line that cuts the dendrogram into ``n_clusters`` clusters.

    Halfway between the last merge kept and the first merge undone (average linkage merges at
    non-decreasing heights), so the line drawn crosses exactly the branches :func:`cut` separates.
    """
    n = _check_cut(linkage, n_clusters)
    heights = np.sort(np.asarray(linkage, dtype=np.float64)[:, 2])  # (n − 1,)
    below = heights[n - n_clusters - 1] if n_clusters < n else 0.0
    above = heights[n - n_clusters] if n_clusters > 1 else 1.1 * heights[-1]
    return float((below + above) / 2)


def dendrogram_data(Z: np.ndarray, labels: list[str] | None = None) -> dict:
    """The dendrogram's segments as plain lists, for a plotly figure: one line per entry of
    ``icoord``/``dcoord`` (x and y of 4 points), ``leaves`` the variation at each leaf."""
    d = hierarchy.dendrogram(Z, no_plot=True, labels=labels)
    return {"icoord": d["icoord"], "dcoord": d["dcoord"], "leaves": d["leaves"], "ivl": d["ivl"]}


def embed(X: np.ndarray, *, seed: int = 0, method: str = "auto") -> tuple[np.ndarray, str]:
    """Seeded 2-D layout of X (n, p): ((n, 2) float32, "mds" | "umap")."""
    if method not in ("auto", "mds", "umap"):
        raise ValueError(f"method={method!r} must be 'auto', 'mds' or 'umap'")
    if method == "auto":
        method = "mds" if len(X) < MDS_MAX else "umap"
    if method == "mds":
        from sklearn.manifold import MDS

        mds = MDS(n_components=2, n_init=1, init="classical_mds", random_state=seed)
        emb = mds.fit_transform(X)
    else:
        import umap

        emb = umap.UMAP(n_components=2, n_neighbors=min(15, len(X) - 1), random_state=seed,
                        n_jobs=1).fit_transform(X)
    return np.asarray(emb, dtype=np.float32), method


def cluster_variations(
    table: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    n_clusters: int | None = None,
    distance: float | None = None,
    min_cluster_size: int = 5,
    seed: int = 0,
    embedding: str = "auto",
) -> VariationClusters:
    """Scale, cluster (HAC and HDBSCAN) and embed a descriptor table (one row per variation).

    ``n_clusters``/``distance`` cut the HAC tree (default: 2 clusters). HDBSCAN's
    ``min_cluster_size`` is lowered to the number of variations when there are fewer.
    """
    n = len(table)
    if n < 3:
        raise ValueError(
            f"clustering needs at least 3 variations, got {n}: select more reference states"
        )
    if n_clusters is None and distance is None:
        n_clusters = 2
    X, cols = scale_descriptors(table, columns)
    labels, Z = hac(X, n_clusters=n_clusters, distance=distance)
    hdb = cluster_hdbscan(X, min_cluster_size=max(2, min(min_cluster_size, n - 1)))
    emb, method = embed(X, seed=seed, method=embedding)
    log.info("variations: %d HAC clusters, %d HDBSCAN clusters, %s layout of %d",
             labels.max() + 1, hdb.n_clusters, method, n)
    return VariationClusters(
        columns=cols, X=X, linkage=Z, hac_labels=labels,
        dendrogram=dendrogram_data(Z, [str(i) for i in table.index]),
        hdbscan_labels=hdb.labels, hdbscan_probabilities=hdb.probabilities,
        embedding=emb, embedding_method=method,
    )
