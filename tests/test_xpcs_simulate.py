"""The grain-boundary simulator (core.xpcs.simulate): numbers checked by hand, and its noise model
against two-time maps of simulated speckle frames."""

import numpy as np
import pytest

from core.xpcs.simulate import (
    K_B, PARAM_RANGES, GBParams, boundary_heights, draw_params, experiment_like, mode_variance,
    param_grid, simulate_maps, simulate_two_time, standard_error, to_array,
)
from core.xpcs.two_time import non_equilibrium, two_time

AGEING = dict(D=0.03, kappa=0.05, T=400.0)  # a soft boundary: its excess roughness relaxes over the window


def test_bulk_only_map_is_equilibrium_with_the_bulk_decay():
    """c = 0: a Toeplitz map (measure 0 to rounding, tolerance 1e-12) whose diagonal means are
    1 + β exp(−2 D q² τ); by hand, D = 0.05 nm²/s, q = 1 nm⁻¹, τ = 5 s, β = 0.2:
    1 + 0.2 e^{−0.5} = 1.121306."""
    C = simulate_two_time(GBParams(D=0.05, kappa=0.1, c=0.0, T=400.0), n_frames=32, q=1.0, dt=1.0, beta=0.2, rng=0)
    assert non_equilibrium(C) < 1e-12
    assert np.diagonal(C, 5).mean() == pytest.approx(1.121306, abs=1e-6)
    lags = np.arange(32)
    np.testing.assert_allclose([np.diagonal(C, k).mean() for k in lags], 1 + 0.2 * np.exp(-2 * 0.05 * lags), rtol=1e-12)


def test_raising_the_boundary_share_raises_the_measure():
    """Same boundary (same seed), c = 0 → 0.25 → 0.5: the non-equilibrium measure rises each time."""
    measures = [non_equilibrium(simulate_two_time(GBParams(c=c, **AGEING), rng=3)) for c in (0.0, 0.25, 0.5)]
    assert measures[0] < 1e-12 < measures[1] < measures[2], measures
    assert measures[2] > 1e-3, measures  # well above rounding


def test_the_map_ages_as_the_boundary_relaxes():
    """Decorrelation slows with age: at lag 16 frames, C is higher late (t1 = 44) than early (t1 = 0)."""
    C = simulate_maps([GBParams(c=0.5, **AGEING)] * 16, rng=1).mean(axis=0)
    assert C[44, 60] > C[0, 16] + 0.01, (C[0, 16], C[44, 60])


def test_equilibrium_roughness_matches_equipartition_and_grows_with_T():
    """A stiff boundary (κ = 0.5 J/m²: its longest mode relaxes in 2.6 s) is at equilibrium after
    63 s: <h²> = k_B T L / (12 κ d) = 1.380649e-23 · 400 · 128 / (12 · 0.5e-18 · 2) = 0.0589 nm²
    (the 64 lattice modes hold 99 % of it), and it scales with T: 500 K gives 5/3 of 300 K."""
    def late_variance(T):
        params = [GBParams(D=0.1, kappa=0.5, c=0.3, T=T)] * 32
        h = boundary_heights(params, rngs=list(np.random.default_rng(7).spawn(32)))  # (B, T, G, L)
        return float(np.mean(h[:, -1].astype(np.float64) ** 2))

    assert K_B * 400 * 128 / (12 * 0.5e-18 * 2) == pytest.approx(0.0589, abs=1e-4)
    assert mode_variance(np.array([0.5]), np.array([400.0])).sum() == pytest.approx(0.0589, rel=0.02)
    assert late_variance(400.0) == pytest.approx(0.0589, rel=0.1)
    assert late_variance(500.0) / late_variance(300.0) == pytest.approx(5 / 3, rel=0.02)


def test_hotter_boundary_decorrelates_more():
    """T raises the boundary's fluctuation: with c = 1 (boundary only), C falls further at long lags."""
    hot, cold = (simulate_two_time(GBParams(D=0.03, kappa=0.1, c=1.0, T=T), rng=2) for T in (500.0, 300.0))
    assert np.diagonal(hot, 32).mean() < np.diagonal(cold, 32).mean() - 0.005


def test_same_seed_same_map_whatever_the_batch():
    """A seed fixes every map; batching changes nothing; another seed gives another boundary."""
    params = draw_params(5, rng=0)
    maps = simulate_maps(params, n_frames=24, rng=11, batch_size=2)
    np.testing.assert_array_equal(maps, simulate_maps(params, n_frames=24, rng=11, batch_size=8))
    np.testing.assert_array_equal(maps[0], simulate_two_time(params[0], n_frames=24, rng=11))
    assert not np.allclose(maps, simulate_maps(params, n_frames=24, rng=12))
    assert maps.shape == (5, 24, 24) and np.array_equal(maps, maps.transpose(0, 2, 1))


def test_draws_and_grid_cover_the_ranges():
    """Draws stay in the ranges; a 2-per-axis grid is the 16 corners; bad parameters are refused."""
    values = to_array(draw_params(200, rng=1))
    for column, name in enumerate(("D", "kappa", "c", "T")):
        lo, hi = PARAM_RANGES[name]
        assert lo <= values[:, column].min() and values[:, column].max() <= hi
    grid = to_array(param_grid(2))
    assert grid.shape == (16, 4) and sorted(set(grid[:, 0])) == pytest.approx(PARAM_RANGES["D"])
    assert param_grid({"c": 3})[1].c == 0.25 and len(param_grid({"c": 3})) == 3
    with pytest.raises(ValueError, match="kappa > 0"):
        GBParams(D=0.1, kappa=0.0, c=0.2, T=300.0)


def test_standard_error_by_hand():
    """k = 1 photon, no background, β = 0.2, 100 pixels: (β + 1/k)/√P = 1.2/10 = 0.12."""
    assert standard_error(1.0, 100, 0.2)[0] == pytest.approx(0.12)


def test_noise_model_matches_two_time_of_speckle_frames():
    """Independent measurement: gamma–Poisson speckle (k = 0.5, b = 0.25, β = 0.3, 3,000 pixels,
    60 frames) through core.xpcs.two_time scatters as standard_error says (off the diagonal
    within 10 %), and its diagonal sits at 1 + β k²/m² + 1/m = 2.4667."""
    rng = np.random.default_rng(0)
    k, b, beta, pixels, frames = 0.5, 0.25, 0.3, 3000, 60
    speckle = rng.gamma(1 / beta, beta, size=(frames, pixels, 1))
    C = two_time(rng.poisson(k * speckle + b).astype(np.float64))
    off, diag = standard_error(k, pixels, beta, b)
    assert C[np.triu_indices(frames, 1)].std() == pytest.approx(off, rel=0.1)
    assert np.diag(C).mean() == pytest.approx(1 + beta * k**2 / 0.75**2 + 1 / 0.75, abs=3 * diag / np.sqrt(frames))


def test_experiment_like_noise_shrinks_as_one_over_root_pixels():
    """16 × the pixels → a quarter of the noise; the mask removes pixels; background lowers contrast."""
    C = simulate_two_time(GBParams(D=0.05, kappa=0.1, c=0.2, T=400.0), rng=0)
    iu = np.triu_indices(len(C), 1)

    def noise(pixels, mask_fraction=0.0, background=0.0):
        out = experiment_like(C, photons_per_pixel=0.1, n_pixels=pixels, background=background, rng=5,
                              mask_fraction=mask_fraction)
        clean = experiment_like(C, photons_per_pixel=0.1, n_pixels=10**16, background=background, rng=5)
        return (out - clean)[iu].std(), clean

    small, clean = noise(1_000)
    assert small / noise(16_000)[0] == pytest.approx(4.0, rel=0.05)
    assert noise(4_000, mask_fraction=0.75)[0] == pytest.approx(small, rel=0.05)
    _, dim = noise(1_000, background=0.1)  # k²/m² = 1/4
    np.testing.assert_allclose((dim - 1)[iu], (clean - 1)[iu] / 4, rtol=1e-4)
    assert clean[0, 0] == pytest.approx(1 + 0.2 + 1 / 0.1, rel=1e-4)  # contrast + shot noise of 0.1 photon
    with pytest.raises(ValueError, match="mask leaves"):
        experiment_like(C, photons_per_pixel=1.0, n_pixels=10, mask_fraction=0.95)


def test_simulation_ranges_are_checked_before_a_run():
    """Reversed or unphysical ranges are refused by the flow's parameter model, with the reason."""
    from pydantic import ValidationError

    from flows.params import SimulateXPCSParams, SimulationRanges

    assert SimulationRanges().model_dump() == {k: tuple(v) for k, v in PARAM_RANGES.items()}
    with pytest.raises(ValidationError, match="low end must not exceed"):
        SimulationRanges(T=(500.0, 300.0))
    with pytest.raises(ValidationError, match="kappa > 0"):
        SimulationRanges(kappa=(0.0, 0.5))
    assert SimulateXPCSParams(grid_per_axis=3).sampling == "grid" and SimulateXPCSParams().sampling == "random"


def test_boundary_increments_match_the_ornstein_uhlenbeck_formula():
    """Ageing by hand: each mode starts with variance s0² (quench), tends to σ² at rate γ, so
    Var a(t) = σ² + (s0² − σ²) e^{−2γt}, Cov(a(t1), a(t2)) = Var a(t1) e^{−γ(t2−t1)}, and
    <(h(t2) − h(t1))²> = Σ_n [Var a(t1) + Var a(t2) − 2 Cov]. 512 simulated boundaries agree
    within 10 % early (fast decorrelation) and late (slower), which also checks the exact
    discretisation: no step-size error at dt = 1 s while the fastest mode relaxes in ~1 ms."""
    from core.xpcs.simulate import T_FORMED, mode_rates

    kappa, T = 0.05, 400.0
    rate = mode_rates(np.array([kappa]))[0]
    s2, s02 = mode_variance(np.array([kappa]), np.array([T]))[0], mode_variance(np.array([kappa]), np.array([T_FORMED]))[0]

    def expected(t1, t2):
        var = [s2 + (s02 - s2) * np.exp(-2 * rate * t) for t in (t1, t2)]
        return float(np.sum(var[0] + var[1] - 2 * var[0] * np.exp(-rate * (t2 - t1))))

    h = boundary_heights([GBParams(D=0.1, kappa=kappa, c=0.3, T=T)] * 64,
                         rngs=list(np.random.default_rng(4).spawn(64))).astype(np.float64)  # (B, T, G, L)
    for t1, t2 in ((0, 4), (0, 16), (44, 60), (0, 63)):
        measured = np.mean((h[:, t2] - h[:, t1]) ** 2)
        assert measured == pytest.approx(expected(t1, t2), rel=0.1), (t1, t2)
    assert expected(0, 16) > 1.3 * expected(44, 60)  # the ageing the map shows
