"""Two-time correlation maps and the non-equilibrium measure, on constructed and real data."""

import numpy as np
import pytest

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
