"""Lay latent vectors out as a 2-D or 3-D map with PCA or UMAP, and keep the map without pickles.

:class:`Projector` follows scikit-learn's fitted-object habits: ``__init__`` stores parameters,
:meth:`Projector.fit` validates them and learns attributes ending in ``_``, and
:meth:`Projector.transform` places new points (live frames) on the existing map, never refitting.

Large inputs are fitted on a seeded random sample of ``fit_sample`` rows; the remaining rows are
placed with ``transform``. A fitted projector is saved as plain arrays plus JSON-able parameters
(:meth:`Projector.to_arrays`) and rebuilt with :meth:`Projector.from_arrays`:

- PCA stores ``mean_`` and ``components_``: a loaded projector transforms exactly as before.
- UMAP cannot be rebuilt from arrays, so a loaded projector keeps the training latents of the fit
  set (at most :data:`STORED_FIT_MAX` rows, a seeded subsample beyond that) and their embedding,
  and places a new point the way UMAP's own ``transform`` *initialises* it: the fuzzy-membership
  weighted mean of the embeddings of its ``n_neighbors`` nearest training points (see
  :func:`knn_fuzzy_transform`). UMAP then refines that start with a short optimisation; the stored
  path skips that step. On scikit-learn's digits (1500 fitted, 297 held out) the two placements
  differ by a median of about 3 % of the map's RMS radius (``tests/test_projection.py`` checks it).

The in-memory UMAP object (``umap_``) is used whenever it exists, i.e. in the process that fitted.

``fit`` and ``fit_transform`` take a ``progress(fraction, text)`` callback. UMAP's fit has two
long parts: the neighbour graph (with the spectral initialisation) and the layout optimisation,
whose epochs umap-learn counts with a tqdm bar; that bar is pointed at :class:`_EpochCounter`, so
each epoch moves the fraction (:data:`GRAPH_SHARE` of it is the graph, the rest the epochs).

Example
-------
>>> import numpy as np
>>> from core.maps.projection import Projector
>>> z = np.random.default_rng(0).normal(size=(500, 16)).astype("float32")
>>> proj = Projector("pca").fit(z)
>>> proj.transform(z[:3]).shape
(3, 2)
>>> arrays, params = proj.to_arrays()
>>> again = Projector.from_arrays(arrays, params)
>>> bool(np.array_equal(again.transform(z), proj.transform(z)))
True
"""

from __future__ import annotations

import logging
import numbers
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("pca", "umap")
METRICS: tuple[str, ...] = ("euclidean", "cosine", "manhattan", "correlation")
FORMAT = "morphospace.projector/1"
# Rows of the UMAP fit set kept for the stored transform: 20k x 128 float32 is ~10 MiB in Tiled,
# and a brute-force neighbour query of one live frame against it takes about a millisecond.
STORED_FIT_MAX = 20_000
_CHUNK_ROWS = 65_536  # transform in blocks so float64 temporaries stay ~64 MiB at d=128

# UMAP's own constants for its smooth k-NN distances (umap/umap_.py).
_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3
_DISCONNECTION = {"cosine": 2.0, "correlation": 2.0}

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)
# Share of a UMAP fit taken by the neighbour graph and spectral initialisation; the rest is the
# layout's epochs. Measured on the 1,797 digits (d=64), numba warm, a busy 2-core machine: graph
# 6.7-9.3 s, 500 epochs 4.7-5.2 s. Rows outside a fit sample take about as long per row as the
# fitted ones (1,000 fitted in 4.7 s, 797 placed in 4.0 s), so they get their share of the rows.
GRAPH_SHARE = 0.5


class _EpochCounter:
    """A file for tqdm: umap-learn's epoch bar, drawn as ``{n}/{total}``, becomes progress calls."""

    def __init__(self, report: Callable[[int, int], None]):
        self.report = report

    def write(self, text: str) -> None:
        found = re.search(r"(\d+)/(\d+)", text)
        if found and int(found[2]):
            self.report(int(found[1]), int(found[2]))

    def flush(self) -> None:
        pass


def _no_progress(fraction: float, text: str) -> None:
    pass


class Projector:
    """Fit a PCA or UMAP map of latent vectors and place new vectors on it.

    Parameters
    ----------
    method : {"pca", "umap"}, default "pca"
        PCA is linear, exact and fast; UMAP keeps local neighbourhoods (clusters) apart.
    n_components : {2, 3}, default 2
        Dimensions of the map.
    n_neighbors : int, default 15
        UMAP: neighbours per point, between 2 and 200 (larger = more global structure).
    min_dist : float, default 0.1
        UMAP: how tightly points may pack, between 0 and 1.
    metric : {"euclidean", "cosine", "manhattan", "correlation"}, default "euclidean"
        UMAP: distance between latent vectors (also used by the stored transform).
    random_state : int, default 0
        Seed of the fit sample and of UMAP (a seeded UMAP runs on one thread).
    fit_sample : int, default 50_000
        Inputs with more rows are fitted on a seeded random sample of this many rows; the rest
        are placed with ``transform``.

    Attributes
    ----------
    n_features_in_ : int
        Latent dimension seen in ``fit``.
    sampled_ : bool
        Whether ``fit`` used a random sample rather than every row.
    n_fit_ : int
        Rows the map was fitted on.
    fit_indices_ : ndarray of shape (n_fit_,)
        Sorted row indices (into the ``X`` given to ``fit``) of the fitted rows.
    embedding_ : ndarray of shape (n_fit_, n_components)
        Map coordinates of the fitted rows (float32); ``None`` after :meth:`from_arrays`.
    mean_, components_ : ndarray of shape (n_features,), (n_components, n_features)
        PCA only: centre and principal axes (float64).
    explained_variance_, explained_variance_ratio_ : ndarray of shape (n_components,)
        PCA only: variance along each axis, and its fraction of the total.
    umap_ : umap.UMAP or None
        UMAP only: the fitted UMAP object; ``None`` after :meth:`from_arrays`.
    reference_latents_, reference_embedding_ : ndarray
        UMAP only: the fit-set latents kept for the stored transform (at most
        :data:`STORED_FIT_MAX` rows) and their map coordinates.

    Examples
    --------
    >>> proj = Projector("umap", n_neighbors=30, min_dist=0.0)  # doctest: +SKIP
    >>> xy = proj.fit_transform(mu)                              # doctest: +SKIP
    >>> xy_new = proj.transform(mu_new)                          # doctest: +SKIP
    """

    def __init__(
        self,
        method: str = "pca",
        n_components: int = 2,
        *,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        metric: str = "euclidean",
        random_state: int = 0,
        fit_sample: int = 50_000,
    ):
        self.method = method
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.random_state = random_state
        self.fit_sample = fit_sample

    def __repr__(self) -> str:
        return (
            f"Projector(method={self.method!r}, n_components={self.n_components!r}, "
            f"n_neighbors={self.n_neighbors!r}, min_dist={self.min_dist!r}, "
            f"metric={self.metric!r}, random_state={self.random_state!r}, "
            f"fit_sample={self.fit_sample!r})"
        )

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, *, progress: Progress | None = None) -> Projector:
        """Fit the map on ``X`` (or on a seeded sample of ``fit_sample`` rows of it).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite latent vectors.
        progress : callable, optional
            ``progress(fraction, text)``: fraction rises from 0 to 1 through the neighbour
            graph and the layout epochs (UMAP), ending at 1.

        Returns
        -------
        self : Projector
        """
        progress = progress or _no_progress
        self._fit(X, progress)
        progress(1.0, f"{self.method.upper()} fitted")
        return self

    def fit_transform(self, X: Any, *, progress: Progress | None = None) -> np.ndarray:
        """Fit on ``X`` and return the map coordinates of every row.

        Rows outside the fit sample (when ``n_samples > fit_sample``) are placed with
        ``transform``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        progress : callable, optional
            ``progress(fraction, text)`` as in :meth:`fit`; placing the rows outside the fit
            sample is the last part. Ends at 1.

        Returns
        -------
        embedding : ndarray of shape (n_samples, n_components), float32
        """
        progress = progress or _no_progress
        X = _check_matrix(X, "X")
        share = min(X.shape[0], self.fit_sample) / X.shape[0]  # of the work, for the fit
        X = self._fit(X, lambda f, text: progress(share * f, text))
        out = np.empty((X.shape[0], self.n_components), dtype=np.float32)
        out[self.fit_indices_] = self.embedding_
        if self.sampled_:
            rest = np.ones(X.shape[0], dtype=bool)
            rest[self.fit_indices_] = False
            progress(share, f"placing the other {int(rest.sum())} points on the map")
            out[rest] = self._transform(X[rest])
        progress(1.0, f"{self.method.upper()} map of {X.shape[0]} points")
        return out

    def _fit(self, X: Any, progress: Progress) -> np.ndarray:
        self._validate_params()
        X = _check_matrix(X, "X")
        n, d = X.shape
        if self.method == "pca":
            if n <= self.n_components or d < self.n_components:
                raise ValueError(
                    f"PCA with n_components={self.n_components!r} needs more than "
                    f"{self.n_components} rows and at least {self.n_components} columns; "
                    f"X has shape {X.shape}"
                )
        elif n <= self.n_neighbors:
            raise ValueError(
                f"UMAP needs more rows than n_neighbors={self.n_neighbors!r}; X has {n} rows: "
                "lower n_neighbors or add points"
            )

        rng = np.random.default_rng(self.random_state)
        self.n_features_in_ = d
        self.sampled_ = n > self.fit_sample
        if self.sampled_:
            self.fit_indices_ = np.sort(rng.choice(n, size=self.fit_sample, replace=False))
        else:
            self.fit_indices_ = np.arange(n)
        self.n_fit_ = int(self.fit_indices_.size)
        X_fit = X[self.fit_indices_]

        start = time.perf_counter()
        if self.method == "pca":
            progress(0.0, f"PCA of {self.n_fit_} points")
            self._fit_pca(X_fit)
        else:
            self._fit_umap(X_fit, rng, progress)
        log.info(
            "fitted %s on %d of %d rows (d=%d) in %.1f s",
            self.method, self.n_fit_, n, d, time.perf_counter() - start,
        )
        return X

    def _fit_pca(self, X_fit: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.n_components, random_state=self.random_state)
        pca.fit(X_fit.astype(np.float64))
        self.mean_ = pca.mean_
        self.components_ = pca.components_
        self.explained_variance_ = pca.explained_variance_
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        self.embedding_ = self._pca_transform(X_fit)

    def _fit_umap(self, X_fit: np.ndarray, rng: np.random.Generator, progress: Progress) -> None:
        import umap

        def epoch(n: int, total: int) -> None:
            progress(GRAPH_SHARE + (1 - GRAPH_SHARE) * n / total, f"UMAP layout: epoch {n}/{total}")

        progress(0.0, f"UMAP neighbour graph of {self.n_fit_} points (k={self.n_neighbors})")
        model = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            metric=self.metric,
            random_state=self.random_state,
            n_jobs=1,  # a seeded UMAP is single-threaded anyway; saying so silences its warning
            # Every epoch is drawn (mininterval=0) so the counter sees it; the flow throttles.
            tqdm_kwds={"disable": False, "file": _EpochCounter(epoch), "bar_format": "{n}/{total}",
                       "mininterval": 0, "miniters": 1},
        )
        self.umap_ = model.fit(X_fit)
        model.tqdm_kwds = {"disable": True}  # later transforms (live frames) report nothing
        self.embedding_ = np.asarray(model.embedding_, dtype=np.float32)
        if self.n_fit_ > STORED_FIT_MAX:
            keep = np.sort(rng.choice(self.n_fit_, size=STORED_FIT_MAX, replace=False))
        else:
            keep = slice(None)
        self.reference_latents_ = np.ascontiguousarray(X_fit[keep], dtype=np.float32)
        self.reference_embedding_ = np.ascontiguousarray(self.embedding_[keep])
        self._nn = None

    def _validate_params(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} must be one of {METHODS}")
        if self.n_components not in (2, 3) or isinstance(self.n_components, bool):
            raise ValueError(f"n_components={self.n_components!r} must be 2 or 3")
        _check_int("n_neighbors", self.n_neighbors, 2, 200)
        if not isinstance(self.min_dist, numbers.Real) or not 0.0 <= self.min_dist <= 1.0:
            raise ValueError(f"min_dist={self.min_dist!r} must be between 0 and 1")
        if self.metric not in METRICS:
            raise ValueError(f"metric={self.metric!r} must be one of {METRICS}")
        _check_int("random_state", self.random_state, 0, 2**32 - 1)
        _check_int("fit_sample", self.fit_sample, max(10, self.n_neighbors + 1), None)

    # -- transforming ----------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Place new latent vectors on the fitted map (no refitting).

        PCA is exact. UMAP uses the in-memory UMAP object's ``transform`` when this projector
        was fitted in this process, else the stored k-NN transform (:func:`knn_fuzzy_transform`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        embedding : ndarray of shape (n_samples, n_components), float32
        """
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError(
                "This Projector is not fitted yet: call fit first (or load one with from_arrays)"
            )
        X = _check_matrix(X, "X", allow_empty=True)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features but the projector was fitted on "
                f"{self.n_features_in_}"
            )
        return self._transform(X)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        if X.shape[0] == 0:
            return np.empty((0, self.n_components), dtype=np.float32)
        if self.method == "pca":
            return self._pca_transform(X)
        if getattr(self, "umap_", None) is not None:
            return np.asarray(self.umap_.transform(X), dtype=np.float32)
        return self.stored_transform(X)

    def _pca_transform(self, X: np.ndarray) -> np.ndarray:
        # One formula for fitted and loaded projectors, so both give identical numbers.
        out = np.empty((X.shape[0], self.n_components), dtype=np.float32)
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            block = X[start : start + _CHUNK_ROWS].astype(np.float64) - self.mean_
            out[start : start + _CHUNK_ROWS] = block @ self.components_.T
        return out

    def stored_transform(self, X: Any) -> np.ndarray:
        """UMAP only: place ``X`` from the stored fit set, as a loaded projector does.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        embedding : ndarray of shape (n_samples, n_components), float32
        """
        if self.method != "umap" or not hasattr(self, "reference_latents_"):
            raise RuntimeError("stored_transform needs a fitted UMAP projector: call fit first")
        X = _check_matrix(X, "X", allow_empty=True)
        if getattr(self, "_nn", None) is None:
            from sklearn.neighbors import NearestNeighbors

            k = min(self.n_neighbors, self.reference_latents_.shape[0])
            self._nn = NearestNeighbors(n_neighbors=k, metric=self.metric)
            self._nn.fit(self.reference_latents_)
        out = np.empty((X.shape[0], self.n_components), dtype=np.float32)
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            dist, idx = self._nn.kneighbors(X[start : start + _CHUNK_ROWS])
            out[start : start + _CHUNK_ROWS] = knn_fuzzy_transform(
                dist, idx, self.reference_embedding_,
                disconnection_distance=_DISCONNECTION.get(self.metric, np.inf),
            )
        return out

    # -- persistence -----------------------------------------------------------------------
    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """Everything needed to rebuild this fitted projector, as arrays and JSON-able params.

        Returns
        -------
        arrays : dict of str to ndarray
            PCA: ``pca_mean``, ``pca_components``, ``pca_explained_variance``,
            ``pca_explained_variance_ratio``. UMAP: ``umap_reference_latents`` (n_ref, d) and
            ``umap_reference_embedding`` (n_ref, n_components). ``fit_indices`` when sampled.
        params : dict
            Constructor parameters plus ``format``, ``n_features_in``, ``sampled``, ``n_fit``.

        Examples
        --------
        >>> arrays, params = proj.to_arrays()                      # doctest: +SKIP

        core.data.results.projections stores them beside the map and reads them back.
        """
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError("This Projector is not fitted yet: call fit first")
        params = {
            "format": FORMAT,
            "method": self.method,
            "n_components": int(self.n_components),
            "n_neighbors": int(self.n_neighbors),
            "min_dist": float(self.min_dist),
            "metric": self.metric,
            "random_state": int(self.random_state),
            "fit_sample": int(self.fit_sample),
            "n_features_in": int(self.n_features_in_),
            "sampled": bool(self.sampled_),
            "n_fit": int(self.n_fit_),
        }
        arrays: dict[str, np.ndarray] = {}
        if self.sampled_:
            arrays["fit_indices"] = self.fit_indices_.astype(np.int64)
        if self.method == "pca":
            arrays["pca_mean"] = np.asarray(self.mean_, dtype=np.float64)
            arrays["pca_components"] = np.asarray(self.components_, dtype=np.float64)
            arrays["pca_explained_variance"] = np.asarray(self.explained_variance_, np.float64)
            arrays["pca_explained_variance_ratio"] = np.asarray(
                self.explained_variance_ratio_, np.float64
            )
            params["explained_variance_ratio"] = [float(v) for v in self.explained_variance_ratio_]
        else:
            arrays["umap_reference_latents"] = self.reference_latents_
            arrays["umap_reference_embedding"] = self.reference_embedding_
            params["n_reference"] = int(self.reference_latents_.shape[0])
            params["stored_transform"] = "knn-fuzzy-mean"
        return arrays, params

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], params: Mapping[str, Any]) -> Projector:
        """Rebuild a fitted projector from :meth:`to_arrays` output (no refitting, no pickles).

        Extra keys in ``arrays`` or ``params`` (an ``embedding`` stored alongside, Tiled's
        ``created``) are ignored.

        Parameters
        ----------
        arrays : mapping of str to array-like
        params : mapping
            As written by :meth:`to_arrays`, e.g. read back from Tiled metadata.

        Returns
        -------
        projector : Projector
            Fitted: ``transform`` works; ``embedding_`` and ``umap_`` are ``None``.
        """
        if params.get("format") != FORMAT:
            raise ValueError(
                f"params format={params.get('format')!r} is not {FORMAT!r}: "
                "pass the params written by Projector.to_arrays"
            )
        names = ("method", "n_components", "n_neighbors", "min_dist", "metric",
                 "random_state", "fit_sample")
        self = cls(params["method"], params["n_components"],
                   **{name: params[name] for name in names[2:]})
        self._validate_params()
        needed = (
            ("pca_mean", "pca_components", "pca_explained_variance",
             "pca_explained_variance_ratio")
            if self.method == "pca"
            else ("umap_reference_latents", "umap_reference_embedding")
        )
        missing = [name for name in needed if name not in arrays]
        if missing:
            raise ValueError(f"arrays lack {missing} needed by a {self.method} projector")
        self.n_features_in_ = int(params["n_features_in"])
        self.sampled_ = bool(params["sampled"])
        self.n_fit_ = int(params["n_fit"])
        self.fit_indices_ = (
            np.asarray(arrays["fit_indices"], dtype=np.int64)
            if "fit_indices" in arrays
            else np.arange(self.n_fit_)
        )
        self.embedding_ = None
        if self.method == "pca":
            self.mean_ = np.asarray(arrays["pca_mean"], dtype=np.float64)
            self.components_ = np.asarray(arrays["pca_components"], dtype=np.float64)
            self.explained_variance_ = np.asarray(arrays["pca_explained_variance"], np.float64)
            self.explained_variance_ratio_ = np.asarray(
                arrays["pca_explained_variance_ratio"], np.float64
            )
            shape = (self.n_components, self.n_features_in_)
            if self.components_.shape != shape:
                raise ValueError(
                    f"pca_components has shape {self.components_.shape}, expected {shape}"
                )
        else:
            self.umap_ = None
            self._nn = None
            self.reference_latents_ = np.ascontiguousarray(arrays["umap_reference_latents"])
            self.reference_embedding_ = np.ascontiguousarray(
                arrays["umap_reference_embedding"], dtype=np.float32
            )
            n_ref = self.reference_latents_.shape[0]
            if (self.reference_latents_.shape[1:] != (self.n_features_in_,)
                    or self.reference_embedding_.shape != (n_ref, self.n_components)):
                raise ValueError(
                    f"umap_reference_latents {self.reference_latents_.shape} and "
                    f"umap_reference_embedding {self.reference_embedding_.shape} do not match "
                    f"n_features_in={self.n_features_in_}, n_components={self.n_components}"
                )
        return self


def knn_fuzzy_transform(
    distances: np.ndarray,
    indices: np.ndarray,
    reference_embedding: np.ndarray,
    *,
    disconnection_distance: float = np.inf,
    n_iter: int = 64,
) -> np.ndarray:
    """Place points at the fuzzy-weighted mean of their neighbours' map positions.

    This is how UMAP's ``transform`` initialises new points before it refines them: with
    ``local_connectivity`` lowered by one (so ``rho = 0``), each point's bandwidth ``sigma`` is
    found by bisection so that ``sum_{j>=1} exp(-d_j / sigma) = log2(k)`` (UMAP's
    ``smooth_knn_dist``; ``sigma`` is at least 1e-3 of the point's mean neighbour distance),
    the weights are ``exp(-d_j / sigma)`` and the position is their normalised weighted mean.
    A point at distance 0 from a reference point takes that point's position. Neighbours at or
    beyond ``disconnection_distance`` are dropped; a point with none left gets NaN, as in UMAP.

    Parameters
    ----------
    distances, indices : ndarray of shape (n_samples, k)
        Sorted distances to, and indices of, each point's k nearest reference points.
    reference_embedding : ndarray of shape (n_reference, n_components)
    disconnection_distance : float, default inf
    n_iter : int, default 64
        Bisection steps.

    Returns
    -------
    embedding : ndarray of shape (n_samples, n_components), float32
    """
    d = np.asarray(distances, dtype=np.float64)
    n, k = d.shape
    target = np.log2(k)
    tail = d[:, 1:]  # UMAP's sum skips the nearest neighbour
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    mid = np.ones(n)
    for _ in range(n_iter):
        psum = np.where(tail > 0, np.exp(-tail / mid[:, None]), 1.0).sum(axis=1)
        done = np.abs(psum - target) < _SMOOTH_K_TOLERANCE
        too_wide = psum > target
        hi = np.where(too_wide & ~done, mid, hi)
        lo = np.where(~too_wide & ~done, mid, lo)
        mid = np.where(done, mid, np.where(np.isinf(hi), mid * 2.0, (lo + hi) / 2.0))
    sigma = np.maximum(mid, _MIN_K_DIST_SCALE * d.mean(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(d > 0, np.exp(-d / sigma[:, None]), 1.0)
    weights[d >= disconnection_distance] = 0.0
    total = weights.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.einsum("nk,nkc->nc", weights / total, reference_embedding[indices])
    exact = d[:, 0] == 0
    out[exact] = reference_embedding[indices[exact, 0]]
    return out.astype(np.float32)


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if high is None:
        if not ok or value < low:
            raise ValueError(f"{name}={value!r} must be an integer of at least {low}")
    elif not ok or not low <= value <= high:
        raise ValueError(f"{name}={value!r} must be between {low} and {high}")


def _check_matrix(X: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}; "
            "use x.reshape(1, -1) for a single vector"
        )
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} has no rows")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no columns")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"{name} has {rows.size} row(s) with NaN or inf (first: {rows[:5].tolist()}); "
            "drop or fix them before projecting"
        )
    return X
