"""Cahn–Hilliard simulator (core.data.cahn_hilliard): conservation, coarsening, the scheme's
growth factor and the structure factor, on cases with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import cahn_hilliard as ch


def test_structure_factor_of_a_cosine():
    """cos(2π·4x/32) puts all its power in the bin at q = 2π·4/32 = π/4 rad/px."""
    x = np.arange(32)
    field = np.broadcast_to(np.cos(2 * np.pi * 4 * x / 32), (32, 32))
    q, s = ch.structure_factor(field)
    assert q[np.argmax(s)] == pytest.approx(np.pi / 4)
    assert ch.mean_wavenumber(field[None])[0] == pytest.approx(np.pi / 4)


def test_one_step_grows_a_small_mode_by_the_schemes_factor():
    """A wave of amplitude 1e-4 at φ0 = 0.5, χ = 3 (f'' = 4 − 6 = −2), k = π/4, κ = 3, A = 10,
    Δt = 0.5, M = 1: k² = 0.6169, k⁴ = 0.3805; factor = (1 + 0.5·10·0.6169 + 0.5·0.6169·2) /
    (1 + 0.5·10·0.6169 + 0.5·3·0.3805) = 4.7014 / 4.6553 = 1.00991."""
    x = np.arange(32)
    phi = 0.5 + 1e-4 * np.broadcast_to(np.cos(2 * np.pi * 4 * x / 32), (32, 32))[None]
    after = ch.evolve(phi.copy(), np.array([3.0]), 1, dt=0.5, mobility=1.0, kappa=3.0, a=np.array([10.0]))
    k2 = (np.pi / 4) ** 2
    factor = (1 + 0.5 * 10 * k2 + 0.5 * k2 * 2) / (1 + 0.5 * 10 * k2 + 0.5 * 3 * k2**2)
    assert factor == pytest.approx(1.00991, abs=1e-5)
    assert (after - 0.5).max() / 1e-4 == pytest.approx(factor, rel=1e-6)


@pytest.fixture(scope="module")
def small_grid():
    params = ch.CHParams(phis=(0.3, 0.5), chis=(3.0,), size=48, t_first=15.0, t_end=600.0, n_snapshots=4)
    return params, *ch.simulate(params)


def test_mean_composition_is_conserved(small_grid):
    """Every snapshot keeps its run's φ0 as mean (the k = 0 mode is never touched)."""
    params, frames, table = small_grid
    assert np.abs(table["mean_phi"] - table["phi0"]).max() < 1e-10
    assert frames.reshape(len(frames), -1).mean(axis=1) == pytest.approx(table["phi0"].to_numpy(), abs=2e-3)


def test_domains_coarsen(small_grid):
    """The structure factor's peak and mean wavenumber move to lower q as time goes on, and the
    frames become two-phase (contrast grows from the 0.02 noise to most of [0, 1])."""
    params, frames, table = small_grid
    for run, rows in table.groupby("run"):
        assert np.all(np.diff(rows["q_mean"].to_numpy()[1:]) < 0), rows
        q, s = ch.structure_factor(frames[rows.index.to_numpy()])
        peaks = q[np.argmax(s, axis=-1)]
        assert peaks[-1] < peaks[1]
        assert np.ptp(frames[rows.index[-1]]) > 0.7
    assert list(table.columns[:5]) == ["run", "phi0", "chi", "t", "snapshot"]
    assert table["t"].iloc[:4].to_numpy() == pytest.approx(np.round(np.geomspace(15, 600, 4) / 0.5) * 0.5)


def test_bad_parameters_are_named():
    """A volume fraction outside (0, 1) is refused with its value."""
    with pytest.raises(ValueError, match=r"phis=\(0\.3, 1\.2\)"):
        ch.CHParams(phis=(0.3, 1.2)).validate()


def test_run_parameters():
    """The flow's parameters: the first snapshot as a fraction of t_end, a pixel budget, and
    build-map takes exactly one source (files or the simulator)."""
    from pydantic import ValidationError

    from flows.params import BuildMapParams, IngestParams, SimulateCHParams

    core = SimulateCHParams(phis=[0.5], chis=[3.0], t_end=1000.0, t_first_fraction=0.02).core()
    assert (core.phis, core.chis, core.t_first, core.t_end) == ((0.5,), (3.0,), 20.0, 1000.0)
    with pytest.raises(ValidationError, match="at most 500,000,000 pixels"):
        SimulateCHParams(phis=[0.1 * k for k in range(1, 10)], chis=[3.0] * 10, size=512, n_snapshots=300)
    with pytest.raises(ValidationError, match="one data source"):
        BuildMapParams(ingest=IngestParams(source="/data"), simulate=SimulateCHParams())
    assert BuildMapParams(simulate=SimulateCHParams()).ingest is None
