"""Cahn–Hilliard phase separation with a Flory–Huggins free energy: microstructure frames whose
structure is physics (DESIGN §1, denoising VAE; issue 14 point 5).

Model (dimensionless; lengths in grid spacings, time in units of dx² / (M kT)):

    ∂φ/∂t = M ∇² μ,    μ = f'(φ) − κ ∇²φ,
    f(φ) = φ ln φ + (1 − φ) ln(1 − φ) + χ φ (1 − φ)      (Flory–Huggins, chain lengths 1)

so f''(φ) = 1 / (φ (1 − φ)) − 2χ: a mixture at volume fraction φ is unstable (spinodal) when
χ > 1 / (2 φ (1 − φ)), i.e. χ > 2 at φ = 0.5 and χ > 2.38 at φ = 0.3. Inside the spinodal, a
composition wave of wavenumber k grows at rate −M k² (f''(φ) + κ k²), fastest at
k_max = sqrt(−f''(φ) / (2κ)); then domains coarsen (their size grows as t^(1/3), Lifshitz–Slyozov).

Solver: the semi-implicit Fourier-spectral scheme of Chen & Shen (1998) with the stabilising term
of Zhu, Chen, Shen & Tikare (1999): the stiff κ∇⁴ term and a linear A∇² term are implicit, the
rest of f' explicit, so in Fourier space

    φ̂ⁿ⁺¹ = (φ̂ⁿ (1 + Δt M A k²) − Δt M k² f'(φⁿ)^) / (1 + Δt M A k² + Δt M κ k⁴).

The k = 0 mode is untouched, so the mean composition is conserved to rounding; with A ≥ ~half
the largest |f''| met, steps of Δt ~ 1 are stable, where explicit Euler on the same grid needs
Δt ≲ 0.01 (bench/cahn_hilliard.py compares them). All runs of a grid are advanced together as
one (R, N, N) array: numpy's FFT is single-threaded, so this needs no thread settings.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

EPS = 1e-6  # φ is clipped to [EPS, 1 − EPS] inside the logarithms only (not in the state)


@dataclass
class CHParams:
    """One simulation grid: every (φ0, χ) pair is a run; snapshots at ``n_snapshots`` times."""

    phis: tuple[float, ...] = (0.3, 0.4, 0.5)  # initial volume fractions φ0 (mean composition)
    chis: tuple[float, ...] = (2.6, 2.9, 3.2)  # interactions χ, all inside the spinodal of every φ0 above
    size: int = 64  # grid side N, px (periodic)
    # gradient energy: spinodal wavelength 2π sqrt(2κ / −f'') ≈ 11 px at φ0 = 0.5, χ = 2.9; κ = 2 with
    # χ = 3.5 leaves interfaces ~1 px wide, and the spectral solution rings inside the domains
    kappa: float = 3.0
    mobility: float = 1.0  # M
    dt: float = 0.5  # time step; stable with the stabilisation below
    stabilisation: float | None = None  # A; None: half the largest |f''| on the run's φ range (see stabiliser)
    t_first: float = 15.0  # first snapshot, near the end of spinodal growth at the defaults
    t_end: float = 1500.0  # last snapshot; domains have coarsened several-fold by then
    n_snapshots: int = 20  # per run, geometrically spaced in t (coarsening is a power law)
    noise: float = 0.02  # amplitude of the initial uniform fluctuation around φ0
    seed: int = 0

    def validate(self) -> CHParams:
        """Raise ValueError naming the bad field, its value and what it must be."""
        if not self.phis or not all(0 < p < 1 for p in self.phis):
            raise ValueError(f"phis={self.phis!r} must be volume fractions strictly between 0 and 1")
        if not self.chis or not all(c >= 0 for c in self.chis):
            raise ValueError(f"chis={self.chis!r} must be interaction parameters >= 0")
        if not (isinstance(self.size, int) and 8 <= self.size <= 1024):
            raise ValueError(f"size={self.size!r} must be an integer between 8 and 1024")
        for name in ("kappa", "mobility", "dt", "t_first", "noise"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be more than 0")
        if not self.t_end >= self.t_first:
            raise ValueError(f"t_end={self.t_end!r} must be at least t_first={self.t_first!r}")
        if not (isinstance(self.n_snapshots, int) and self.n_snapshots >= 1):
            raise ValueError(f"n_snapshots={self.n_snapshots!r} must be a whole number >= 1")
        if self.stabilisation is not None and self.stabilisation < 0:
            raise ValueError(f"stabilisation={self.stabilisation!r} must be None or >= 0")
        return self

    @property
    def runs(self) -> list[tuple[float, float]]:
        """(φ0, χ) of every run, φ0 varying slowest."""
        return list(itertools.product(self.phis, self.chis))

    @property
    def times(self) -> np.ndarray:
        """Snapshot times, geometric from t_first to t_end."""
        return np.geomspace(self.t_first, self.t_end, self.n_snapshots)


def chemical_potential(phi: np.ndarray, chi: np.ndarray | float) -> np.ndarray:
    """Flory–Huggins f'(φ) = ln(φ / (1 − φ)) + χ (1 − 2φ), φ clipped away from 0 and 1."""
    p = np.clip(phi, EPS, 1 - EPS)
    return np.log(p / (1 - p)) + chi * (1 - 2 * p)


def curvature(phi: np.ndarray | float, chi: np.ndarray | float) -> np.ndarray:
    """f''(φ) = 1 / (φ (1 − φ)) − 2χ: negative inside the spinodal."""
    p = np.clip(phi, EPS, 1 - EPS)
    return 1 / (p * (1 - p)) - 2 * np.asarray(chi)


def stabiliser(chis: np.ndarray) -> np.ndarray:
    """Per-run A: half of max |f''| on [0.02, 0.98], beyond which a domain does not go for χ ≤ 3.5
    (equilibrium φ ≈ 0.04 and 0.96 there); A below this let stripes grow inside the domains at
    χ = 3.5, Δt = 0.5, and a larger A slows the dynamics (error O(A Δt))."""
    grid = np.linspace(0.02, 0.98, 97)
    return 0.5 * np.abs(curvature(grid[None, :], np.asarray(chis)[:, None])).max(axis=1)


def wavenumbers(n: int) -> np.ndarray:
    """|k|² on an n × n periodic grid of unit spacing, (n, n // 2 + 1) for rfft2."""
    ky = 2 * np.pi * np.fft.fftfreq(n)
    kx = 2 * np.pi * np.fft.rfftfreq(n)
    return ky[:, None] ** 2 + kx[None, :] ** 2


def step_factors(k2: np.ndarray, *, dt: float, mobility: float, kappa: float,
                 a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(numerator factor on φ̂, factor on f'^) of one semi-implicit step, per run: shapes (R, n, n//2+1)."""
    a = np.asarray(a, dtype=np.float64)[:, None, None]
    denominator = 1 + dt * mobility * a * k2 + dt * mobility * kappa * k2**2
    return (1 + dt * mobility * a * k2) / denominator, -dt * mobility * k2 / denominator


def initial_state(phis: np.ndarray, size: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """φ0 plus uniform noise of half-width ``noise``, its mean removed so each run's mean is φ0 exactly."""
    fluctuation = rng.uniform(-noise, noise, size=(len(phis), size, size))
    fluctuation -= fluctuation.mean(axis=(1, 2), keepdims=True)
    return np.asarray(phis, dtype=np.float64)[:, None, None] + fluctuation


def evolve(phi: np.ndarray, chis: np.ndarray, n_steps: int, *, dt: float, mobility: float, kappa: float,
           a: np.ndarray) -> np.ndarray:
    """Advance (R, N, N) states ``n_steps`` semi-implicit steps (one χ and A per run)."""
    k2 = wavenumbers(phi.shape[-1])
    keep, push = step_factors(k2, dt=dt, mobility=mobility, kappa=kappa, a=a)
    chis = np.asarray(chis, dtype=np.float64)[:, None, None]
    phi_hat = np.fft.rfft2(phi)
    for _ in range(n_steps):
        phi_hat = keep * phi_hat + push * np.fft.rfft2(chemical_potential(phi, chis))
        phi = np.fft.irfft2(phi_hat, s=phi.shape[-2:])
    return phi


def simulate(params: CHParams) -> tuple[np.ndarray, pd.DataFrame]:
    """All runs of the grid, snapshots over time.

    Returns
    -------
    frames : float32 (R · n_snapshots, N, N), φ clipped to [0, 1], run by run, in time order
    table : one row per frame: ``run`` (0 …), ``phi0``, ``chi``, ``t`` (dimensionless time: the
        snapshot time rounded to whole steps),
        ``snapshot`` (0 … n_snapshots − 1), ``mean_phi`` (conserved: equals phi0) and
        ``q_mean`` (first moment of the structure factor, rad/px: falls as domains coarsen)

    Example
    -------
    >>> frames, table = simulate(CHParams(phis=(0.5,), chis=(3.0,), n_snapshots=5))
    """
    params.validate()
    runs = np.array(params.runs)  # (R, 2): φ0, χ
    phis, chis = runs[:, 0], runs[:, 1]
    a = stabiliser(chis) if params.stabilisation is None else np.full(len(runs), params.stabilisation)
    phi = initial_state(phis, params.size, params.noise, np.random.default_rng(params.seed))
    n_runs, n_times = len(runs), params.n_snapshots
    frames = np.empty((n_runs, n_times, params.size, params.size), dtype=np.float32)  # (R, T, N, N)
    means, q_means, times = np.empty((n_runs, n_times)), np.empty((n_runs, n_times)), np.empty(n_times)
    now = 0
    for k, t in enumerate(params.times):
        target = int(round(t / params.dt))
        phi = evolve(phi, chis, target - now, dt=params.dt, mobility=params.mobility, kappa=params.kappa, a=a)
        now, times[k] = target, target * params.dt
        frames[:, k] = np.clip(phi, 0, 1)
        means[:, k], q_means[:, k] = phi.mean(axis=(1, 2)), mean_wavenumber(phi)  # of the unclipped state
    table = pd.DataFrame({
        "run": np.repeat(np.arange(n_runs), n_times),
        "phi0": np.repeat(phis, n_times),
        "chi": np.repeat(chis, n_times),
        "t": np.tile(times, n_runs),
        "snapshot": np.tile(np.arange(n_times), n_runs),
        "mean_phi": means.ravel(),
        "q_mean": q_means.ravel(),
    })
    frames = frames.reshape(-1, params.size, params.size)
    return frames, table


def structure_factor(phi: np.ndarray, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged S(q) = ⟨|FFT(φ − φ̄)|²⟩ / N² of (…, N, N) fields.

    Returns (q, S): bin centres in rad/px (bins of width 2π/N, the grid's own spacing, from 0
    to π) and S with shape (…, n_bins). A field cos(2π m x / N) puts its power in the bin at
    q = 2π m / N.
    """
    n = phi.shape[-1]
    n_bins = n_bins or n // 2
    fluct = phi - phi.mean(axis=(-2, -1), keepdims=True)
    power = np.abs(np.fft.fft2(fluct)) ** 2 / n**2
    q = np.sqrt(wavenumbers_full(n))  # (N, N), rad/px
    edges = (np.arange(n_bins + 1) + 0.5) * 2 * np.pi / n  # bin m holds |q| within half a step of 2πm/n
    which = np.digitize(q.ravel(), edges)  # 0: below the first edge (q < π/n, incl. q = 0)
    flat = power.reshape(*power.shape[:-2], -1)
    s = np.stack([flat[..., which == m + 1].mean(axis=-1) for m in range(n_bins)], axis=-1)
    centres = (np.arange(n_bins) + 1) * 2 * np.pi / n
    return centres, s


def wavenumbers_full(n: int) -> np.ndarray:
    """|k|² on the full n × n FFT grid (for fft2, not rfft2)."""
    k = 2 * np.pi * np.fft.fftfreq(n)
    return k[:, None] ** 2 + k[None, :] ** 2


def mean_wavenumber(phi: np.ndarray) -> np.ndarray:
    """First moment Σ q S(q) / Σ S(q) of each (N, N) field, rad/px: 2π / (domain period)."""
    q, s = structure_factor(phi)
    total = s.sum(axis=-1)
    return np.where(total > 0, (s * q).sum(axis=-1) / np.where(total > 0, total, 1), 0.0)


def describe(params: CHParams) -> dict:
    """Metadata for the stored dataset: the model, the solver and every parameter."""
    return {
        "model": "Cahn–Hilliard, Flory–Huggins f(φ) = φ ln φ + (1−φ) ln(1−φ) + χ φ(1−φ)",
        "solver": "semi-implicit Fourier spectral (Chen & Shen 1998), stabilised (Zhu et al. 1999)",
        "units": {"length": "grid spacing (px)", "t": "dx² / (M kT)"},
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(params).items()},
    }
