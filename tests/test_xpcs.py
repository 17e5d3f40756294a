"""Two-time correlation maps and the non-equilibrium measure, on constructed and real data."""

import numpy as np
import pytest

from core.xpcs.noise import fit_decay, noise_floor, shot_noise_counts
from core.xpcs.two_time import diagonal_baseline, non_equilibrium, sliding_two_time, two_time
from tests.conftest import shared_data


def test_toeplitz_map_gives_exactly_zero():
    """A map that depends only on t2 - t1 (equilibrium) has no deviation at all."""
    lag = np.abs(np.subtract.outer(np.arange(40), np.arange(40)))
    C = 1 + 0.3 * np.exp(-lag / 7.3)
    assert non_equilibrium(C) == 0.0
    assert np.array_equal(diagonal_baseline(C, min_lag=0), C)
    assert non_equilibrium(np.diag(np.full(6, 2.0)) + 1.0, min_lag=0) == 0.0


def test_block_map_matches_hand_computation():
    """C = 2 where t1, t2 are both in {0, 1}, else 1 (T = 4, main diagonal left out) gives 4/5.

    Off-diagonal entries: (0,1), (1,0) are 2, the other ten are 1; overall mean 14/12 = 7/6,
    total sum of squares 2 (5/6)^2 + 10 (1/6)^2 = 60/36 = 5/3. Lag +1 holds 2, 1, 1 (mean 4/3),
    deviations 2/3, -1/3, -1/3, squares summing to 2/3; lag -1 the same; lags +-2 and +-3 are
    all 1 and deviate by 0. Fraction = (4/3) / (5/3) = 4/5.
    """
    C = np.ones((4, 4))
    C[:2, :2] = 2.0
    assert non_equilibrium(C) == pytest.approx(0.8, abs=1e-12)
    C[np.diag_indices(4)] = 0.04  # an overwritten diagonal changes nothing
    assert non_equilibrium(C) == pytest.approx(0.8, abs=1e-12)


def test_two_time_of_constant_frames_is_all_ones():
    """Frames that never change correlate perfectly at every pair of times."""
    C = two_time(np.full((5, 6, 7), 3.5))
    assert C.shape == (5, 5) and np.allclose(C, 1.0)


def test_two_time_matches_hand_computation_with_roi():
    """Two frames of known pixels, with one pixel masked out, against the formula by hand."""
    frames = np.array([[[1.0, 2.0], [3.0, 100.0]], [[2.0, 2.0], [2.0, -5.0]]])
    roi = np.array([[True, True], [True, False]])
    # frame 0: 1, 2, 3 (mean 2); frame 1: 2, 2, 2 (mean 2)
    # <I0 I0> = 14/3, <I0 I1> = 12/3 = 4, <I1 I1> = 4
    expected = np.array([[14 / 3 / 4, 4 / 4], [4 / 4, 4 / 4]])
    assert np.allclose(two_time(frames, roi), expected)


def test_two_time_refuses_zero_intensity_and_bad_shapes():
    """An undefined ratio and a mismatched roi are errors that say what to do."""
    frames = np.ones((3, 4, 4))
    frames[1] = 0
    with pytest.raises(ValueError, match="no positive mean intensity"):
        two_time(frames)
    with pytest.raises(ValueError, match="must match"):
        two_time(np.ones((3, 4, 4)), np.ones((2, 2), bool))


def test_sliding_windows_consume_a_stream():
    """Windows start every `step` frames and equal the map of that slice."""
    frames = np.random.default_rng(0).poisson(4.0, size=(11, 6, 6)).astype(float) + 1
    maps = list(sliding_two_time(iter(frames), window=5, step=3))
    assert [start for start, _ in maps] == [0, 3, 6]
    assert np.allclose(maps[1][1], two_time(frames[3:8]))


@pytest.mark.parametrize("name", ["bnl_test_g2.npy", "yolk_plasma_q0p022.npy"])
def test_real_two_time_maps_give_a_fraction(name):
    """Measured maps (noisy; one with its diagonal overwritten) give a finite value in [0, 1]."""
    C = np.load(shared_data("xpcs_two_time", name))
    value = non_equilibrium(C)
    assert np.isfinite(value) and 0.0 <= value <= 1.0


def test_colloid_maps_are_symmetric_and_decay_from_the_diagonal():
    """Maps of real diffusing colloids: symmetric, and correlation falls with the lag."""
    frames = np.load(shared_data("colloids_bulk_water", "frames.npz"))["frames"]
    roi = np.zeros(frames.shape[1:], bool)
    roi[100:300, 200:400] = True
    for start, C in sliding_two_time(frames[:160], window=80, step=80, roi=roi):
        assert np.array_equal(C, C.T)
        by_lag = [np.diagonal(C, k).mean() for k in (1, 10, 40, 79)]
        assert all(a > b for a, b in zip(by_lag, by_lag[1:])), (start, by_lag)
        assert 0.0 <= non_equilibrium(C) <= 1.0


# -- noise floor -----------------------------------------------------------------------------
def speckle_counts(decay: np.ndarray, n_pixels: int, counts: float, seed: int) -> np.ndarray:
    """Photon counts (T, P, 1) of exponential speckle whose decay time (frames) may change with
    age: a complex AR(1) field per pixel, E_t = r_t E_(t-1) + sqrt(1 - r_t^2) w_t, r_t =
    exp(-1/decay_t), so |g1| between two frames is the product of the r between them (an
    independent generator: core.xpcs.noise draws its surrogates by circulant embedding)."""
    rng = np.random.default_rng(seed)
    r = np.exp(-1 / np.asarray(decay, float))
    white = (rng.standard_normal((len(r), n_pixels)) + 1j * rng.standard_normal((len(r), n_pixels))) / np.sqrt(2)
    field = np.empty_like(white)
    field[0] = white[0]
    for t in range(1, len(r)):
        field[t] = r[t] * field[t - 1] + np.sqrt(1 - r[t] ** 2) * white[t]
    return rng.poisson(counts * np.abs(field) ** 2).astype(float)[:, :, None]


def test_fit_decay_and_shot_noise_recover_a_model_map():
    """An exact map b + β exp(-2 (τ/τc)^γ) with 1/k̄ on its diagonal gives back its numbers."""
    lag = np.abs(np.subtract.outer(np.arange(80), np.arange(80)))
    C = 1.01 + 0.3 * np.exp(-2 * (lag / 12.0) ** 0.8)
    b, beta, decay, stretch = fit_decay(C)
    assert (b, beta, decay, stretch) == pytest.approx((1.01, 0.3, 12.0, 0.8), rel=1e-4)
    C[np.diag_indices(80)] += 1 / 4.0 + np.linspace(-1e-3, 1e-3, 80)  # 4 photons per pixel
    assert shot_noise_counts(C, b + beta) == pytest.approx(4.0, rel=1e-6)
    C[np.diag_indices(80)] = 0.04  # overwritten by its authors: no photon count to read
    assert shot_noise_counts(C, b + beta) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_equilibrium_speckle_stays_within_its_noise_floor(seed):
    """Constant decay time (10 frames), 400 pixels, 2 photons per pixel per frame: the measure
    is high (~0.15, all noise) but within its floor, with the pixel count and photon count
    inferred from the map alone (close to the truth) and with them given."""
    C = two_time(speckle_counts(np.full(80, 10.0), 400, 2.0, seed))
    inferred = noise_floor(C, n_surrogates=40)
    assert not inferred.significant, inferred.verdict
    assert 300 < inferred.n_pixels < 530 and inferred.mean_counts == pytest.approx(2.0, rel=0.2)
    assert inferred.decay_frames == pytest.approx(10.0, rel=0.2)
    given = noise_floor(C, n_pixels=400, mean_counts=2.0, n_surrogates=40)
    assert not given.significant, given.verdict
    assert inferred.measure > 0.05  # what the measure alone would have misread


def test_ageing_speckle_is_significantly_above_its_noise_floor():
    """Decay time growing from 3 to 30 frames over the scan, same pixels and photons: above the
    floor, from the map alone and with the pixel count given."""
    C = two_time(speckle_counts(np.linspace(3.0, 30.0, 80), 400, 2.0, seed=0))
    inferred = noise_floor(C, n_surrogates=40)
    assert inferred.significant and inferred.p_value < 0.05, inferred.verdict
    assert 300 < inferred.n_pixels < 530  # the drift did not inflate the inferred noise
    assert noise_floor(C, n_pixels=400, n_surrogates=40).significant


@pytest.mark.parametrize("name", ["bnl_test_g2.npy", "yolk_plasma_q0p022.npy"])
def test_real_maps_get_a_verdict_with_their_numbers(name):
    """The shared measured maps (no frames, so the pixel count is inferred) get a stated verdict."""
    C = np.load(shared_data("xpcs_two_time", name))
    result = noise_floor(C, n_surrogates=40)
    assert result.measure == non_equilibrium(C) and 0 < result.floor <= 1
    assert result.pixels_from == "inferred from the map's noise" and result.n_pixels > 0
    assert f"{result.measure:.3f}" in result.verdict and f"{result.floor:.3f}" in result.verdict
    assert ("significantly non-equilibrium" if result.significant
            else "not distinguishable from equilibrium") in result.verdict
