"""The noise floor of the non-equilibrium measure, and whether a map rises above it.

:func:`~core.xpcs.two_time.non_equilibrium` counts every deviation from the diagonal means,
speckle noise included, so a noisy map of a sample in equilibrium scores high too. This module
answers "what would an equilibrium map with this map's pixel count, contrast and decay score?"
with a **surrogate** (parametric bootstrap; not pixel resampling, which needs the frames):

1. Fit the diagonal means B(τ) (the measured g2) with a stretched exponential
   ``B(τ) = b + β exp(-2 (τ/τc)^γ)`` (KWW form of g2 via the Siegert relation; lags ≥ 1, each
   lag weighted by its number of entries).
2. Draw equilibrium speckle series with that decay: per pixel a complex Gaussian field whose
   autocorrelation is g1(τ) = exp(-(τ/τc)^γ) (circulant embedding, Dietrich & Newsam 1997), so
   |field|² is exponential speckle; the intensity ``√β |field|² + 1 - √β`` has contrast β
   (speckle on a flat incoherent part; its lag products have the same variance as gamma
   speckle of contrast β beyond the decay), optionally as Poisson counts of a given mean.
3. Correlate each series exactly as the measured map was (``C = <I I>/(<I><I>)`` over pixels),
   add ``b - 1``, and take its measure; the **floor** is the 95th percentile over the
   surrogates, and the map is *significantly non-equilibrium* when its measure exceeds it.

Pixel count. Noise in C falls as 1/√P (P independent pixels, i.e. speckles). Surrogates are
drawn with at most :data:`SIMULATED_PIXELS` pixels and their deviation from the model map is
scaled by √(P_sim/P) (the central limit for a mean over pixels), so a ring of 10⁵ pixels costs
no more than one of 256. When P is not given (a map without its frames) it is *inferred from the
noise of C*: the median absolute step along the diagonals, |C(t1+1, t2+1) - C(t1, t2)|, which
a smooth ageing drift barely changes, is matched to the surrogate's; P_eff is then the number
of independent pixels an equilibrium map with this much noise would have (shot noise included).
A known P (and mean counts) is better: drift cannot hide in it. Known limit: noise that is white
in time (shot noise) is matched by the step statistic but not told apart from speckle noise
unless the diagonal shows 1/k̄; a map whose diagonal was normalised away then gets P_eff < 1
and a conservative (high) floor, and its verdict says so (:attr:`NoiseFloor.caveat`).

Example
-------
>>> rng = np.random.default_rng(1)
>>> lag = np.abs(np.subtract.outer(np.arange(60), np.arange(60)))
>>> C = 1 + 0.2 * np.exp(-lag / 5.0) + rng.normal(0, 0.01, (60, 60))
>>> result = noise_floor((C + C.T) / 2, n_surrogates=20, seed=0)
>>> result.significant
False
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.fft import next_fast_len
from scipy.optimize import OptimizeWarning, curve_fit

from core.xpcs.two_time import _check_map, non_equilibrium

SIMULATED_PIXELS = 256  # pixels per surrogate; more is scaled (see the module docstring)
_CHUNK = 8  # surrogates drawn together (bounds memory: 8 x 256 x 2T complex numbers)


@dataclass(frozen=True)
class NoiseFloor:
    """A map's non-equilibrium measure beside what equilibrium noise alone would score."""

    measure: float  # non_equilibrium of the map, in [0, 1]
    floor: float  # the `quantile` of the surrogates' measures
    p_value: float  # share of surrogates scoring at least `measure` ((k + 1) / (n + 1))
    significant: bool  # measure > floor
    n_pixels: float  # independent pixels (speckles) the surrogates stand for
    pixels_from: str  # "given" or "inferred from the map's noise"
    mean_counts: float | None  # photons per pixel per frame of the surrogates (None: no shot noise)
    counts_from: str  # "given" or "from the diagonal"
    baseline: float  # b: g2 at long lags
    contrast: float  # β: speckle contrast (g2 at lag 0+ minus b)
    decay_frames: float  # τc of g1, in frames
    stretch: float  # γ of the stretched exponential
    n_surrogates: int
    quantile: float

    @property
    def verdict(self) -> str:
        """One line a scientist can read."""
        relation = "above" if self.significant else "within"
        meaning = ("significantly non-equilibrium" if self.significant
                   else "not distinguishable from equilibrium")
        counts = ("no shot noise" if self.mean_counts is None else
                  f"{self.mean_counts:.3g} photons/pixel/frame {self.counts_from}")
        return (f"non-equilibrium {self.measure:.3f} is {relation} its noise floor {self.floor:.3f} "
                f"({100 * self.quantile:.0f}th percentile of {self.n_surrogates} equilibrium "
                f"surrogates: {self.n_pixels:.3g} pixels {self.pixels_from}, {counts}, contrast "
                f"{self.contrast:.3g}, decay {self.decay_frames:.3g} frames; p = {self.p_value:.3f})"
                f": {meaning}{self.caveat}")

    @property
    def caveat(self) -> str:
        """Why the floor may be loose, or ""."""
        if self.pixels_from == "given" or self.n_pixels >= 1:
            return ""
        return ("; the map is noisier than one speckle pixel at this contrast (white noise, "
                "likely photon-starved, that its diagonal does not show): this floor is "
                "conservative, give n_pixels and mean_counts for a tighter one")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def noise_floor(
    C: Any,
    *,
    n_pixels: float | None = None,
    mean_counts: float | None = None,
    min_lag: int = 1,
    n_surrogates: int = 100,
    quantile: float = 0.95,
    seed: int | None = 0,
) -> NoiseFloor:
    """The measure of a two-time map, its equilibrium noise floor and the verdict.

    Parameters
    ----------
    C : array-like (T, T)
        A two-time map (NaN entries are ignored, in the surrogates too).
    n_pixels : float, optional
        Independent pixels averaged into C (a ring's unmasked pixels, or fewer when a speckle
        covers several pixels); None infers it from the map's noise (module docstring).
    mean_counts : float, optional
        Mean photons per pixel per frame, for the surrogates' Poisson noise; None reads it from
        the main diagonal (:func:`shot_noise_counts`).
    min_lag : int, default 1
        As in :func:`~core.xpcs.two_time.non_equilibrium`.
    n_surrogates : int, default 100
    quantile : float, default 0.95
    seed : int or None, default 0
        Surrogates are random; a seed makes the floor reproducible.

    Returns
    -------
    NoiseFloor
    """
    C = _check_map(C)
    t = C.shape[0]
    if not 10 <= n_surrogates <= 10_000:
        raise ValueError(f"n_surrogates={n_surrogates!r} must be between 10 and 10000")
    if not 0.5 <= quantile < 1:
        raise ValueError(f"quantile={quantile!r} must be in [0.5, 1)")
    if n_pixels is not None and not n_pixels >= 1:
        raise ValueError(f"n_pixels={n_pixels!r} must be at least 1 (or None to infer it)")
    if mean_counts is not None and not mean_counts > 0:
        raise ValueError(f"mean_counts={mean_counts!r} must be > 0 photons per pixel per frame "
                         "(or None to infer it from the map's diagonal)")
    if t < 4:
        raise ValueError(f"a map of {t} frames is too short for a noise floor; use at least 4")
    measure = non_equilibrium(C, min_lag=min_lag)
    baseline, contrast, decay, stretch = fit_decay(C, min_lag=min_lag)
    g1 = np.exp(-(np.arange(t) / decay) ** stretch)  # (T,)
    lag = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
    model = baseline + contrast * g1[lag] ** 2  # (T, T) the expected equilibrium map
    counts_from = "given"
    if mean_counts is None:
        mean_counts, counts_from = shot_noise_counts(C, baseline + contrast), "from the diagonal"
    measured_step = _step_noise(C, min_lag)
    if n_pixels is None and not measured_step > 0:
        # No noise at all (a model map, not a measurement): infinitely many pixels, every
        # surrogate is the model itself and scores 0, so any deviation is significant.
        scores, n_pixels, pixels_from = np.zeros(n_surrogates), np.inf, "inferred from the map's noise"
    else:
        rng = np.random.default_rng(seed)
        simulated = int(min(n_pixels or SIMULATED_PIXELS, SIMULATED_PIXELS))
        maps = _surrogate_maps(t, decay, stretch, contrast, baseline, simulated, mean_counts,
                               n_surrogates, rng)
        np.fill_diagonal(model, maps.mean(axis=0).diagonal())  # lag 0 holds the shot noise too
        if n_pixels is None:
            simulated_step = _step_noise(maps, min_lag)
            if not simulated_step > 0:
                raise ValueError("the map shows neither speckle contrast nor shot noise to draw "
                                 "equilibrium surrogates from; give mean_counts (photons per "
                                 "pixel per frame)")
            n_pixels = simulated * (simulated_step / measured_step) ** 2
            pixels_from = "inferred from the map's noise"
        else:
            pixels_from = "given"
        maps = model + (maps - model) * np.sqrt(simulated / n_pixels)  # (n, T, T) at n_pixels
        maps[:, ~np.isfinite(C)] = np.nan
        scores = np.array([non_equilibrium(S, min_lag=min_lag) for S in maps])
    floor = float(np.quantile(scores, quantile))
    return NoiseFloor(
        measure=measure, floor=floor,
        p_value=float((1 + np.sum(scores >= measure)) / (1 + n_surrogates)),
        significant=bool(measure > floor), n_pixels=float(n_pixels), pixels_from=pixels_from,
        mean_counts=None if mean_counts is None else float(mean_counts), counts_from=counts_from,
        baseline=baseline, contrast=contrast, decay_frames=decay, stretch=stretch,
        n_surrogates=int(n_surrogates), quantile=float(quantile),
    )


def fit_decay(C: Any, *, min_lag: int = 1) -> tuple[float, float, float, float]:
    """``(b, β, τc, γ)`` of ``B(τ) = b + β exp(-2 (τ/τc)^γ)`` fitted to the diagonal means.

    τc is in frames. Lags from ``max(min_lag, 1)`` (lag 0 holds the shot noise), each weighted
    by its number of entries. A map that does not decay within its frames gets τc of several
    scan lengths; one that never correlates gets β = 0.
    """
    C = _check_map(C)
    t = C.shape[0]
    taus = np.arange(max(min_lag, 1), t)
    means = np.array([np.nanmean(np.concatenate([np.diagonal(C, k), np.diagonal(C, -k)]))
                      for k in taus])
    ok = np.isfinite(means)
    taus, means, weights = taus[ok], means[ok], 1 / np.sqrt(t - taus[ok])
    if taus.size < 3:
        raise ValueError("fewer than 3 lags have finite values; the map cannot be fitted")
    tail = means[-max(1, len(means) // 3):]
    b0 = float(np.median(tail))
    beta0 = float(max(means[0] - b0, 1e-4))
    below = np.flatnonzero(means - b0 < beta0 * np.exp(-2))
    tau0 = float(taus[below[0]]) if below.size else float(t)

    def g2(tau, b, beta, tau_c, gamma):
        return b + beta * np.exp(-2 * (tau / tau_c) ** gamma)

    start = (b0, beta0, max(tau0, 0.5), 1.0)
    bounds = ([0.0, 0.0, 0.1, 0.2], [10.0, 10.0, 100.0 * t, 2.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(g2, taus, means, p0=start, sigma=weights, bounds=bounds,
                                  maxfev=5000)
    except (RuntimeError, ValueError):
        params = start  # the rough estimates: a floor from a rough decay beats none
    b, beta, tau_c, gamma = (float(p) for p in params)
    return b, beta, tau_c, gamma


def shot_noise_counts(C: Any, g2_at_zero: float) -> float | None:
    """Mean photons per pixel per frame from the map's main diagonal, or None.

    With Poisson counts k of mean k̄ over speckle, <k²>/<k>² = g2(0+) + 1/k̄: the diagonal sits
    above the decay's extrapolation to lag 0 by 1/k̄ (the shot-noise term of speckle
    visibility). None when the diagonal is missing, constant (overwritten by its authors) or
    not above the decay (no shot noise to see).
    """
    diagonal = np.diagonal(_check_map(C))
    diagonal = diagonal[np.isfinite(diagonal)]
    if diagonal.size < 2 or np.all(diagonal == diagonal[0]):  # missing, or overwritten
        return None
    excess = float(diagonal.mean()) - g2_at_zero
    return 1 / excess if excess > 0 else None


def _surrogate_maps(t: int, decay: float, stretch: float, contrast: float, baseline: float,
                    n_pixels: int, mean_counts: float | None, n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(n, T, T) maps of equilibrium speckle series, g1(τ) = exp(-(τ/decay)^stretch) (module doc)."""
    half = next_fast_len(t - 1)  # an embedding of 2 * half >= 2T - 2 lags, fast to transform
    lags = np.arange(half + 1)
    g1_long = np.exp(-(lags / decay) ** stretch)  # (half + 1,)
    circulant = np.concatenate([g1_long, g1_long[-2:0:-1]])  # (2 half,) first row
    spectrum = np.sqrt(np.clip(np.fft.fft(circulant).real, 0, None))  # clip: rounding < 0
    beta = min(contrast, 1.0)  # speckle cannot exceed contrast 1; the rest is scaled below
    maps = np.empty((n, t, t))
    for start in range(0, n, _CHUNK):
        k = min(_CHUNK, n - start)
        white = rng.standard_normal((k, n_pixels, 2 * len(circulant)), np.float32)
        white = white.view(np.complex64)  # (k, P, 2 half), E|w|^2 = 2; single precision: speed
        field = np.fft.ifft(spectrum.astype(np.float32) * white, axis=-1)[..., :t]  # (k, P, T)
        field = field.transpose(0, 2, 1) * np.float32(np.sqrt(len(circulant) / 2))  # E|.|^2 = 1
        intensity = np.sqrt(beta) * (field.real ** 2 + field.imag ** 2).astype(np.float64) \
            + 1 - np.sqrt(beta)
        if mean_counts is not None:
            intensity = rng.poisson(mean_counts * intensity).astype(np.float64)
        mean = intensity.mean(axis=2)  # (k, T)
        if not (mean > 0).all():
            raise ValueError(f"mean_counts={mean_counts!r} photons leaves surrogate frames empty; "
                             "give the ring's real mean counts (or none)")
        product = intensity @ intensity.transpose(0, 2, 1) / n_pixels  # (k, T, T)
        maps[start:start + k] = product / (mean[:, :, None] * mean[:, None, :])
    if contrast > beta:
        maps = 1 + (maps - 1) * (contrast / beta)
    return maps + (baseline - 1)


def _step_noise(C: np.ndarray, min_lag: int) -> float:
    """Median |C(t1+1, t2+1) - C(t1, t2)| over t2 - t1 >= min_lag, averaged over a stack."""
    stack = C.reshape(-1, *C.shape[-2:])
    steps = stack[:, 1:, 1:] - stack[:, :-1, :-1]  # (n, T-1, T-1)
    upper = np.triu(np.ones(steps.shape[1:], bool), k=max(min_lag, 1))
    return float(np.mean([np.nanmedian(np.abs(s[upper])) for s in steps[:_CHUNK]]))  # a few suffice
