"""Choose γ by matching generated variations to how real frames change from one to the next.

For each γ of a sweep, perturb a sample of references (no filters) and measure every metric
of ``core.variations.descriptors.METRICS`` between G(z_i) and G(z_i + ε). The same metrics between
consecutive real frames give a band (10–90 % quantiles) of "plausible short-range change" and
its upper bound (the largest change seen between two consecutive frames). Three readings of γ:

- the method's rule (Dao et al. 2025, :func:`upper_bound_gamma`): the smallest γ whose *mean*
  generated entropy difference reaches the *upper bound* (maximum) of the entropy difference
  between consecutive real frames (0.26 bits in their NP series), i.e. a step of about one
  frame interval; this is the suggestion whenever the sweep reaches the bound;
- the median-in-band rule (:func:`suggest_gamma`): the γ whose metric medians fall inside the
  most bands, ties broken by how close the medians are to the bands' medians in units of band
  width; it picks a smaller γ than the paper's and is the suggestion when no γ reaches the bound;
- the latent check (:func:`adjacent_latent_distance`, :func:`latent_gamma`): the mean distance
  between encodings of adjacent real frames, per dimension, against the expected ‖ε‖ of each γ.

The sweep uses the same seed for every γ, so the perturbations of one γ are those of another
scaled (common random numbers): the curves against γ are smooth and differences between γ
are not sampling noise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from core.variations.descriptors import FOREGROUND_K, METRICS, foreground
from core.models.generator import image_shape_of
from core.variations.sampling import (
    FilterParams, VariationParams, expected_distance_per_dim, sample_variations,
)

log = logging.getLogger(__name__)

DEFAULT_GAMMAS = tuple(np.arange(0.25, 2.01, 0.25).round(2).tolist())  # 0.25 … 2.0
STAT_COLUMNS = ["mean", "median", "q10", "q90", "max"]
BOUND_METRIC = "entropy_diff"  # the metric of the method's upper-bound rule


@dataclass
class Calibration:
    """Result of :func:`calibrate_gamma`; every table is long format, ready for plotting.

    sweep : gamma, metric, mean, median, q10, q90 (10 % and 90 % quantiles), max of the samples
    distance : gamma, distance_per_dim (mean ‖ε‖₂ / d), expected_distance_per_dim (γ/sqrt(3d))
    bands : metric, mean, median, q10, q90, max, n_pairs over consecutive real frames (empty
        without real images); ``max`` is the upper bound of the method's rule
    scores : gamma, outside (metrics whose median is outside its band), distance (summed
        |median − band median| / band width); empty without real images
    suggested_gamma : the chosen γ (the method's rule when the sweep reaches the bound, else
        the median-in-band γ), or None without real images
    status : "completed" or "stopped" (then only the finished γ are in the tables)
    band_gamma : the median-in-band γ (:func:`suggest_gamma`)
    bound_gamma : the method's γ (:func:`upper_bound_gamma`), None when no γ reaches the bound
    entropy_bound : the upper bound, the largest |ΔH| between consecutive real frames (bits)
    adjacent_distance_per_dim : mean ‖z_{t+1} − z_t‖₂ / d of adjacent real frames' encodings
        (None without an encoder), comparable with ``distance.distance_per_dim``
    latent_gamma : the γ whose expected ‖ε‖₂ / d equals that distance (:func:`latent_gamma`)
    reason : one sentence: which γ is suggested and why, with the other readings
    """

    sweep: pd.DataFrame
    distance: pd.DataFrame
    bands: pd.DataFrame
    scores: pd.DataFrame
    suggested_gamma: float | None
    status: str
    band_gamma: float | None = None
    bound_gamma: float | None = None
    entropy_bound: float | None = None
    adjacent_distance_per_dim: float | None = None
    latent_gamma: float | None = None
    reason: str = ""


def _stats(table: pd.DataFrame) -> pd.DataFrame:
    """One row per metric: mean, median, 10 % and 90 % quantiles over the rows of ``table``."""
    rows = []
    for name in METRICS:
        v = table[name].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        lo, med, hi = np.quantile(v, [0.1, 0.5, 0.9]) if len(v) else [math.nan] * 3
        rows.append({"metric": name, "mean": float(v.mean()) if len(v) else math.nan,
                     "median": float(med), "q10": float(lo), "q90": float(hi),
                     "max": float(v.max()) if len(v) else math.nan})
    return pd.DataFrame(rows)


def real_bands(images: np.ndarray, *, k: float = FOREGROUND_K) -> pd.DataFrame:
    """Each metric between consecutive frames t, t+1 of ``images`` (T, [C,] H, W), summarised.

    Frames must be in acquisition order. Returns metric, mean, median, q10, q90, max, n_pairs.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]  # (T, 1, H, W)
    if x.ndim != 4 or len(x) < 2:
        raise ValueError(
            f"real images of shape {np.shape(images)} must be (T, [C,] H, W) with T >= 2 "
            "consecutive frames"
        )
    fg = foreground(x, k=k)  # (T, H, W)
    pairs = pd.DataFrame({
        name: np.concatenate([fn(x[t], fg[t], x[t + 1 : t + 2], fg[t + 1 : t + 2])
                              for t in range(len(x) - 1)])
        for name, fn in METRICS.items()
    })
    return _stats(pairs).assign(n_pairs=len(pairs))


def suggest_gamma(sweep: pd.DataFrame, bands: pd.DataFrame) -> tuple[float | None, pd.DataFrame]:
    """The γ whose metric medians best fall inside the real bands, and every γ's score.

    Score of γ: ``outside`` = how many metrics have their median outside [q10, q90] of the
    real band; ``distance`` = Σ over metrics of |median − band median| / band width (width
    floored at 1e-9). The suggestion minimises ``outside``, then ``distance``. Metrics without
    a finite band are ignored; None when no band is usable.
    """
    usable = bands[np.isfinite(bands[["median", "q10", "q90"]].to_numpy(float)).all(axis=1)]
    if usable.empty or sweep.empty:
        return None, pd.DataFrame(columns=["gamma", "outside", "distance"])
    merged = sweep.merge(usable, on="metric", suffixes=("", "_real"))
    width = np.maximum(merged["q90_real"] - merged["q10_real"], 1e-9)
    merged["outside"] = ~merged["median"].between(merged["q10_real"], merged["q90_real"])
    merged["distance"] = (merged["median"] - merged["median_real"]).abs() / width
    scores = (merged.groupby("gamma", as_index=False)[["outside", "distance"]].sum()
              .astype({"outside": int}))
    best = scores.sort_values(["outside", "distance", "gamma"], kind="stable").iloc[0]
    return float(best["gamma"]), scores


def upper_bound_gamma(sweep: pd.DataFrame, bands: pd.DataFrame,
                      metric: str = BOUND_METRIC) -> tuple[float | None, float | None]:
    """The method's rule (Dao et al. 2025): the smallest swept γ whose mean generated ``metric``
    reaches the upper bound of the same metric between consecutive real frames.

    The upper bound is the band's ``max`` (the largest change seen between two consecutive
    frames, 0.26 bits of entropy difference in the paper's NP series); the generated statistic
    is the mean over every sample of every reference at that γ. Returns (γ, bound): γ is None
    when no swept γ reaches the bound (or there is no bound), the bound None without one.
    """
    real = bands[bands["metric"] == metric] if "max" in bands.columns else bands.iloc[:0]
    bound = float(real["max"].iloc[0]) if len(real) and np.isfinite(real["max"].iloc[0]) else None
    if bound is None or sweep.empty:
        return None, bound
    generated = sweep[sweep["metric"] == metric].sort_values("gamma")
    reached = generated[generated["mean"] >= bound]
    return (float(reached["gamma"].iloc[0]) if len(reached) else None), bound


def adjacent_latent_distance(latents: np.ndarray) -> float:
    """Mean ‖z_{t+1} − z_t‖₂ / d over adjacent rows of (T, d) encodings of consecutive frames.

    The same per-dimension distance as the sweep's ``distance_per_dim`` (mean ‖ε‖₂ / d, the
    paper's "≈ 0.1 per dimension" at γ = 1, d = 32), so the two compare directly; as a root mean
    square per component it is √d times this, to compare with γ/√3 for U[−γ, γ].
    """
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"latents of shape {z.shape} must be (T, d) with T >= 2 consecutive frames")
    return float(np.linalg.norm(np.diff(z, axis=0), axis=1).mean() / z.shape[1])


def latent_gamma(distance_per_dim: float, d: int) -> float:
    """The γ whose expected ‖ε‖₂ / d is ``distance_per_dim``: E‖ε‖²/d² = γ²/(3d), so γ = √(3d) · it
    (each component's RMS is γ/√3)."""
    return math.sqrt(3 * d) * distance_per_dim


def explain_choice(band_gamma: float | None, bound_gamma: float | None, bound: float | None,
                   sweep: pd.DataFrame, adjacent: float | None = None,
                   from_latents: float | None = None) -> tuple[float | None, str]:
    """(suggested γ, one sentence saying which rule chose it and why, with the other readings).

    The method's upper-bound rule wins when the sweep reaches the bound; else the median-in-band γ.
    """
    if band_gamma is None:
        return None, "No real frames were compared, so no γ is suggested."
    generated = sweep[sweep["metric"] == BOUND_METRIC].set_index("gamma")["mean"]
    if bound_gamma is not None:
        suggested = bound_gamma
        text = (f"γ = {bound_gamma:g} by the method's rule: the smallest γ whose mean generated |ΔH| "
                f"({generated[bound_gamma]:.3g} bits) reaches the upper bound between consecutive real "
                f"frames ({bound:.3g} bits, their largest)")
        if band_gamma is not None:
            text += f"; the median-in-band rule gives γ = {band_gamma:g}"
    else:
        suggested = band_gamma
        reach = (f"no γ up to {generated.index.max():g} reaches the upper bound between consecutive real frames "
                 f"({bound:.3g} bits; the largest mean generated |ΔH| is {generated.max():.3g} bits), so sweep "
                 "larger γ for the method's rule" if bound is not None and len(generated)
                 else "there is no entropy bound to apply the method's rule")
        text = f"γ = {band_gamma:g} by the median-in-band rule: {reach}"
    if adjacent is not None and from_latents is not None:
        text += (f"; encodings of adjacent real frames lie {adjacent:.3g} apart per dimension (‖Δz‖/d), "
                 f"the expected ‖ε‖/d of γ ≈ {from_latents:.2g}")
    return suggested, text + "."


def calibrate_gamma(
    model: nn.Module,
    references: np.ndarray,
    gammas: Sequence[float] = DEFAULT_GAMMAS,
    n_per_reference: int = 32,
    seed: int = 0,
    real_images: np.ndarray | None = None,
    *,
    real_latents: np.ndarray | None = None,
    batch_size: int | None = None,
    foreground_k: float = FOREGROUND_K,
    device: torch.device | str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Calibration:
    """Sweep γ and compare the generated changes with real frame-to-frame changes.

    Parameters
    ----------
    model : VAE or GAN
    references : (M, d) latents to perturb (a few dozen are enough)
    gammas : the γ values to try, each > 0
    n_per_reference : samples per reference and γ
    real_images : (T, [C,] H, W) consecutive real frames at the decoder's output size, in
        [0, 1]; without them there are no bands and no suggestion
    real_latents : (T, d) encodings of consecutive real frames (a VAE's posterior means), for
        the adjacent-frame latent distance; None leaves that check out
    on_progress : ``on_progress(done, total)`` in samples over the whole sweep
    should_stop : polled between batches; the result then holds the finished γ only

    Example
    -------
    >>> cal = calibrate_gamma(gan, prior_latents(20, 64), real_images=frames[:200])
    >>> cal.suggested_gamma, cal.distance
    """
    gammas = [float(g) for g in gammas]
    if not gammas or not all(math.isfinite(g) and g > 0 for g in gammas):
        raise ValueError(f"gammas={gammas!r} must be a non-empty list of numbers > 0")
    if len(references) < 1:
        raise ValueError("references is empty: pass at least one latent (M, d) to perturb")
    bands = pd.DataFrame(columns=["metric", *STAT_COLUMNS, "n_pairs"])
    if real_images is not None:
        shape = image_shape_of(model)
        real = np.asarray(real_images, dtype=np.float32)
        if real.ndim == 3:
            real = real[:, None]  # (T, 1, H, W)
        if real.shape[1:] != shape:
            raise ValueError(
                f"real images of shape {np.shape(real_images)} must be at the decoder's output "
                f"size (T, {', '.join(map(str, shape))}): preprocess them like the training images"
            )
        bands = real_bands(real, k=foreground_k)

    total = len(gammas) * len(references) * n_per_reference
    sweeps, distances, status = [], [], "completed"
    for gi, gamma in enumerate(gammas):
        sink = _TableSink()
        offset = gi * len(references) * n_per_reference
        params = VariationParams(
            gamma=gamma, n_per_reference=n_per_reference, seed=seed, batch_size=batch_size,
            filters=FilterParams(None, None, None, None), descriptors=(),
            foreground_k=foreground_k,
        )
        summary = sample_variations(
            model, references, params, sink, device=device, should_stop=should_stop,
            on_progress=None if on_progress is None else (
                lambda done, _: on_progress(offset + done, total)),
        )
        if summary["status"] == "stopped":
            status = "stopped"
            break
        sweeps.append(_stats(pd.concat(sink.tables)).assign(gamma=gamma))
        distances.append({"gamma": gamma, "distance_per_dim": summary["distance_per_dim"],
                          "expected_distance_per_dim": expected_distance_per_dim(
                              gamma, summary["latent_dim"])})
    columns = ["gamma", "metric", *STAT_COLUMNS]
    sweep = (pd.concat(sweeps, ignore_index=True)[columns] if sweeps
             else pd.DataFrame(columns=columns))
    band_gamma, scores = suggest_gamma(sweep, bands)
    bound_gamma, bound = upper_bound_gamma(sweep, bands)
    adjacent = from_latents = None
    if real_latents is not None:
        adjacent = adjacent_latent_distance(real_latents)
        from_latents = latent_gamma(adjacent, np.shape(real_latents)[1])
    suggested, reason = explain_choice(band_gamma, bound_gamma, bound, sweep, adjacent, from_latents)
    log.info("γ calibration over %s: %s", gammas, reason)
    return Calibration(
        sweep=sweep,
        distance=pd.DataFrame(distances, columns=["gamma", "distance_per_dim",
                                                  "expected_distance_per_dim"]),
        bands=bands, scores=scores, suggested_gamma=suggested, status=status,
        band_gamma=band_gamma, bound_gamma=bound_gamma, entropy_bound=bound,
        adjacent_distance_per_dim=adjacent, latent_gamma=from_latents, reason=reason,
    )


class _TableSink:
    """Keeps only the per-sample tables: a sweep needs metrics, not images."""

    def __init__(self) -> None:
        self.tables: list[pd.DataFrame] = []

    def reference(self, i: int, z_ref: np.ndarray, image: np.ndarray) -> None:
        pass

    def samples(self, i: int, eps: np.ndarray, kept: np.ndarray, table: pd.DataFrame,
                kept_images: np.ndarray) -> None:
        self.tables.append(table)

    def descriptors(self, i: int, values: dict[str, float], trace: np.ndarray) -> None:
        pass
