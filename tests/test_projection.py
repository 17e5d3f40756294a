"""Projector: PCA/UMAP maps, the fit sample, pickle-free persistence and its accuracy.

One UMAP fit on scikit-learn's digits (shared by the module) keeps numba's compilation to once.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

from core.maps.clustering import cluster_hdbscan
from core.maps.projection import GRAPH_SHARE, Projector, knn_fuzzy_transform

# Measured on this machine (seeded, 1500 of 1797 digits fitted, defaults otherwise):
DIGITS_ARI_FLOOR = 0.85  # UMAP + HDBSCAN(min_cluster_size=15) gave ARI 0.897 (2.3 % noise)
STORED_MEDIAN_FLOOR = 0.04  # stored vs UMAP transform, median gap / RMS radius: 0.020
STORED_P90_FLOOR = 0.15  # ... 90th percentile: 0.080


def orthonormal_columns(n, k, rng):
    """(n, k) columns with mean 0, orthogonal to each other, each with sum of squares n."""
    a = rng.normal(size=(n, k))
    q, _ = np.linalg.qr(a - a.mean(axis=0))  # combinations of centred columns stay centred
    return q * np.sqrt(n)


@pytest.fixture(scope="module")
def digits_fit():
    """Digits pixels (1797, 64), their digit classes, a UMAP projector fitted on 1500 rows, its
    embedding, and the (fraction, text) progress calls of that fit."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    proj = Projector("umap", fit_sample=1500)
    calls = []
    embedding = proj.fit_transform(X, progress=lambda fraction, text: calls.append((fraction, text)))
    return X, y, proj, embedding, calls


@pytest.fixture(scope="module")
def digits(digits_fit):
    """The fit of :func:`digits_fit` without its progress calls."""
    return digits_fit[:4]


# -- PCA ------------------------------------------------------------------------------------
def test_pca_recovers_a_line(rng):
    """Points along one direction in 5-D: one component explains all the variance."""
    direction = np.array([1.0, 2.0, -2.0, 0.0, 4.0]) / 5.0
    X = rng.normal(size=(400, 1)) * direction + np.array([1, 1, 1, 1, 1.0])
    proj = Projector("pca").fit(X)
    assert proj.explained_variance_ratio_[0] == pytest.approx(1.0, abs=1e-12)
    assert abs(proj.components_[0] @ direction) == pytest.approx(1.0, abs=1e-12)
    xy = proj.transform(X)
    assert xy.dtype == np.float32 and xy.shape == (400, 2)
    assert np.abs(xy[:, 1]).max() < 1e-5


def test_pca_recovers_a_plane_with_variances_4_and_1(rng):
    """A plane in 6-D with variances 4 and 1 along two known axes: ratios 0.8 and 0.2."""
    axes, _ = np.linalg.qr(rng.normal(size=(6, 2)))  # (6, 2) orthonormal
    coords = orthonormal_columns(300, 2, rng) * np.array([2.0, 1.0])
    X = coords @ axes.T + 3.0
    proj = Projector("pca").fit(X)
    np.testing.assert_allclose(proj.explained_variance_ratio_, [0.8, 0.2], atol=1e-10)
    np.testing.assert_allclose(np.abs(proj.components_ @ axes), np.eye(2), atol=1e-10)


def test_pca_fit_sample_path(rng):
    """N > fit_sample fits on a seeded sample, then places every row; same seed, same map."""
    X = rng.normal(size=(1000, 8)).astype(np.float32)
    proj = Projector("pca", fit_sample=300)
    xy = proj.fit_transform(X)
    assert proj.sampled_ and proj.n_fit_ == 300 and xy.shape == (1000, 2)
    assert np.unique(proj.fit_indices_).size == 300 and np.all(np.diff(proj.fit_indices_) > 0)
    assert np.array_equal(xy, proj.transform(X))
    again = Projector("pca", fit_sample=300).fit(X)
    assert np.array_equal(again.fit_indices_, proj.fit_indices_)
    small = Projector("pca").fit(X)
    assert not small.sampled_ and small.n_fit_ == 1000


def test_pca_round_trip_is_exact(rng):
    """A PCA projector rebuilt from arrays transforms identically, with JSON-able params."""
    X = rng.normal(size=(200, 10)).astype(np.float32)
    proj = Projector("pca", n_components=3).fit(X)
    arrays, params = proj.to_arrays()
    json.dumps(params)
    loaded = Projector.from_arrays(arrays, params)
    new = rng.normal(size=(50, 10)).astype(np.float32)
    assert np.array_equal(loaded.transform(new), proj.transform(new))
    assert np.array_equal(loaded.explained_variance_ratio_, proj.explained_variance_ratio_)


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "tsne"}, r"method='tsne' must be one of \('pca', 'umap'\)"),
        ({"n_components": 4}, r"n_components=4 must be 2 or 3"),
        ({"n_neighbors": 0}, r"n_neighbors=0 must be between 2 and 200"),
        ({"n_neighbors": 500}, r"n_neighbors=500 must be between 2 and 200"),
        ({"min_dist": 1.5}, r"min_dist=1.5 must be between 0 and 1"),
        ({"metric": "chebyshev"}, r"metric='chebyshev' must be one of"),
        ({"random_state": -1}, r"random_state=-1 must be between 0 and"),
        ({"fit_sample": 5}, r"fit_sample=5 must be an integer of at least 16"),
    ],
)
def test_invalid_params_are_refused_in_fit(kwargs, message, rng):
    """Bad parameters are stored by __init__ and refused by fit, quoting the value and range."""
    proj = Projector(**kwargs)
    assert all(getattr(proj, key) == value for key, value in kwargs.items())
    with pytest.raises(ValueError, match=message):
        proj.fit(rng.normal(size=(50, 4)))


def test_invalid_inputs_are_refused(rng):
    """Non-finite, 1-D, too-small inputs and unfitted or mismatched transforms are refused."""
    X = rng.normal(size=(50, 4))
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 row\(s\) with NaN or inf \(first: \[7\]\)"):
        Projector().fit(X)
    with pytest.raises(ValueError, match="must be 2-D"):
        Projector().fit(np.zeros(10))
    with pytest.raises(ValueError, match=r"UMAP needs more rows than n_neighbors=15; X has 10"):
        Projector("umap").fit(rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match=r"PCA with n_components=3 needs"):
        Projector("pca", n_components=3).fit(rng.normal(size=(20, 2)))
    with pytest.raises(RuntimeError, match="call fit first"):
        Projector().transform(X)
    with pytest.raises(ValueError, match="X has 3 features but the projector was fitted on 4"):
        Projector().fit(rng.normal(size=(50, 4))).transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="format"):
        Projector.from_arrays({}, {"method": "pca"})


def test_core_imports_stay_light():
    """Importing the science modules pulls in neither dash, prefect nor umap (imported lazily)."""
    code = (
        "import sys, core.maps.projection, core.maps.clustering, core.maps.quality;"
        "print(sorted(m for m in ('dash', 'prefect', 'umap', 'hdbscan') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the stored UMAP transform ---------------------------------------------------------------
def test_knn_fuzzy_transform_by_hand():
    """Equidistant neighbours give their plain mean; a zero distance copies that neighbour."""
    reference = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 8.0], [100.0, 100.0]], dtype=np.float32)
    indices = np.array([[0, 1, 2], [2, 0, 1]])
    distances = np.array([[1.0, 1.0, 1.0], [0.0, 0.5, 0.7]])
    out = knn_fuzzy_transform(distances, indices, reference)
    np.testing.assert_allclose(out, [[4 / 3, 8 / 3], [0.0, 8.0]], atol=1e-6)


def test_umap_fit_sample_path(digits):
    """1797 digits with fit_sample=1500: sampled_, 1500 fitted rows, every row placed."""
    X, _, proj, embedding = digits
    assert proj.sampled_ and proj.n_fit_ == 1500 and proj.fit_indices_.shape == (1500,)
    assert embedding.shape == (1797, 2) and embedding.dtype == np.float32
    assert np.isfinite(embedding).all()
    assert np.array_equal(embedding[proj.fit_indices_], proj.embedding_)


def test_umap_progress_rises_through_graph_and_epochs_to_one(digits_fit):
    """The fit reports the neighbour graph, every layout epoch, the placing of the unsampled rows,
    then 1.0; fractions never go back, and later transforms report nothing."""
    X, _, proj, _, calls = digits_fit
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert calls[0][1] == "UMAP neighbour graph of 1500 points (k=15)"
    share = 1500 / 1797  # of the work done by the fit; placing 297 rows is the rest
    epochs = [(f, text) for f, text in calls if text.startswith("UMAP layout: epoch")]
    assert epochs[0] == (pytest.approx(share * GRAPH_SHARE), "UMAP layout: epoch 0/500")
    assert epochs[-1] == (pytest.approx(share), "UMAP layout: epoch 500/500")
    during = {f for f, _ in epochs if share * GRAPH_SHARE < f < share}
    assert len(during) >= 400  # the layout moves the bar all along, not in one jump
    assert calls[-2] == (pytest.approx(share), "placing the other 297 points on the map")
    assert calls[-1] == (1.0, "UMAP map of 1797 points")
    n = len(calls)
    proj.transform(X[:3])
    assert len(calls) == n


def test_pca_progress_ends_at_one(rng):
    """PCA reports its start and its end, no more: it is one quick step."""
    calls = []
    Projector("pca").fit(rng.normal(size=(50, 4)), progress=lambda f, text: calls.append((f, text)))
    assert calls == [(0.0, "PCA of 50 points"), (1.0, "PCA fitted")]


def test_umap_then_hdbscan_separates_digits(digits):
    """UMAP of raw digit pixels clustered by HDBSCAN agrees with the true digits (ARI floor)."""
    _, y, _, embedding = digits
    result = cluster_hdbscan(embedding, min_cluster_size=15)
    ari = adjusted_rand_score(y, result.labels)
    print(f"digits UMAP+HDBSCAN ARI={ari:.3f} clusters={result.n_clusters} "
          f"noise={result.noise_fraction:.3f}")
    assert ari >= DIGITS_ARI_FLOOR


def test_stored_transform_tracks_umap_transform(digits):
    """On held-out digits the stored k-NN transform lands close to UMAP's own transform."""
    X, _, proj, embedding = digits
    held = np.setdiff1d(np.arange(len(X)), proj.fit_indices_)
    stored = proj.stored_transform(X[held])
    ref = proj.reference_embedding_
    rms_radius = np.sqrt(np.mean(np.sum((ref - ref.mean(axis=0)) ** 2, axis=1)))
    gap = np.linalg.norm(stored - embedding[held], axis=1) / rms_radius
    print(f"stored vs umap transform: median {np.median(gap):.3f}, "
          f"p90 {np.quantile(gap, 0.9):.3f} of the RMS radius {rms_radius:.2f}")
    assert np.median(gap) <= STORED_MEDIAN_FLOOR
    assert np.quantile(gap, 0.9) <= STORED_P90_FLOOR


def test_umap_round_trip_without_refit(digits):
    """A UMAP projector rebuilt from arrays uses the stored path; training points land home."""
    X, _, proj, _ = digits
    arrays, params = proj.to_arrays()
    json.dumps(params)
    loaded = Projector.from_arrays(arrays, params)
    assert loaded.umap_ is None and loaded.sampled_ and params["n_reference"] == 1500
    np.testing.assert_allclose(
        loaded.transform(X[proj.fit_indices_]), proj.embedding_, atol=1e-6
    )
    held = np.setdiff1d(np.arange(len(X)), proj.fit_indices_)
    assert np.array_equal(loaded.transform(X[held]), proj.stored_transform(X[held]))


def test_umap_reference_set_is_capped(digits, monkeypatch):
    """Beyond STORED_FIT_MAX fitted rows, a seeded subsample is kept for the stored transform."""
    import core.maps.projection as projection

    X, _, proj, _ = digits
    monkeypatch.setattr(projection, "STORED_FIT_MAX", 200)
    small = Projector("umap", n_neighbors=10).fit(X[:300])
    assert small.reference_latents_.shape == (200, 64)
    assert small.reference_embedding_.shape == (200, 2)
    assert np.isfinite(small.stored_transform(X[300:320])).all()


def test_projectors_survive_a_tiled_round_trip(store, digits, rng):
    """A projector stored with its map (core.data.results.projections) comes back and works."""
    from core.data.results.projections import read_projector, write_projection

    X, _, umap_proj, embedding = digits
    pca_proj = Projector("pca").fit(X)
    new = X[:40] + rng.normal(scale=0.5, size=(40, 64)).astype(np.float32)
    for proj in (pca_proj, umap_proj):
        id = write_projection(store, embedding, proj, {"latents_id": "lat-x"})
        loaded = read_projector(store, id)
        expected = proj.transform(new) if proj.method == "pca" else proj.stored_transform(new)
        assert np.array_equal(loaded.transform(new), expected)

