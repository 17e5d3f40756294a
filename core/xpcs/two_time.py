"""Two-time correlation maps of a frame series, and how far a map is from equilibrium.

A two-time map over the pixels P of a region (a q-ring for speckle, any mask for microscopy)::

    C(t1, t2) = <I(t1) I(t2)>_P / (<I(t1)>_P <I(t2)>_P)

At equilibrium the dynamics do not depend on the age of the sample, so C depends only on the lag
t2 - t1 and the map is constant along each diagonal (a Toeplitz matrix). The non-equilibrium
measure (:func:`non_equilibrium`) is the fraction of the variance of C that is left after
subtracting each diagonal's mean: 0 at equilibrium, towards 1 when C depends on t1 itself
(ageing, intermittent avalanches, a sample that changes state during the scan).

The diagonal t1 = t2 is left out of that measure by default (``min_lag=1``): it holds the
speckle contrast plus the shot noise of a single frame, so it sits far above its neighbours,
and authors often overwrite it (the yolk-plasma map of ``../shared/data`` has it set to 0.04).
Either way it says nothing about ageing, and kept in it would dominate the total variance.

Noise counts as deviation: a map estimated from few pixels or frames scatters around its
diagonal means, and that scatter reads as non-equilibrium (the noisy BNL map of ``../shared/data``
gives ~0.97). Average over more pixels, or smooth the map, before comparing values.

Example
-------
>>> frames = np.random.default_rng(0).poisson(5.0, size=(20, 16, 16))
>>> C = two_time(frames)
>>> C.shape, bool(np.allclose(C, C.T))
((20, 20), True)
>>> 0.0 <= non_equilibrium(C) <= 1.0
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

# Entries (frames x pixels) per block moved to the device at once: 2**25 float64 is 256 MiB, so
# a ring of any size over a long series never needs the whole stack in float64 at once.
_BLOCK_ENTRIES = 2**25


def two_time(frames: Any, roi: np.ndarray | None = None) -> np.ndarray:
    """Two-time correlation map of a frame series over the pixels of one region, on the CPU.

    Parameters
    ----------
    frames : array-like of shape (T, H, W)
        Intensities (counts); T >= 2.
    roi : bool array of shape (H, W), optional
        Pixels to average over; ``None`` uses every pixel.

    Returns
    -------
    C : ndarray of shape (T, T), float64, symmetric
        ``C[t1, t2] = mean(I[t1] * I[t2]) / (mean(I[t1]) * mean(I[t2]))`` over the region:
        :func:`two_time_rings` with the region as its one ring.

    Raises
    ------
    ValueError
        Wrong shapes, non-finite intensities in the region, an empty region, or a frame whose
        mean intensity in the region is not positive (the ratio is undefined).

    Examples
    --------
    >>> two_time(np.ones((3, 4, 4)))
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]])
    """
    frames = np.asarray(frames)
    if roi is None:
        labels = np.zeros(frames.shape[1:], np.int32)
    else:
        roi = np.asarray(roi, dtype=bool)
        if frames.ndim == 3 and roi.shape != frames.shape[1:]:
            raise ValueError(f"roi of shape {roi.shape} must match the frames' {frames.shape[1:]}")
        labels = np.where(roi, 0, -1).astype(np.int32)
    return two_time_rings(frames, labels, device="cpu")[0]


def two_time_rings(frames: Any, rings: Any, *, device: str = "auto") -> np.ndarray:
    """One two-time map per ring, each as one matrix product on the worker's device.

    For ring r with pixels P_r, the frames restricted to it are a matrix I_r (T x |P_r|) and
    ``C_r = (I_r I_rᵀ / |P_r|) / (<I_r> <I_r>ᵀ)``: every pair of times at once, never a Python
    loop over pairs. Pixels are sorted by ring once, then streamed to the device in blocks of
    about :data:`_BLOCK_ENTRIES` entries; each block adds its part of each ring's product.

    Parameters
    ----------
    frames : array-like or torch.Tensor of shape (T, H, W)
        Intensities (counts); T >= 2. A tensor already on the device is gathered there.
    rings : :class:`core.xpcs.rings.Rings` or int array (H, W)
        Ring number of each pixel, -1 for pixels in no ring (masked, gaps, outside).
    device : str, default "auto"
        As :func:`core.models.device.pick_device` (CUDA when present).

    Returns
    -------
    ndarray (n_rings, T, T) float64, each symmetric.

    Raises
    ------
    ValueError
        Wrong shapes, a ring with no pixel, non-finite intensities in a ring, or a frame whose
        mean intensity in a ring is not positive.
    """
    import torch

    from core.models.device import pick_device

    labels = np.asarray(getattr(rings, "labels", rings))
    is_tensor = isinstance(frames, torch.Tensor)
    if not is_tensor:
        frames = np.asarray(frames)
        if frames.dtype.kind not in "biuf":
            raise ValueError(f"frames have non-numeric dtype {frames.dtype}")
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise ValueError(f"frames of shape {tuple(frames.shape)} must be (T, H, W) with T >= 2")
    if labels.shape != tuple(frames.shape[1:]) or labels.dtype.kind not in "iu":
        raise ValueError(f"ring labels of shape {labels.shape} ({labels.dtype}) must be integers "
                         f"matching the frames' {tuple(frames.shape[1:])}")
    n_rings = len(rings) if hasattr(rings, "labels") else int(labels.max(initial=-1)) + 1
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")  # pixels grouped by ring, in detector order
    bounds = np.searchsorted(flat[order], np.arange(n_rings + 1))  # ring r: order[b[r]:b[r+1]]
    counts = np.diff(bounds)
    if n_rings == 0 or not counts.all():
        empty = np.flatnonzero(counts == 0).tolist() if n_rings else "all"
        raise ValueError(f"ring(s) {empty} select no pixel (all masked or off the detector); "
                         "choose rings that cover unmasked pixels")
    dev = pick_device(device)
    t = frames.shape[0]
    pixels = frames.reshape(t, -1)  # (T, H*W), a view for contiguous input
    gram = torch.zeros((n_rings, t, t), dtype=torch.float64, device=dev)
    sums = torch.zeros((n_rings, t), dtype=torch.float64, device=dev)
    block = max(1024, _BLOCK_ENTRIES // t)
    for start in range(bounds[0], bounds[-1], block):
        stop = min(start + block, bounds[-1])
        if is_tensor:
            index = torch.as_tensor(order[start:stop], device=pixels.device)
            chunk = pixels.index_select(1, index).to(dev, torch.float64)  # (T, B)
        else:
            chunk = torch.from_numpy(pixels[:, order[start:stop]].astype(np.float64)).to(dev)
        if not torch.isfinite(chunk).all():
            raise ValueError("frames hold NaN or inf inside a ring; mask those pixels out")
        for r in range(np.searchsorted(bounds, start, "right") - 1, n_rings):
            low, high = max(bounds[r], start), min(bounds[r + 1], stop)
            if low >= high:
                break
            part = chunk[:, low - start:high - start]  # (T, pixels of ring r in this block)
            gram[r] += part @ part.T
            sums[r] += part.sum(dim=1)
    pixel_counts = torch.as_tensor(counts, dtype=torch.float64, device=dev)
    means = sums / pixel_counts[:, None]  # (n, T)
    bad = (means <= 0).nonzero().cpu().numpy()
    if bad.size:
        ring, frame = bad[0]
        raise ValueError(
            f"{len(bad)} (ring, frame) pair(s) have no positive mean intensity (first: ring "
            f"{ring}, frame {frame}); C is undefined there: enlarge the ring or drop those frames"
        )
    C = (gram / pixel_counts[:, None, None]) / (means[:, :, None] * means[:, None, :])
    return ((C + C.transpose(1, 2)) / 2).cpu().numpy()  # exact symmetry, up to rounding before


def sliding_two_time(
    frames: Iterable[np.ndarray] | np.ndarray,
    window: int,
    step: int = 1,
    roi: np.ndarray | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Two-time maps over a window sliding along a (possibly endless) frame stream.

    Parameters
    ----------
    frames : iterable of (H, W) arrays, or an array (T, H, W)
        Consumed lazily: only the last ``window`` frames (their roi pixels) are kept.
    window : int
        Frames per map, at least 2.
    step : int, default 1
        Frames between the starts of consecutive maps, at least 1.
    roi : bool array (H, W), optional

    Yields
    ------
    (start, C) : the index of the window's first frame and its (window, window) map.

    Examples
    --------
    >>> series = np.random.default_rng(0).poisson(5.0, size=(10, 8, 8))
    >>> [start for start, _ in sliding_two_time(series, window=4, step=3)]
    [0, 3, 6]
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window={window!r} must be an integer of at least 2")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step={step!r} must be an integer of at least 1")
    keep = None if roi is None else np.asarray(roi, dtype=bool)
    buffer: deque[np.ndarray] = deque(maxlen=window)
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if keep is not None and frame.shape != keep.shape:
            raise ValueError(f"frame {i} of shape {frame.shape} does not match the roi {keep.shape}")
        buffer.append(frame[keep][None, :] if keep is not None else frame.reshape(1, -1))
        start = i - window + 1
        if start >= 0 and start % step == 0:
            yield start, two_time(np.stack(buffer, axis=0))  # (window, 1, P) -> (window, window)


def diagonal_baseline(C: np.ndarray, *, min_lag: int = 1) -> np.ndarray:
    """The time-translation-invariant part of a map: each diagonal replaced by its mean.

    Entries with ``|t2 - t1| < min_lag`` and NaN entries are ignored and come back as NaN.
    Each diagonal is averaged after subtracting its first kept value, so a diagonal of equal
    values returns exactly that value (a Toeplitz map is its own baseline, bit for bit).
    """
    C = _check_map(C)
    t = C.shape[0]
    if isinstance(min_lag, bool) or not isinstance(min_lag, (int, np.integer)) or not 0 <= min_lag < t:
        raise ValueError(f"min_lag={min_lag!r} must be an integer between 0 and {t - 1}")
    rows, cols = np.indices((t, t))
    lag = (cols - rows).ravel() + (t - 1)  # diagonal number, 0 .. 2t-2, row-major order
    values = C.ravel()
    kept = np.flatnonzero(np.isfinite(values) & (np.abs(lag - (t - 1)) >= min_lag))
    baseline = np.full(t * t, np.nan)
    if kept.size:
        lags, kept_values = lag[kept], values[kept]
        first = np.full(2 * t - 1, t * t)  # flat index of each diagonal's first kept entry
        np.minimum.at(first, lags, kept)
        present = first < t * t
        reference = np.zeros(2 * t - 1)  # subtracted first, so equal values stay exact
        reference[present] = values[first[present]]
        deviation = np.bincount(lags, weights=kept_values - reference[lags], minlength=2 * t - 1)
        counts = np.bincount(lags, minlength=2 * t - 1)
        means = reference + deviation / np.maximum(counts, 1)
        baseline[kept] = means[lags]
    return baseline.reshape(t, t)


def non_equilibrium(C: Any, *, min_lag: int = 1) -> float:
    """Fraction of the variance of a two-time map not explained by its diagonal averages.

    ``sum((C - B)**2) / sum((C - mean(C))**2)`` over the kept entries, where B is
    :func:`diagonal_baseline`. Since B holds the per-diagonal means, the total variance splits
    exactly into a between-diagonals part and this deviation, so the result lies in [0, 1].

    Parameters
    ----------
    C : array-like of shape (T, T)
        A two-time map; NaN entries are ignored.
    min_lag : int, default 1
        Diagonals with ``|t2 - t1| < min_lag`` are left out (1: the main diagonal only; see the
        module docstring for why; 0 keeps it).

    Returns
    -------
    float in [0, 1]; 0 for a map constant along every diagonal, and for a constant map.

    Examples
    --------
    >>> lag = np.abs(np.subtract.outer(np.arange(5), np.arange(5)))
    >>> non_equilibrium(np.exp(-lag / 2.0))
    0.0
    """
    C = _check_map(C)
    baseline = diagonal_baseline(C, min_lag=min_lag)
    kept = np.isfinite(baseline)
    if not kept.any():
        raise ValueError("the map has no finite entry off the excluded diagonals")
    values = C[kept]
    total = np.sum((values - values.mean()) ** 2)
    if total == 0:
        return 0.0
    deviation = np.sum((values - baseline[kept]) ** 2)
    return float(min(1.0, deviation / total))


def _check_map(C: Any) -> np.ndarray:
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1] or C.shape[0] < 2:
        raise ValueError(f"a two-time map must be square (T, T) with T >= 2, got shape {C.shape}")
    return C
