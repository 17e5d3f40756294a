"""Monte Carlo variations: perturbation statistics, reproducibility, filters, stopping, the
trace, and clustering of variations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from core.variations.descriptors import DESCRIPTORS
from core.models.generator import prior_latents
from core.models.gan import GAN, GANConfig
from core.variations.clusters import cluster_variations, hac, scale_descriptors
from core.variations.sampling import (
    FilterParams, MemorySink, VariationParams, expected_distance_per_dim, perturbations,
    sample_variations,
)

D = 8


@pytest.fixture(scope="module")
def gan() -> GAN:
    """An untrained, seeded 32 px GAN: its images change with z, which is all sampling needs."""
    torch.manual_seed(0)
    model = GAN(GANConfig(image_size=32, latent_dim=D, base_channels=4, max_channels=8)).eval()
    for _ in range(3):
        model.grow()
    model.set_alpha(1.0)
    return model


def run(gan, refs, **changes) -> tuple[dict, MemorySink]:
    params = VariationParams(**{"gamma": 1.0, "n_per_reference": 20, "batch_size": 8, **changes})
    sink = MemorySink()
    return sample_variations(gan, refs, params, sink), sink


def test_perturbations_are_bounded_sorted_and_seeded():
    """|ε_k| <= γ, rows ordered by ‖ε‖, one stream per (seed, reference)."""
    eps = perturbations(seed=3, i=0, n=500, d=16, gamma=0.7)
    assert eps.shape == (500, 16) and eps.dtype == np.float32
    assert np.abs(eps).max() <= 0.7 and np.abs(eps).max() > 0.69
    assert np.all(np.diff(np.linalg.norm(eps, axis=1)) >= -1e-6)
    np.testing.assert_array_equal(eps, perturbations(3, 0, 500, 16, 0.7))
    assert not np.array_equal(eps, perturbations(3, 1, 500, 16, 0.7))
    np.testing.assert_allclose(perturbations(3, 0, 500, 16, 1.4), 2 * eps, rtol=1e-6)


def test_per_dimension_distance_of_uniform_perturbations():
    """For U[−γ, γ]: E|ε_k| = γ/2, E ε_k² = γ²/3, so mean ‖ε‖₂/d ≈ γ/sqrt(3d) at large d
    (γ = 1, d = 32: 0.102, the paper's ≈ 0.1)."""
    gamma, d = 0.8, 300
    eps = perturbations(seed=0, i=0, n=4000, d=d, gamma=gamma).astype(np.float64)
    assert np.abs(eps).mean() == pytest.approx(gamma / 2, rel=0.005)
    assert (eps**2).mean() == pytest.approx(gamma**2 / 3, rel=0.005)
    per_dim = (np.linalg.norm(eps, axis=1) / d).mean()
    assert per_dim == pytest.approx(gamma / math.sqrt(3 * d), rel=0.005)
    assert expected_distance_per_dim(1.0, 32) == pytest.approx(0.1021, abs=1e-4)


def test_summary_counts_and_distance(gan):
    """The summary's counts add up and its distance is mean ‖ε‖/d of the drawn ε."""
    summary, sink = run(gan, prior_latents(3, D, seed=1))
    eps = np.concatenate([e for i in range(3) for e in sink.eps[i]])
    assert summary["status"] == "completed" and summary["references_done"] == 3
    assert summary["n_drawn"] == len(eps) == 60
    assert summary["n_kept"] == int(sink.table()["kept"].sum())
    assert summary["distance_per_dim"] == pytest.approx(np.linalg.norm(eps, axis=1).mean() / D)
    assert summary["expected_distance_per_dim"] == pytest.approx(1 / math.sqrt(3 * D))
    table = sink.table()
    for name, (column, passes) in FilterParams.RULES.items():
        if name in summary["rejected"]:
            threshold = getattr(FilterParams(), name)
            assert summary["rejected"][name] == int((~passes(table[column], threshold)).sum())


def test_same_seed_same_result_whatever_the_batch_size(gan):
    """Seed fixes everything; batch size changes nothing; another seed changes the draws."""
    refs = prior_latents(2, D, seed=2)
    _, a = run(gan, refs, batch_size=8)
    _, b = run(gan, refs, batch_size=8)
    _, c = run(gan, refs, batch_size=3)
    _, other = run(gan, refs, batch_size=8, seed=1)
    pd.testing.assert_frame_equal(a.table(), b.table())
    pd.testing.assert_frame_equal(a.descriptor_table(), b.descriptor_table())
    pd.testing.assert_frame_equal(a.table(), c.table(), check_exact=False, atol=1e-5)
    pd.testing.assert_frame_equal(a.descriptor_table(), c.descriptor_table(), check_exact=False,
                                  atol=1e-5)
    assert not np.allclose(a.table()["magnitude"], other.table()["magnitude"])


def test_kept_samples_are_ordered_and_traced(gan):
    """Kept images arrive in order of ‖ε‖; the trace is the mean of the reference and them."""
    _, sink = run(gan, prior_latents(1, D, seed=4), n_per_reference=30)
    table = sink.table()
    assert np.all(np.diff(table["magnitude"]) >= 0) and table["sample"].tolist() == list(range(30))
    kept = sink.kept_images(0)
    assert len(kept) == table["kept"].sum() > 0
    trace = (sink.reference_images[0] + kept.sum(axis=0)) / (1 + len(kept))
    np.testing.assert_allclose(sink.traces[0], trace, atol=1e-6)
    assert set(sink.descriptor_table().columns) >= {"kept_fraction", "iou_mean", "channel_iqr_var_0"}


def test_filters_by_hand_and_switched_off(gan):
    """Each filter rejects what its threshold says; all filters off keeps everything."""
    metrics = pd.DataFrame({
        "entropy_diff": [0.1, 0.3, 0.1, 0.1], "iou": [0.9, 0.9, 0.4, 0.9],
        "intensity_dev": [0.1, 0.1, 0.1, 0.25], "area_diff": [0.0, 0.0, 0.0, 0.5],
    })
    kept, failed = FilterParams().apply(metrics)
    assert kept.tolist() == [True, False, False, False]
    assert failed == {"entropy_max": 1, "iou_min": 1, "intensity_max": 1}
    kept, failed = FilterParams(entropy_max=None, iou_min=0.3, intensity_max=0.3).apply(metrics)
    assert kept.all() and failed == {"iou_min": 0, "intensity_max": 0}
    off = FilterParams(None, None, None, None)
    summary, sink = run(gan, prior_latents(2, D, seed=1), filters=off)
    assert summary["n_kept"] == summary["n_drawn"] == 40 and summary["rejected"] == {}
    assert sink.descriptor_table()["kept_fraction"].tolist() == [1.0, 1.0]


def test_should_stop_ends_cleanly_between_batches(gan):
    """A stop after 3 batches of 8 (reference 0 done, reference 1 half done) is reported."""
    calls = iter(range(100))
    progress = []
    params = VariationParams(n_per_reference=16, batch_size=8)
    sink = MemorySink()
    summary = sample_variations(gan, prior_latents(3, D), params, sink,
                                on_progress=lambda done, total: progress.append((done, total)),
                                should_stop=lambda: next(calls) >= 3)
    assert summary["status"] == "stopped" and summary["references_done"] == 1
    assert summary["n_drawn"] == 24 and progress == [(8, 48), (16, 48), (24, 48)]
    assert list(sink.values) == [0] and len(sink.table()) == 24


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"gamma": 0}, "gamma=0 must be > 0"),
        ({"n_per_reference": 0}, "n_per_reference=0 must be between 1 and 1000000"),
        ({"descriptors": ["nope"]}, r"descriptors \['nope'\] are unknown"),
        ({"filters": {"iou_min": 1.5}}, r"iou_min=1.5 must be None \(off\) or a number >= 0"),
        ({"filters": {"entropy_max": -0.1}}, "entropy_max=-0.1 must be None"),
    ],
)
def test_invalid_params(gan, changes, message):
    """Bad parameters are refused with the value and what is allowed."""
    with pytest.raises(ValueError, match=message):
        sample_variations(gan, prior_latents(1, D), VariationParams(**changes), MemorySink())


def test_descriptor_names_default_to_the_registry():
    """By default every registered descriptor is computed."""
    assert VariationParams().descriptors == tuple(DESCRIPTORS)


def test_hac_recovers_known_groups():
    """Three separated groups of descriptors come back as three HAC clusters and three HDBSCAN
    clusters; the dendrogram has n − 1 merges; the seeded MDS layout repeats."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [10, 0, 5], [0, 10, -5]], float)
    truth = np.repeat([0, 1, 2], 10)
    table = pd.DataFrame(centres[truth] + rng.normal(0, 0.3, (30, 3)), columns=["a", "b", "c"])
    table["c"] = table["c"].where(np.arange(30) != 4, np.nan)  # a missing value is tolerated
    result = cluster_variations(table, n_clusters=3, min_cluster_size=5)
    pairs = pd.crosstab(result.hac_labels, truth)
    assert (pairs.to_numpy() > 0).sum() == 3  # one-to-one
    assert pd.crosstab(result.hdbscan_labels, truth).shape == (3, 3)
    assert len(result.dendrogram["icoord"]) == len(result.dendrogram["dcoord"]) == 29
    assert sorted(result.dendrogram["leaves"]) == list(range(30))
    assert result.embedding.shape == (30, 2) and result.embedding_method == "mds"
    again = cluster_variations(table, n_clusters=3, min_cluster_size=5)
    np.testing.assert_array_equal(result.embedding, again.embedding)
    labels, _ = hac(result.X, distance=1e-9)
    assert labels.max() + 1 == 30  # cut below every merge: each variation alone


def test_scaling_handles_missing_and_constant_columns():
    """inf/NaN take the column median, all-NaN columns go, constant columns become 0."""
    table = pd.DataFrame({"x": [1.0, 2.0, np.inf, 3.0], "gone": [np.nan] * 4, "flat": [5.0] * 4})
    X, cols = scale_descriptors(table)
    assert cols == ["x", "flat"]
    np.testing.assert_allclose(X[:, 0], (np.array([1, 2, 2, 3]) - 2) / np.sqrt(0.5))
    assert (X[:, 1] == 0).all()
    with pytest.raises(ValueError, match="at least 3 variations, got 2"):
        cluster_variations(table.iloc[:2])
