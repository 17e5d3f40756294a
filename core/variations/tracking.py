"""Measured motion of real particles, tracked with trackpy (Allan et al., soft-matter/trackpy):
the independent measurement that sampled material variations are checked against (DESIGN §1,
"Measured side by side").

Steps: :func:`locate` finds particles in each frame (``trackpy.batch``: band-pass, local maxima
of the given ``diameter``, centroid refinement, features under ``minmass`` dropped); :func:`link`
joins them into tracks (``trackpy.link``: nearest-neighbour within ``search_range`` px, a
particle may vanish for ``memory`` frames), drops tracks shorter than ``min_length`` frames and,
when asked, subtracts the ensemble drift (``trackpy.compute_drift``/``subtract_drift``);
:func:`diffusion` fits the mean squared displacement; :func:`track_traces` describes each
track over windows of W frames the way a sampled trace is described.

**Polarity.** trackpy looks for bright features. Bright-field colloids (both shared series) are
dark discs on a bright background, so frames are inverted first (``invert=True``: max − frame,
done here rather than with trackpy's own deprecated ``invert`` flag). ``invert=None`` decides from
the pixel histogram: a frame whose low tail (median − 0.1st percentile) is longer than its high
tail (99.9th percentile − median) is dark-on-bright.

**Diffusion coefficient** (2-D Brownian motion: MSD(τ) = 4 D τ). Each track's MSD
(``trackpy.imsd``) over lags 1 … ``n_lags`` frames is fitted by least squares with
MSD = 4 D τ + c; the intercept c absorbs static localisation error (4σ², plus motion blur),
which otherwise biases D from short lags. D is the mean of the per-track D and its standard
error the standard deviation of the per-track D over √(number of tracks): tracks are
independent, while the MSD points of one fit are not (an ordinary least-squares error on the
ensemble MSD understates it). The ensemble MSD (``trackpy.emsd``) is returned beside it.
Units are µm²/s (or the dataset's length unit²/s) when the scale is known, px²/frame otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data.results.datasets import PhysicalScale

BOLTZMANN = 1.380649e-23  # J/K (exact, SI 2019)


@dataclass(frozen=True)
class TrackingParams:
    """trackpy's parameters, in pixels and frames (its own units)."""

    diameter: int = 11  # odd, px: a little larger than a particle's image (trackpy's rule)
    minmass: float | None = None  # integrated brightness below which a feature is noise
    invert: bool | None = None  # dark particles on a bright background; None: from the histogram
    search_range: float = 5.0  # px a particle may move between frames (≈ 4σ of its step)
    memory: int = 3  # frames a particle may vanish and keep its identity
    min_length: int = 10  # shorter tracks are dropped (too few lags to fit)
    subtract_drift: bool = False  # remove the ensemble's mean motion (a flowing cell)
    # trackpy's refinement: 'numba' compiles on first use (~15-30 s, then ~4x faster per frame);
    # 'python' starts at once, the better choice for a few small frames; same results
    engine: str = "auto"

    def validate(self) -> TrackingParams:
        if not (isinstance(self.diameter, int) and self.diameter >= 3 and self.diameter % 2 == 1):
            raise ValueError(f"diameter={self.diameter!r} must be an odd whole number of pixels, at least 3")
        if not self.search_range > 0:
            raise ValueError(f"search_range={self.search_range!r} must be more than 0 px")
        if self.engine not in ("auto", "python", "numba"):
            raise ValueError(f"engine={self.engine!r} must be 'auto', 'python' or 'numba'")
        if self.memory < 0 or self.min_length < 2:
            raise ValueError(f"memory={self.memory!r} must be >= 0 and min_length={self.min_length!r} >= 2")
        return self


def dark_on_bright(frames: np.ndarray) -> bool:
    """Whether particles look darker than the background: the low tail of the pixel values is
    longer than the high tail (see the module docstring)."""
    lo, med, hi = np.percentile(np.asarray(frames)[: min(len(frames), 10)], [0.1, 50, 99.9])
    return bool(med - lo > hi - med)


def locate(frames: np.ndarray, params: TrackingParams) -> pd.DataFrame:
    """Features per frame (``trackpy.batch``): columns y, x (px), mass, size, ecc, frame."""
    import trackpy

    params.validate()
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3:
        raise ValueError(f"frames of shape {frames.shape} must be a (T, H, W) series")
    invert = dark_on_bright(frames) if params.invert is None else params.invert
    if invert:
        frames = frames.max() - frames
    trackpy.quiet()
    return trackpy.batch(frames, params.diameter, minmass=params.minmass, engine=params.engine, processes=1)


def link(features: pd.DataFrame, params: TrackingParams) -> pd.DataFrame:
    """Tracks (``trackpy.link``): the features with a ``particle`` column, stubs dropped and the
    drift subtracted when asked."""
    import trackpy

    trackpy.quiet()
    tracks = trackpy.link(features, params.search_range, memory=params.memory)
    tracks = trackpy.filter_stubs(tracks, params.min_length).reset_index(drop=True)
    if params.subtract_drift and len(tracks):
        tracks = trackpy.subtract_drift(tracks, trackpy.compute_drift(tracks)).reset_index(drop=True)
    return tracks


def track(frames: np.ndarray, params: TrackingParams) -> pd.DataFrame:
    """:func:`locate` then :func:`link`."""
    return link(locate(frames, params), params)


@dataclass(frozen=True)
class Diffusion:
    """A diffusion coefficient with its standard error, and what it was fitted on."""

    D: float
    se: float
    unit: str  # 'µm²/s', or 'px²/frame' when the scale is unknown
    n_tracks: int
    n_lags: int
    per_track: pd.Series  # D of each track (index: particle)
    emsd: pd.Series  # ensemble MSD (length unit²) by lag time (s or frames)

    def __str__(self) -> str:
        return f"D = {self.D:.3g} ± {self.se:.2g} {self.unit} ({self.n_tracks} tracks, lags 1–{self.n_lags})"


def diffusion(tracks: pd.DataFrame, scale: PhysicalScale = PhysicalScale(), *, n_lags: int = 10) -> Diffusion:
    """D from MSD = 4 D τ + c fitted per track over lags 1 … ``n_lags`` (module docstring).

    Tracks need at least ``n_lags + 1`` frames to count; at least two tracks are needed for an
    error. Raises ValueError when fewer qualify.
    """
    import trackpy

    if n_lags < 2:
        raise ValueError(f"n_lags={n_lags!r} must be at least 2: a line needs two points")
    mpp, fps = scale.length_per_px, 1.0 / scale.time_per_frame
    imsd = trackpy.imsd(tracks, mpp, fps, max_lagtime=n_lags)  # (lags, particles)
    imsd = imsd.loc[:, imsd.notna().sum() >= n_lags]  # tracks with every lag
    if imsd.shape[1] < 2:
        raise ValueError(f"{imsd.shape[1]} track(s) span {n_lags + 1} frames: too few for D and its error; "
                         "lower n_lags or min_length, or widen search_range")
    lag = imsd.index.to_numpy(dtype=float)
    slope = np.polyfit(lag, imsd.to_numpy(), 1)[0]  # one fit per column
    per_track = pd.Series(slope / 4.0, index=imsd.columns, name="D")
    unit = f"{scale.length_unit}²/{'s' if scale.time_unit == 's' else 'frame'}"
    emsd = trackpy.emsd(tracks, mpp, fps, max_lagtime=n_lags)
    return Diffusion(float(per_track.mean()), float(per_track.std(ddof=1) / math.sqrt(len(per_track))),
                     unit, len(per_track), n_lags, per_track, emsd)


def rasterise_track(positions: np.ndarray, radius: float) -> np.ndarray:
    """The region swept by a disc of ``radius`` px centred on each of ``positions`` (W, 2) as
    (y, x) px: a bool mask on the pixel grid (pixel centres at whole coordinates, as trackpy's),
    cropped to the region with a one-pixel margin."""
    positions = np.asarray(positions, dtype=float)
    lo = np.floor(positions.min(axis=0) - radius) - 1
    hi = np.ceil(positions.max(axis=0) + radius) + 1
    yy, xx = np.mgrid[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1]
    mask = np.zeros(yy.shape, bool)
    for y, x in positions:
        mask |= (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
    return mask


def track_traces(tracks: pd.DataFrame, window: int, *, radius: float, zoom: float = 1.0,
                 scale: PhysicalScale = PhysicalScale()) -> pd.DataFrame:
    """Each track described over consecutive, non-overlapping windows of ``window`` frames, as a
    sampled per-particle trace is: one row per (particle, window) with the columns of
    ``traces.describe_traces`` plus ``start`` (first frame) and ``path`` (the sum of the steps).

    A track's trace over a window is the region swept by the particle's disc along its W
    positions (:func:`rasterise_track`): the particle's own area plus what its motion added, the
    same thing a trace region in a pixel-mean image is (the foreground of W averaged frames or
    samples holds the particle wherever it was). Positions (tracked in source px) are multiplied
    by ``zoom`` (stored side / source side) so the disc is drawn on the stored images' grid, and
    ``radius`` is in those stored px; ``scale`` is the stored images' scale (areas in its unit²,
    px² when unknown). Windows with a frame missing (a gap kept by ``memory``) are skipped.
    """
    from core.variations.traces import describe_traces

    if not (isinstance(window, (int, np.integer)) and window >= 2):
        raise ValueError(f"window={window!r} must be a whole number of frames, at least 2")
    rows = []
    for particle, track in tracks.sort_values("frame").groupby("particle"):
        frames = track["frame"].to_numpy()
        yx = track[["y", "x"]].to_numpy(dtype=float) * zoom
        for start in range(0, len(track) - window + 1, window):
            if frames[start + window - 1] - frames[start] != window - 1:
                continue
            positions = yx[start : start + window]
            mask = rasterise_track(positions, radius)
            row = describe_traces(mask.astype(np.int32), pixel_size=_pixel(scale), unit=scale.length_unit)
            rows.append(row.assign(particle=particle, start=int(frames[start]),
                                   path=float(np.linalg.norm(np.diff(positions, axis=0), axis=1).sum()
                                              * scale.length_per_px)))
    if not rows:
        raise ValueError(f"no track spans {window} consecutive frames: lower the window or min_length")
    return pd.concat(rows, ignore_index=True).drop(columns=["centroid_y", "centroid_x"])


def _pixel(scale: PhysicalScale) -> float | None:
    return scale.pixel_size if scale.length_unit != "px" else None


def stokes_einstein(radius_m: float, *, temperature_k: float = 295.0, viscosity_pa_s: float = 0.95e-3) -> float:
    """D = kT / (6 π η a) of a sphere of radius ``a`` in m²/s (Einstein 1905, Stokes drag)."""
    return BOLTZMANN * temperature_k / (6 * math.pi * viscosity_pa_s * radius_m)
