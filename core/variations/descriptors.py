"""Image metrics and per-variation descriptors for sparse particle images.

**Foreground.** Otsu fails on sparse particle frames (DESIGN §1: the histogram is almost all
background, so it splits the noise). Here a pixel is foreground when it lies more than
``k`` robust standard deviations (default 4) from a smooth background, in either direction:
bright-field colloids have a bright core inside a dark ring, so both signs are particle.
The background is a Gaussian blur (σ = image side / 16, wider than a particle) computed twice:
the second time with the first pass's foreground masked out (normalised convolution), so a
bright particle does not raise the background around itself and leave a halo. The noise σ is
1.4826 · MAD of the residual (robust to the few particle pixels), floored at one 8-bit grey
level so a noise-free synthetic image does not turn every rounding error into a particle.
On the real bright-field frames (500×500) this marks 0.8 % of the pixels: the five particles.

**Metrics** compare each sample with its reference (``METRICS``, one value per sample):
``entropy_diff`` — |H(x) − H(ref)| in bits, H the Shannon entropy of the 256-bin histogram of
the [0, 1] pixel values (0 … 8 bits, not normalised): consecutive real colloid frames
(64 px, min-max normalised) differ by 0.10 bits on average and 0.30 at most, so the default
filter 0.2 keeps what real motion does; ``area_diff`` — |foreground fraction difference|;
``iou`` — intersection over union of the foregrounds (1 when both are empty);
``intensity_dev`` — |Σx − Σref| / Σref.

**Descriptors** summarise a whole :class:`Variation` (``DESCRIPTORS``, name -> function
returning a dict of floats): what still means something for a reference as a whole — the kept
fraction, the metric means, and the channel-IQR variance of compositional data. A new one is
one function and one line in the registry. The particles' own descriptors (diffusion area,
anisotropy, tortuosity) are per trace, in ``core.variations.traces``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

FOREGROUND_K = 4.0  # robust σ from the background; 4σ leaves ~1e-4 of Gaussian noise pixels
BACKGROUND_FRACTION = 1 / 16  # background blur σ as a fraction of the image side
MIN_SIGMA = 1 / 255  # noise floor: one 8-bit grey level
MAD_TO_SIGMA = 1.4826  # σ of a normal distribution per unit of median absolute deviation


# -- foreground --------------------------------------------------------------------------------
def _gray_stack(images: np.ndarray) -> tuple[np.ndarray, bool]:
    """(H, W) | (B, H, W) | (B, C, H, W) -> float32 (B, H, W), channels averaged."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        return x[None], True
    if x.ndim == 4:
        return x.mean(axis=1), False
    if x.ndim == 3:
        return x, False
    raise ValueError(f"images of shape {x.shape} must be (H, W), (B, H, W) or (B, C, H, W)")


def _deviant(residual: np.ndarray, k: float, min_sigma: float) -> np.ndarray:
    """Pixels more than k robust σ from each image's median residual: (B, H, W) bool."""
    flat = residual.reshape(len(residual), -1)
    med = np.median(flat, axis=1)[:, None]
    sigma = np.maximum(MAD_TO_SIGMA * np.median(np.abs(flat - med), axis=1), min_sigma)
    return (np.abs(flat - med) > k * sigma[:, None]).reshape(residual.shape)


def foreground(
    images: np.ndarray,
    *,
    k: float = FOREGROUND_K,
    background_sigma: float | None = None,
    min_sigma: float = MIN_SIGMA,
) -> np.ndarray:
    """Particle pixels of each image: more than ``k`` robust σ from a smooth background.

    Parameters
    ----------
    images : (H, W), (B, H, W) single-channel frames, or (B, C, H, W) (channels averaged)
    k : threshold in robust standard deviations
    background_sigma : Gaussian σ of the background in pixels; None = image side / 16
    min_sigma : floor on the noise σ, in image units

    Returns
    -------
    bool array (H, W) or (B, H, W)
    """
    if not (isinstance(k, (int, float)) and k > 0):
        raise ValueError(f"k={k!r} must be > 0")
    x, single = _gray_stack(images)
    s = background_sigma if background_sigma is not None else max(x.shape[1:]) * BACKGROUND_FRACTION
    blur = (0, s, s)  # never across the batch axis
    fg = _deviant(x - ndi.gaussian_filter(x, blur), k, min_sigma)
    # Second pass: the background from non-particle pixels only (normalised convolution).
    w = (~fg).astype(np.float32)
    num, den = ndi.gaussian_filter(x * w, blur), ndi.gaussian_filter(w, blur)
    fallback = np.median(x.reshape(len(x), -1), axis=1)[:, None, None]  # particles cover it all
    bg = np.where(den > 1e-3, num / np.maximum(den, 1e-3), fallback)
    fg = _deviant(x - bg, k, min_sigma)
    return fg[0] if single else fg


# -- metrics between a reference and its samples -----------------------------------------------
def shannon_entropy(images: np.ndarray) -> np.ndarray:
    """Entropy in bits of the 256-bin histogram of [0, 1] values, per image: (B, ...) -> (B,).

    All channels are pooled; values outside [0, 1] fall in the end bins. A two-level image
    with equal halves has 1 bit; a constant one 0.
    """
    x = np.asarray(images, dtype=np.float32)
    b = len(x)
    q = np.clip((x.reshape(b, -1) * 256).astype(np.int64), 0, 255)  # bin of each pixel
    counts = np.bincount((q + 256 * np.arange(b)[:, None]).ravel(), minlength=256 * b)
    p = counts.reshape(b, 256) / q.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)


MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(reference (C, H, W), its foreground (H, W), samples (B, C, H, W), theirs (B, H, W)) -> (B,)"""


def entropy_diff(
    ref: np.ndarray, ref_fg: np.ndarray, x: np.ndarray, fg: np.ndarray
) -> np.ndarray:
    """|H(x) − H(ref)| in bits."""
    return np.abs(shannon_entropy(x) - shannon_entropy(ref[None])[0])


def area_diff(
    ref: np.ndarray, ref_fg: np.ndarray, x: np.ndarray, fg: np.ndarray
) -> np.ndarray:
    """|foreground fraction of x − that of ref|, as a fraction of the image."""
    return np.abs(fg.mean(axis=(1, 2)) - ref_fg.mean())


def iou(
    ref: np.ndarray, ref_fg: np.ndarray, x: np.ndarray, fg: np.ndarray
) -> np.ndarray:
    """Intersection over union of the foregrounds; 1 when both are empty."""
    inter = (fg & ref_fg).sum(axis=(1, 2))
    union = (fg | ref_fg).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def intensity_dev(
    ref: np.ndarray, ref_fg: np.ndarray, x: np.ndarray, fg: np.ndarray
) -> np.ndarray:
    """|Σx − Σref| / Σref (0 when both are black, inf when only the reference is)."""
    total, ref_total = x.sum(axis=(1, 2, 3), dtype=np.float64), float(ref.sum(dtype=np.float64))
    if ref_total == 0:
        return np.where(total == 0, 0.0, np.inf)
    return np.abs(total - ref_total) / ref_total


METRICS: dict[str, MetricFn] = {
    "entropy_diff": entropy_diff,
    "area_diff": area_diff,
    "iou": iou,
    "intensity_dev": intensity_dev,
}


# The unit of each metric, as axis titles and tables state it (the docstrings above say why).
METRIC_UNITS: dict[str, str] = {
    "entropy_diff": "bits",
    "area_diff": "fraction of image",
    "iou": "overlap 0–1",
    "intensity_dev": "fraction of Σref",
}


def compare(
    reference: np.ndarray,
    samples: np.ndarray,
    *,
    k: float = FOREGROUND_K,
    reference_fg: np.ndarray | None = None,
    samples_fg: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every metric of ``samples`` (B, C, H, W) against ``reference`` (C, H, W): one row each.

    Pass the foregrounds when they are already computed, to save the work.
    """
    ref = np.asarray(reference, dtype=np.float32)
    x = np.asarray(samples, dtype=np.float32)
    if ref.ndim != 3 or x.ndim != 4 or x.shape[1:] != ref.shape:
        raise ValueError(
            f"reference {ref.shape} must be (C, H, W) and samples {x.shape} (B, C, H, W) "
            "with the same C, H, W"
        )
    ref_fg = foreground(ref[None], k=k)[0] if reference_fg is None else reference_fg
    fg = foreground(x, k=k) if samples_fg is None else samples_fg
    return pd.DataFrame({name: fn(ref, ref_fg, x, fg) for name, fn in METRICS.items()})


# -- per-sample features the descriptors need (a few numbers each, so memory stays bounded) ----
def sample_features(images: np.ndarray) -> pd.DataFrame:
    """Per channel i of each image (B, C, H, W), one row each: ``mean_c<i>``, the mean
    intensity, and ``iqr_c<i>``, the interquartile range of its pixel (voxel) intensities."""
    x = np.asarray(images, dtype=np.float32)
    flat = x.reshape(*x.shape[:2], -1)  # (B, C, pixels)
    q25, q75 = np.percentile(flat, [25, 75], axis=2)  # (B, C) each
    cols = {f"mean_c{i}": flat[:, i].mean(axis=1) for i in range(x.shape[1])}
    cols.update({f"iqr_c{i}": q75[:, i] - q25[:, i] for i in range(x.shape[1])})
    return pd.DataFrame(cols)


# -- shape measures, pure functions of arrays --------------------------------------------------
def principal_axis_ratio(mask: np.ndarray) -> float:
    """Ratio of the principal axes of a binary region, from its second moments (>= 1).

    The axes of the equivalent ellipse scale with the square roots of the covariance
    eigenvalues of the pixel coordinates, so an ellipse with semi-axes a >= b gives a / b.
    NaN for fewer than 2 pixels, inf for pixels on one line.
    """
    rc = np.argwhere(np.asarray(mask, dtype=bool)).astype(np.float64)  # (n, 2)
    if len(rc) < 2:
        return math.nan
    lo, hi = np.linalg.eigvalsh(np.cov(rc, rowvar=False))
    return math.inf if lo <= 1e-12 * max(hi, 1e-300) else math.sqrt(hi / lo)


# -- variations and their descriptors ----------------------------------------------------------
@dataclass
class Variation:
    """One material variation: a reference G(z_i) and the samples kept around it.

    ``kept`` has one row per kept sample, ordered by transformation magnitude ‖ε‖, with the
    columns ``magnitude``, the :data:`METRICS` and :func:`sample_features`; ``reference_row``
    holds the reference's own features. ``trace`` is the pixel mean of the reference and the
    kept samples: its particles' diffusion traces are described one by one in
    ``core.variations.traces``.
    """

    reference: np.ndarray  # (C, H, W)
    trace: np.ndarray  # (C, H, W)
    kept: pd.DataFrame
    reference_row: dict[str, float]
    n_drawn: int

    @property
    def members(self) -> pd.DataFrame:
        """The reference (magnitude 0) followed by the kept samples."""
        ref = pd.DataFrame([{**self.reference_row, "magnitude": 0.0}])
        return pd.concat([ref, self.kept], ignore_index=True) if len(self.kept) else ref


Descriptor = Callable[[Variation], dict[str, float]]


def metric_means(v: Variation) -> dict[str, float]:
    """Mean of each metric over the kept samples (NaN when none was kept)."""
    return {f"{m}_mean": float(v.kept[m].mean()) if len(v.kept) else math.nan for m in METRICS}


def kept_fraction(v: Variation) -> dict[str, float]:
    """Share of the drawn samples that passed the filters: how constrained the state is."""
    return {"kept_fraction": len(v.kept) / v.n_drawn if v.n_drawn else math.nan}


def channel_iqr(v: Variation) -> dict[str, float]:
    """Per channel c: the variance, over the members (reference and kept samples), of each
    member's interquartile range of channel c's voxel intensities (DESIGN §1, the paper's
    descriptor of compositional variations: how much the spread of a composition changes).
    Population variance (ddof 0): one member gives 0."""
    m = v.members
    return {f"channel_iqr_var_{col[len('iqr_c'):]}": float(np.var(m[col].to_numpy()))
            for col in m.columns if col.startswith("iqr_c")}


DESCRIPTORS: dict[str, Descriptor] = {
    "metric_means": metric_means,
    "kept_fraction": kept_fraction,
    "channel_iqr": channel_iqr,
}


# The unit of every column the descriptors write; ``channel_iqr_var_<c>`` is one per channel.
DESCRIPTOR_UNITS: dict[str, str] = {
    **{f"{m}_mean": unit for m, unit in METRIC_UNITS.items()},
    "kept_fraction": "fraction of drawn",
    "channel_iqr_var_": "(normalised intensity)²",
}


def descriptor_unit(column: str) -> str | None:
    """The unit of a descriptor column (:data:`DESCRIPTOR_UNITS`), None for an unknown column."""
    if column in DESCRIPTOR_UNITS:
        return DESCRIPTOR_UNITS[column]
    prefix = next((p for p in DESCRIPTOR_UNITS if p.endswith("_") and column.startswith(p)), None)
    return DESCRIPTOR_UNITS[prefix] if prefix else None


def describe(v: Variation, names: list[str] | tuple[str, ...]) -> dict[str, float]:
    """All the named descriptors of one variation, merged into one flat dict."""
    unknown = [n for n in names if n not in DESCRIPTORS]
    if unknown:
        raise ValueError(f"descriptors {unknown!r} are unknown; choose from {sorted(DESCRIPTORS)}")
    out: dict[str, float] = {}
    for name in names:
        out.update(DESCRIPTORS[name](v))
    return out
