"""UMAP-guided PCA sampling on hand-made clusters whose weights and ranges are known."""

import numpy as np
import pytest

from core.synthesis.umap_pca import UMAPGuidedPCA

# Three clusters of four core members each, centroids (0, 0), (1, 0) and (5, 0) on the map;
# latents of cluster j are (±1 + 10 j, 0): mean (10 j, 0), std (1, 0).
CENTROIDS = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
OFFSETS = np.array([[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]])


def hand_made_map():
    coords = np.concatenate([c + OFFSETS for c in CENTROIDS])
    latents = np.concatenate([[[s + 10 * j, 0.0] for s in (-1, 1, -1, 1)] for j in range(3)])
    labels = np.repeat([0, 1, 2], 4)
    probs = np.ones(12)
    # one weak member (membership 0.5) far away: must not move cluster 0's centroid or spread
    coords = np.vstack([coords, [[0.0, 40.0]]])
    latents = np.vstack([latents, [[500.0, 500.0]]])
    return latents, coords, np.append(labels, 0), np.append(probs, 0.5)


def fitted(**params):
    return UMAPGuidedPCA(**params).fit(*hand_made_map())


def test_centroids_come_from_core_members_only():
    """The weak member (membership 0.5 <= 0.8) is left out of centroid, mean and spread."""
    s = fitted()
    np.testing.assert_allclose(s.centroids_, CENTROIDS, atol=1e-12)
    np.testing.assert_allclose(s.means_, [[0, 0], [10, 0], [20, 0]], atol=1e-12)
    np.testing.assert_allclose(s.stds_, [[1, 0]] * 3, atol=1e-12)


def test_softmax_weights_over_two_nearest_centroids():
    """w_j ∝ exp(−d²/T) over the k = 2 nearest; by hand at u = (0.2, 0) and midway."""
    w = fitted().weights([[0.2, 0.0], [0.5, 0.0], [4.0, 0.0]])
    # (0.2, 0): d² = 0.04 and 0.64, T = 0.1 -> w0 = 1 / (1 + e^-6)
    np.testing.assert_allclose(w[0], [1 / (1 + np.exp(-6)), 1 - 1 / (1 + np.exp(-6)), 0])
    np.testing.assert_allclose(w[1], [0.5, 0.5, 0.0])
    # (4, 0): nearest are (5, 0) d² = 1 and (1, 0) d² = 9 -> (0, 1/(1+e^80), ~1)
    assert w[2, 0] == 0 and w[2, 2] == pytest.approx(1.0) and 0 < w[2, 1] < 1e-30


def test_far_query_still_has_weights():
    """A click far from every centroid gives finite weights, not 0/0."""
    w = fitted().weights([[1e4, 1e4]])
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0)


def test_temperature_and_k_are_parameters():
    """Large T shares the weight; k = 3 gives the third centroid some."""
    w = fitted(temperature=1e6, k_nearest=3).weights([[0.5, 0.0]])
    np.testing.assert_allclose(w[0], [1 / 3] * 3, rtol=1e-4)


def test_draws_are_clamped_to_the_picked_cluster_range():
    """With a huge noise scale every draw sits at μ ± 2.5σ of its cluster; σ = 0 stays put."""
    s = fitted(noise_scale=1e6)
    z = s.sample([[0.0, 0.0], [5.0, 0.0]], n=50, seed=3)  # (2, 50, 2)
    assert z.shape == (2, 50, 2) and z.dtype == np.float32
    np.testing.assert_allclose(np.sort(np.unique(z[0, :, 0])), [-2.5, 2.5])
    np.testing.assert_allclose(np.sort(np.unique(z[1, :, 0])), [17.5, 22.5])
    assert (z[..., 1] == 0).all()


def test_cluster_picked_by_weight_and_seed_repeats():
    """Midway between clusters 0 and 1 both are drawn about half the time; a seed repeats."""
    s = fitted(noise_scale=0.0)
    z = s.sample([[0.5, 0.0]], n=400, seed=7)
    assert set(np.unique(z[0, :, 0])) == {0.0, 10.0}
    assert 150 < (z[0, :, 0] == 10.0).sum() < 250
    np.testing.assert_array_equal(z, s.sample([[0.5, 0.0]], n=400, seed=7))


def test_bad_input_is_refused():
    """Unfitted use, a bad temperature and a map without core members say what to do."""
    with pytest.raises(RuntimeError, match="call fit first"):
        UMAPGuidedPCA().weights([[0, 0]])
    with pytest.raises(ValueError, match="temperature=0"):
        fitted(temperature=0)
    latents, coords, labels, probs = hand_made_map()
    with pytest.raises(ValueError, match="core members"):
        UMAPGuidedPCA().fit(latents, coords, labels, probs * 0.5)
