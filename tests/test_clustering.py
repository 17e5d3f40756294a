"""HDBSCAN clustering and pickle-free assignment of new points."""

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from core.maps.clustering import ClusterResult, assign_nearest, cluster_hdbscan

CENTRES = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])


@pytest.fixture
def blobs(rng):
    """Three Gaussian blobs (sd 1) 20 apart, 100 points each, and their true labels."""
    X = np.concatenate([rng.normal(centre, 1.0, size=(100, 2)) for centre in CENTRES])
    return X, np.repeat([0, 1, 2], 100)


def test_three_separated_blobs_are_found_exactly(blobs):
    """HDBSCAN finds the 3 blobs: ARI 1 against the truth, with little noise."""
    X, truth = blobs
    result = cluster_hdbscan(X)
    assert isinstance(result, ClusterResult)
    assert result.n_clusters == 3
    clustered = result.labels != -1
    assert adjusted_rand_score(truth[clustered], result.labels[clustered]) == 1.0
    assert adjusted_rand_score(truth, result.labels) >= 0.99
    assert result.noise_fraction == pytest.approx(np.mean(~clustered))
    assert result.noise_fraction < 0.05
    assert result.labels.dtype == np.int64 and result.labels.shape == (300,)
    assert result.probabilities.shape == (300,) and result.probabilities.max() <= 1.0
    assert json.loads(json.dumps(result.params)) == {
        "method": "hdbscan", "min_cluster_size": 15, "min_samples": None,
        "cluster_selection_epsilon": 0.0, "n_samples": 300,
    }


def test_selection_epsilon_merges_close_clusters(rng):
    """Blobs 3 apart merge once cluster_selection_epsilon exceeds their gap; 100 away does not."""
    X = np.concatenate([rng.normal(c, 0.3, size=(100, 2)) for c in ([0, 0], [3, 0], [100, 0])])
    assert cluster_hdbscan(X).n_clusters == 3
    assert cluster_hdbscan(X, cluster_selection_epsilon=10.0).n_clusters == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_cluster_size": 1}, r"min_cluster_size=1 must be an integer of at least 2"),
        ({"min_samples": 0}, r"min_samples=0 must be None or an integer of at least 1"),
        ({"cluster_selection_epsilon": -1.0}, r"cluster_selection_epsilon=-1.0 must be"),
        ({"min_samples": 300}, r"min_samples=300 must be below the number of points \(300\)"),
    ],
)
def test_invalid_params_are_refused(blobs, kwargs, message):
    """Bad parameters are refused, quoting the value and what is allowed."""
    with pytest.raises(ValueError, match=message):
        cluster_hdbscan(blobs[0], **kwargs)


def test_too_few_points_say_what_to_do(rng):
    """Fewer points than min_cluster_size: a message naming both and the fix."""
    with pytest.raises(ValueError, match=r"at least min_cluster_size=15 points, got 10: lower"):
        cluster_hdbscan(rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        cluster_hdbscan(np.full((20, 2), np.nan))


def test_assign_nearest_uses_the_nearest_clustered_point():
    """New points take the label of the nearest non-noise point; noise points are skipped."""
    X_fit = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 0.0], [5.1, 0.0]])
    labels = np.array([0, 1, -1, -1])
    X_new = np.array([[1.0, 0.0], [9.0, 0.0], [4.9, 0.0], [5.2, 0.0]])  # last two: nearest is noise
    assert assign_nearest(X_new, X_fit, labels).tolist() == [0, 1, 0, 1]
    assert assign_nearest(X_new, X_fit, np.full(4, -1)).tolist() == [-1, -1, -1, -1]
    assert assign_nearest(np.empty((0, 2)), X_fit, labels).shape == (0,)


def test_assign_nearest_reproduces_blob_labels(blobs):
    """Points drawn afresh around each blob centre get that blob's cluster."""
    X, _ = blobs
    result = cluster_hdbscan(X)
    centre_labels = assign_nearest(CENTRES, X, result.labels)
    assert sorted(centre_labels.tolist()) == [0, 1, 2]
    fresh = np.repeat(CENTRES, 10, axis=0) + np.random.default_rng(1).normal(size=(30, 2))
    assert assign_nearest(fresh, X, result.labels).tolist() == np.repeat(centre_labels, 10).tolist()


def test_assign_nearest_refuses_mismatched_shapes():
    """Labels must match X_fit's rows and X_new its columns."""
    with pytest.raises(ValueError, match=r"labels_fit has shape \(3,\); expected \(4,\)"):
        assign_nearest(np.zeros((1, 2)), np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="X_new has 3 features but X_fit has 2"):
        assign_nearest(np.zeros((1, 3)), np.zeros((4, 2)), np.zeros(4))
