"""Two-time maps of the grain-boundary study's minimal model, and a measurement that degrades them.

The model (DESIGN §1, XPCS): a fraction ``1 - c`` of the scattering atoms sits in the grains and
diffuses (equilibrium), a fraction ``c`` sits on grain boundaries and follows the boundary height
``h(x, t)``, an overdamped interface relaxing out of its initial shape. The normalised
intermediate scattering function at wavevector ``q`` (along the boundary normal) is::

    f(t1, t2)   = (1 - c) f_bulk(t2 - t1) + c f_gb(t1, t2)
    f_bulk(τ)   = exp(-D q² |τ|)                                   (Fickian self-diffusion)
    f_gb(t1,t2) = < exp(i q (h(x, t2) - h(x, t1))) >_x             (average over the boundary)

and the Siegert relation gives the two-time map ``C(t1, t2) = 1 + β |f(t1, t2)|²``.

**The boundary** is a line of length ``L`` (:data:`BOUNDARY_NM`, sampled every nm) and depth
``d`` (:data:`DEPTH_NM`), energy ``E = (κ d / 2) ∫ (∂h/∂x)² dx``, overdamped with mobility ``M``
(:data:`MOBILITY`) and thermal noise::

    ∂h/∂t = M κ ∂²h/∂x² + η,    <η(x, t) η(x', t')> = 2 (M / d) k_B T δ(x - x') δ(t - t')

The noise strength is fixed by fluctuation–dissipation. On the periodic line the Fourier modes
``h = Σ_n a_n cos(k_n x) + b_n sin(k_n x)``, ``k_n = 2π n / L``, are independent
Ornstein–Uhlenbeck processes with rate ``γ_n = M κ k_n²`` and equipartition variance
``σ_n² = 2 k_B T / (κ d L k_n²)``; each step of ``Δt`` uses the exact transition
``a(t + Δt) = a(t) e^{-γ Δt} + σ √(1 - e^{-2γ Δt}) ξ`` (no Euler error at any step size). The
mean position (n = 0) has no restoring force and is left out: a rigid shift of a whole boundary
is migration, not a fluctuation. Out of equilibrium: at t = 0 the boundary carries the
roughness of equilibrium at :data:`T_FORMED` (formed hot, quenched to ``T``), and the excess
relaxes, long wavelengths last, so the map ages: its decorrelation slows with ``t1``.
``f_gb`` is the plain average over :data:`N_BOUNDARIES` independent boundaries of
:data:`BOUNDARY_NM` sites each (no Gaussian closure), computed as one product ``E Eᴴ / N`` with
``E = exp(i q h)`` of shape (T, N).

**Choice of scales.** The constants are not fitted to nanocrystalline Si: they put the study's
parameter ranges (:data:`PARAM_RANGES`) where a map of 64 frames of 1 s at q = 1 nm⁻¹ sees them.
- D: the bulk term's 1/e time in C, ``1 / (2 D q²)``, runs from the window (64 s, D = 1/128 nm²/s)
  down to 2 frames (D = 1/4 nm²/s); log-uniform between.
- κ: the longest boundary mode relaxes in ``1 / (M κ k_1²)`` = 64 s at κ = 0.02 J/m² and 2.6 s
  at κ = 0.5 J/m² (κ = 0 would have no restoring force and unbounded roughness);
- the boundary's equilibrium roughness ``<h²> = k_B T L / (12 κ d)`` gives
  ``q² <Δh²>/2`` (the exponent of f_gb at long lags) from ~0.05 (κ = 0.5, 300 K) to ~2
  (κ = 0.02, 500 K): the boundary term spans barely visible to fully decorrelating.

**The measurement** (:func:`experiment_like`) is the controlled domain shift that stands in for
an experiment: photons, a flat background, a detector mask and a finite count of independent
speckles (pixels) turn the clean map into what a two-time estimate over P pixels would give
(its noise model: :func:`standard_error`).

Example
-------
>>> C = simulate_two_time(GBParams(D=0.05, kappa=0.1, c=0.3, T=400.0), n_frames=16, rng=0)
>>> C.shape, bool(np.allclose(C, C.T)), round(float(C[0, 0]), 6)
((16, 16), True, 1.2)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from math import comb

import numpy as np

from core.limits import XPCS_FRAMES

K_B = 1.380649e-23  # J/K
PARAM_NAMES = ("D", "kappa", "c", "T")
UNITS = {"D": "nm²/s", "kappa": "J/m²", "c": "", "T": "K"}

# Defaults of a map: 64 frames of 1 s at q = 1 nm⁻¹ (0.1 Å⁻¹, within GISAXS reach), contrast 0.2.
N_FRAMES, Q_NM, DT_S, BETA = 64, 1.0, 1.0, 0.2

# The boundary (module docstring, "Choice of scales").
BOUNDARY_NM = 128  # length L of one boundary line, in 1 nm sites: a grain of nanocrystalline Si
DEPTH_NM = 2.0  # d: the depth along the beam over which a boundary segment moves as one
N_BOUNDARIES = 8  # independent boundaries averaged: the beam sees many grains
MOBILITY = 3.2e-16  # M, m⁴/(J·s): longest mode of a κ = 0.02 J/m² boundary relaxes in 64 s
T_FORMED = 1400.0  # K: the initial roughness is equilibrium's at this temperature (quenched)

PARAM_RANGES: dict[str, tuple[float, float]] = {
    "D": (1 / (2 * Q_NM**2 * N_FRAMES * DT_S), 1 / (2 * Q_NM**2 * 2 * DT_S)),  # nm²/s, log-uniform
    "kappa": (0.02, 0.5),  # J/m²
    "c": (0.0, 0.5),  # share of boundary atoms
    "T": (300.0, 500.0),  # K
}
LOG_UNIFORM = ("D",)


@dataclass(frozen=True)
class GBParams:
    """One point of the model's parameter space.

    D : bulk diffusivity, nm²/s.  kappa : boundary stiffness, J/m².  c : fraction of the
    scattering atoms on boundaries, 0–1.  T : temperature, K.
    """

    D: float
    kappa: float
    c: float
    T: float

    def __post_init__(self) -> None:
        for name, value in zip(PARAM_NAMES, astuple(self)):
            if not np.isfinite(value):
                raise ValueError(f"{name}={value!r} must be a finite number")
        if self.D < 0 or self.kappa <= 0 or self.T <= 0 or not 0 <= self.c <= 1:
            raise ValueError(f"{self} out of the model's domain: D >= 0 nm²/s, kappa > 0 J/m², "
                             "0 <= c <= 1, T > 0 K")


def to_array(params: Sequence[GBParams]) -> np.ndarray:
    """(N, 4) float64 array, columns :data:`PARAM_NAMES`."""
    return np.array([astuple(p) for p in params], dtype=np.float64).reshape(-1, len(PARAM_NAMES))


def from_array(values: np.ndarray) -> list[GBParams]:
    """The inverse of :func:`to_array`."""
    return [GBParams(*map(float, row)) for row in np.asarray(values, dtype=np.float64).reshape(-1, 4)]


def draw_params(n: int, rng: np.random.Generator | int | None = None,
                ranges: Mapping[str, tuple[float, float]] = PARAM_RANGES) -> list[GBParams]:
    """``n`` independent draws over ``ranges`` (uniform, log-uniform for D)."""
    rng = np.random.default_rng(rng)
    columns = []
    for name in PARAM_NAMES:
        lo, hi = ranges[name]
        if name in LOG_UNIFORM:
            columns.append(np.exp(rng.uniform(np.log(lo), np.log(hi), n)))
        else:
            columns.append(rng.uniform(lo, hi, n))
    return from_array(np.stack(columns, axis=1))


def param_grid(n_per_axis: int | Mapping[str, int] = 3,
               ranges: Mapping[str, tuple[float, float]] = PARAM_RANGES) -> list[GBParams]:
    """Every combination of ``n`` evenly spaced values per parameter (log-spaced for D), ends
    included; a parameter given 1 value sits at the middle of its range."""
    counts = n_per_axis if isinstance(n_per_axis, Mapping) else dict.fromkeys(PARAM_NAMES, n_per_axis)
    axes = []
    for name in PARAM_NAMES:
        lo, hi = ranges[name]
        k = int(counts.get(name, 1))
        if k < 1:
            raise ValueError(f"{name}: {k} values per axis; give at least 1")
        log = name in LOG_UNIFORM
        a, b = (np.log(lo), np.log(hi)) if log else (lo, hi)
        values = np.linspace(a, b, k) if k > 1 else np.array([(a + b) / 2])
        axes.append(np.exp(values) if log else values)
    return [GBParams(*map(float, combo)) for combo in itertools.product(*axes)]


# -- the simulator -----------------------------------------------------------------------------
def _wavenumbers() -> np.ndarray:
    """k_n = 2π n / L, n = 1 … L/2, in nm⁻¹."""
    return 2 * np.pi * np.arange(1, BOUNDARY_NM // 2 + 1) / BOUNDARY_NM


def mode_variance(kappa: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Equipartition variance σ_n² of each cosine (and sine) amplitude, nm², shape (..., L/2)."""
    k = _wavenumbers()
    kappa_j_per_nm2 = np.asarray(kappa, dtype=np.float64)[..., None] * 1e-18
    return 2 * K_B * np.asarray(T, dtype=np.float64)[..., None] / (kappa_j_per_nm2 * DEPTH_NM * BOUNDARY_NM * k**2)


def mode_rates(kappa: np.ndarray) -> np.ndarray:
    """Relaxation rate γ_n = M κ k_n² of each mode, 1/s, shape (..., L/2)."""
    k_per_m = _wavenumbers() * 1e9
    return MOBILITY * np.asarray(kappa, dtype=np.float64)[..., None] * k_per_m**2


def boundary_heights(params: Sequence[GBParams], *, n_frames: int = N_FRAMES, dt: float = DT_S,
                     rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Boundary heights h(x, t) in nm, float32, shape (B, n_frames, N_BOUNDARIES, BOUNDARY_NM).

    One generator per parameter set, so a map does not depend on which batch it was made in.
    """
    values = to_array(params)
    kappa, T = values[:, 1], values[:, 3]
    rates = mode_rates(kappa)[:, None, None, :]  # (B, 1, 1, n): broadcast over boundaries, (cos, sin)
    var = mode_variance(kappa, T)[:, None, None, :]
    var0 = mode_variance(kappa, np.full_like(T, T_FORMED))[:, None, None, :]
    n_modes = rates.shape[-1]
    # All normals at once, per map: (B, T, G, 2, n): the initial state, then one per step.
    xi = np.stack([rng.standard_normal((n_frames, N_BOUNDARIES, 2, n_modes), dtype=np.float32) for rng in rngs])
    decay = np.exp(-rates * dt).astype(np.float32)
    kick = np.sqrt(var * -np.expm1(-2 * rates * dt)).astype(np.float32)
    amp = xi  # overwritten in place, step by step
    amp[:, 0] *= np.sqrt(var0).astype(np.float32)
    for t in range(1, n_frames):  # exact OU transition, vectorised over maps, boundaries, modes
        amp[:, t] = amp[:, t - 1] * decay + kick * amp[:, t]
    phase = np.outer(_wavenumbers(), np.arange(BOUNDARY_NM))  # (n, L)
    basis = np.concatenate([np.cos(phase), np.sin(phase)]).astype(np.float32)  # (2n, L)
    b = len(params)
    return amp.reshape(b, n_frames, N_BOUNDARIES, 2 * n_modes) @ basis  # (B, T, G, L)


def map_generators(seed: np.random.Generator | int | None, n: int) -> list[np.random.Generator]:
    """One generator per map, spawned from ``seed``: what :func:`simulate_maps` uses, so a run
    written in chunks can pass each chunk its slice and get the maps of one call."""
    return list(np.random.default_rng(seed).spawn(n))


def simulate_maps(params: Sequence[GBParams], *, n_frames: int = N_FRAMES, q: float = Q_NM,
                  dt: float = DT_S, beta: float = BETA,
                  rng: np.random.Generator | int | None | Sequence[np.random.Generator] = None,
                  batch_size: int = 8) -> np.ndarray:
    """Two-time maps C (N, n_frames, n_frames), float64, of each parameter set (module docstring).

    Parameters
    ----------
    params : sequence of :class:`GBParams`
    n_frames : frames per map (:data:`core.limits.XPCS_FRAMES`); dt : frame interval, s; q : wavevector, nm⁻¹;
    beta : speckle contrast (Siegert), in (0, 1].
    rng : a seed or generator (map i uses the i-th of :func:`map_generators`, so the same seed
        gives the same maps whatever the batch size), or one generator per map.
    batch_size : maps computed together; on a CPU batching gains little over one map per call
        (bench/xpcs.py), 8 keeps the working set in cache.
    """
    lo, hi = XPCS_FRAMES
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or not lo <= n_frames <= hi:
        raise ValueError(f"n_frames={n_frames!r} must be an integer between {lo} and {hi}")
    for name, value in (("q", q), ("dt", dt)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value!r} must be a positive number")
    if not 0 < beta <= 1:
        raise ValueError(f"beta={beta!r} (speckle contrast) must be in (0, 1]")
    params = list(params)
    rngs = list(rng) if isinstance(rng, Sequence) else map_generators(rng, len(params))
    if len(rngs) != len(params):
        raise ValueError(f"{len(rngs)} generators for {len(params)} maps; give one per map, or a seed")
    lag = np.abs(np.subtract.outer(np.arange(n_frames), np.arange(n_frames))) * dt  # (T, T), s
    out = np.empty((len(params), n_frames, n_frames))
    for start in range(0, len(params), batch_size):
        chunk = params[start:start + batch_size]
        values = to_array(chunk)
        D, c = values[:, 0, None, None], values[:, 2, None, None]
        f_bulk = np.exp(-D * q**2 * lag)  # (B, T, T)
        h = boundary_heights(chunk, n_frames=n_frames, dt=dt, rngs=rngs[start:start + batch_size])
        b, t, g, length = h.shape
        phase = np.float32(q) * h.reshape(b, t, g * length)  # (B, T, N)
        cos, sin = np.cos(phase), np.sin(phase)  # E = cos + i sin; f_gb = E Eᴴ / N in real products
        re = (cos @ cos.transpose(0, 2, 1) + sin @ sin.transpose(0, 2, 1)) / (g * length)  # (B, T, T)
        im = sin @ cos.transpose(0, 2, 1) / (g * length)
        im = im - im.transpose(0, 2, 1)
        C = 1 + beta * (((1 - c) * f_bulk + c * re) ** 2 + (c * im) ** 2)  # 1 + β |f|²
        out[start:start + len(chunk)] = (C + C.transpose(0, 2, 1)) / 2
    return out


def simulate_two_time(params: GBParams, *, n_frames: int = N_FRAMES, q: float = Q_NM, dt: float = DT_S,
                      beta: float = BETA, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """The two-time map C (n_frames, n_frames) of one parameter set (see :func:`simulate_maps`)."""
    return simulate_maps([params], n_frames=n_frames, q=q, dt=dt, beta=beta, rng=rng)[0]


# -- the measurement -----------------------------------------------------------------------------
def _count_moments(photons: float, background: float, beta: float) -> np.ndarray:
    """E[n^r], r = 0..4, of a pixel's count n ~ Poisson(k s + b), s ~ Gamma with mean 1 and
    variance β (a speckle of contrast β), k = photons, b = background (Mandel's formula)."""
    s = [np.prod([1 + i * beta for i in range(r)]) for r in range(5)]  # E[s^r] of the gamma law
    lam = [sum(comb(r, j) * photons**j * s[j] * background ** (r - j) for j in range(r + 1)) for r in range(5)]
    stirling = {0: [1], 1: [0, 1], 2: [0, 1, 1], 3: [0, 1, 3, 1], 4: [0, 1, 7, 6, 1]}  # S(r, j)
    return np.array([sum(c * lam[j] for j, c in enumerate(stirling[r])) for r in range(5)])


def standard_error(photons_per_pixel: float, n_pixels: float, beta: float,
                   background: float = 0.0) -> tuple[float, float]:
    """(off-diagonal, diagonal) standard error of a two-time map estimated from ``n_pixels``
    independent speckles at ``photons_per_pixel`` mean counts per frame, contrast ``beta`` and a
    flat ``background`` (counts per pixel per frame).

    Delta method on ``C = <n1 n2>_P / (<n1>_P <n2>_P)`` with Poisson–gamma counts, for two frames
    whose speckles are uncorrelated (lags where f has decayed): the off-diagonal error is
    ``(β_eff + 1/m) / √P`` with ``m = k + b`` and ``β_eff = β k²/m²`` (the normalisation by the
    frame means cancels the rest); it is the low-count result ``1 / (k √P)`` of Lumma et al.,
    Rev. Sci. Instrum. 71, 3274 (2000). Near the diagonal, where frames still correlate, the true
    error is somewhat larger. The diagonal ``<n²>/<n>²`` has its own error from the moments up to 4.
    """
    if photons_per_pixel <= 0 or n_pixels < 1 or background < 0 or not 0 <= beta <= 1:
        raise ValueError(f"photons_per_pixel={photons_per_pixel!r} must be > 0, n_pixels={n_pixels!r} >= 1, "
                         f"background={background!r} >= 0 and beta={beta!r} in [0, 1]")
    m = photons_per_pixel + background
    x = _count_moments(photons_per_pixel, background, beta) / m ** np.arange(5)  # moments of n/m
    off = (x[2] - 1) / np.sqrt(n_pixels)
    var_sq, cov = x[4] - x[2] ** 2, x[3] - x[2]  # Var(X²), Cov(X², X)
    diag = np.sqrt(max(var_sq - 4 * x[2] * cov + 4 * x[2] ** 2 * (x[2] - 1), 0.0) / n_pixels)
    return float(off), float(diag)


def experiment_like(C: np.ndarray, *, photons_per_pixel: float, n_pixels: int, background: float = 0.0,
                    rng: np.random.Generator | int | None = None, mask_fraction: float = 0.0) -> np.ndarray:
    """A clean simulated map as a measurement would give it: the controlled domain shift.

    The map's contrast β is read from its diagonal (``C(t, t) = 1 + β``, as the simulator makes
    it). Then: a flat background lowers the contrast to ``β k²/(k + b)²``; the diagonal gains the
    shot-noise term ``1/(k + b)`` a real map has; a detector mask removes ``mask_fraction`` of
    the ``n_pixels`` (independent speckles); every element gets Gaussian noise of the standard
    error of :func:`standard_error` for the pixels left, the map kept symmetric. Noise is drawn
    independently per element: where frames are uncorrelated, the errors of two elements
    sharing a frame cancel to first order (``C_ij − 1 ≈ <(n_i/m − 1)(n_j/m − 1)>_P``; measured on
    speckle frames: correlation −0.08); near the diagonal a real map's errors correlate more.

    Returns
    -------
    (T, T) float64 map.
    """
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1] or C.shape[0] < 2:
        raise ValueError(f"C of shape {C.shape} must be a square two-time map")
    if not 0 <= mask_fraction < 1:
        raise ValueError(f"mask_fraction={mask_fraction!r} must be in [0, 1)")
    beta = float(np.mean(np.diag(C)) - 1)
    if not 0 < beta <= 1:
        raise ValueError(f"the map's diagonal gives contrast {beta:.3g}; pass a clean simulated map "
                         "(diagonal 1 + β with 0 < β <= 1)")
    pixels = n_pixels * (1 - mask_fraction)
    if pixels < 1:
        raise ValueError(f"the mask leaves {pixels:.3g} of {n_pixels} pixels; keep at least 1")
    off, diag = standard_error(photons_per_pixel, pixels, beta, background)
    m = photons_per_pixel + background
    expected = 1 + (C - 1) * (photons_per_pixel / m) ** 2
    expected[np.diag_indices_from(expected)] += 1 / m
    rng = np.random.default_rng(rng)
    noise = np.triu(rng.standard_normal(C.shape), 1) * off
    noise = noise + noise.T
    noise[np.diag_indices_from(noise)] = rng.standard_normal(len(C)) * diag
    return expected + noise

