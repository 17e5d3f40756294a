"""Latent-space quality figures, checked against numbers worked out by hand."""

import json
import math

import numpy as np
import pytest

from core.maps.quality import active_units, cluster_scores, latent_quality, participation_ratio


def orthonormal_columns(n, k, rng):
    """(n, k) columns with mean 0, orthogonal to each other, each with sum of squares n."""
    a = rng.normal(size=(n, k))
    q, _ = np.linalg.qr(a - a.mean(axis=0))
    return q * np.sqrt(n)


@pytest.fixture
def blobs(rng):
    """Four tight blobs (sd 0.5) 20 apart in 3-D, 100 points each, with their labels."""
    centres = np.array([[0, 0, 0], [20, 0, 0], [0, 20, 0], [0, 0, 20]], dtype=float)
    X = np.concatenate([rng.normal(c, 0.5, size=(100, 3)) for c in centres])
    return X, np.repeat(np.arange(4), 100)


# -- participation ratio --------------------------------------------------------------------
def test_participation_ratio_of_isotropic_gaussian_is_d(rng):
    """An isotropic Gaussian in d = 6 spreads over ~6 dimensions."""
    assert participation_ratio(rng.normal(size=(20_000, 6))) == pytest.approx(6.0, rel=0.01)


def test_participation_ratio_of_line_and_planes(rng):
    """A line gives 1, an equal-variance plane 2, variances 4 and 1 give 25/17."""
    t = rng.normal(size=(100, 1))
    assert participation_ratio(t * [1.0, -2.0, 0.5, 3.0]) == pytest.approx(1.0, abs=1e-12)
    axes, _ = np.linalg.qr(rng.normal(size=(5, 2)))
    plane = orthonormal_columns(200, 2, rng)
    assert participation_ratio(plane @ axes.T) == pytest.approx(2.0, abs=1e-9)
    assert participation_ratio((plane * [2.0, 1.0]) @ axes.T) == pytest.approx(25 / 17, abs=1e-9)
    assert participation_ratio(np.ones((10, 3))) == 0.0


# -- active units ---------------------------------------------------------------------------
def test_active_units_by_hand():
    """KL per dimension: 0 (unused), 0.5 (mu=±1), (1 - ln 2)/2 (var 2), 0.005 (mu=0.1)."""
    n = 10
    mu = np.zeros((n, 4))
    logvar = np.zeros((n, 4))
    mu[:, 1] = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    logvar[:, 2] = math.log(2.0)
    mu[:, 3] = 0.1
    count, kl = active_units(mu, logvar)
    np.testing.assert_allclose(kl, [0.0, 0.5, (1 - math.log(2)) / 2, 0.005], atol=1e-15)
    assert kl[0] == 0.0
    assert count == 2
    assert active_units(mu, logvar, threshold=0.001)[0] == 3


def test_active_units_refuses_mismatched_shapes():
    """mu and logvar must have one shape; the threshold must be >= 0."""
    with pytest.raises(ValueError, match=r"mu \(3, 2\) and logvar \(3, 4\)"):
        active_units(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"threshold=-0.1 must be"):
        active_units(np.zeros((3, 2)), np.zeros((3, 2)), threshold=-0.1)


# -- cluster scores -------------------------------------------------------------------------
def test_cluster_scores_of_separated_blobs(blobs):
    """Tight, far-apart blobs: silhouette near 1, Davies-Bouldin near 0, large CH."""
    scores = cluster_scores(*blobs)
    assert scores["silhouette"] > 0.9
    assert scores["davies_bouldin"] < 0.1
    assert scores["calinski_harabasz"] > 1000


def test_cluster_scores_ignore_noise_and_need_two_clusters(blobs, rng):
    """Noise points change nothing; one cluster (or none) gives None everywhere."""
    X, labels = blobs
    noisy_X = np.concatenate([X, rng.uniform(-50, 50, size=(30, 3))])
    noisy_labels = np.concatenate([labels, np.full(30, -1)])
    assert cluster_scores(noisy_X, noisy_labels) == cluster_scores(X, labels)
    none = {"silhouette": None, "davies_bouldin": None, "calinski_harabasz": None}
    assert cluster_scores(X, np.zeros(400, dtype=int)) == none
    assert cluster_scores(X, np.full(400, -1)) == none


def test_silhouette_uses_a_seeded_sample(blobs):
    """Above sample_size the silhouette comes from a seeded sample: repeatable, still close."""
    X, labels = blobs
    full = cluster_scores(X, labels)["silhouette"]
    first = cluster_scores(X, labels, sample_size=80)["silhouette"]
    assert first == cluster_scores(X, labels, sample_size=80)["silhouette"]
    assert first != full and first == pytest.approx(full, abs=0.02)


# -- everything together --------------------------------------------------------------------
def test_latent_quality_is_json_able_with_expected_keys(blobs, rng):
    """The combined dict has plain JSON values and the hand-countable figures."""
    X, labels = blobs
    mu = np.concatenate([X, np.zeros((400, 2))], axis=1)  # 5-D latent, 2 unused dimensions
    logvar = np.zeros_like(mu)
    labels = labels.copy()
    labels[:40] = -1
    quality = latent_quality(mu, logvar, labels, embedding=X[:, :2])
    assert set(quality) == {
        "silhouette", "davies_bouldin", "calinski_harabasz", "participation_ratio",
        "active_units", "latent_dim", "n_clusters", "noise_fraction", "scored_on",
    }
    assert json.loads(json.dumps(quality)) == quality
    assert quality["active_units"] == 3 and quality["latent_dim"] == 5
    assert quality["n_clusters"] == 4 and quality["noise_fraction"] == 0.1
    assert quality["scored_on"] == "embedding"
    assert type(quality["participation_ratio"]) is float
    # Centres at 0 and 20 e_1..e_3: covariance eigenvalues in ratio 4 : 4 : 1 -> 81/33.
    assert quality["participation_ratio"] == pytest.approx(81 / 33, abs=0.01)
    on_latent = latent_quality(mu, logvar, labels)
    assert on_latent["scored_on"] == "latent"
    assert on_latent["silhouette"] != quality["silhouette"]
