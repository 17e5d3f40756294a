"""Measured vs sampled per-particle traces (DESIGN §1 "Measured side by side").

The method's own check (Dao et al. 2025): the diffusion areas of sampled traces should match
those of real motion over the same time step (theirs: 7712 ± 2862 nm² sampled vs 7550 ± 850 nm²
measured, ratio 1.02). :func:`measured_traces` applies the sampled traces' extraction
(``core.variations.traces.trace_table``) to the pixel mean of W consecutive real frames, with
``frames[start]`` as the reference; :func:`compare_traces` sets two trace tables side by side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.data.results import datasets
from core.data.store import Store
from core.variations.descriptors import FOREGROUND_K
from core.variations.traces import trace_table, window_trace

COMPARED = ("area", "anisotropy", "tortuosity")
START = "start"  # column: the first real frame of a measured trace's window
PATCH = "patch"  # column: which patch of the frames (-1 for whole frames)
MAX_WINDOWS = 64  # (window, patch) pairs measured in a dataset: evenly spread, enough for medians and IQRs


def measured_traces(frames: np.ndarray, window: int, *, starts: Sequence[int] | None = None,
                    pixel_size: float | None = None, unit: str = "px",
                    k: float = FOREGROUND_K) -> pd.DataFrame:
    """Per-particle traces of real motion: for each start (default every ``window``-th frame,
    windows not overlapping), the traces of ``frames[start]``'s particles in the pixel mean of
    ``frames[start : start + window]``; one row per trace, ``traces.describe_traces`` columns
    plus ``start``. ``frames`` must be consecutive frames in order (T, [C,] H, W)."""
    n = len(frames)
    if not (isinstance(window, (int, np.integer)) and 1 <= window <= n):
        raise ValueError(f"window={window!r} must be a whole number of frames between 1 and {n}")
    starts = range(0, n - window + 1, window) if starts is None else starts
    tables = [trace_table(frames[s], window_trace(frames, int(s), int(window)), pixel_size=pixel_size,
                          unit=unit, k=k)[0].assign(**{START: int(s)}) for s in starts]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=[*COMPARED, START])


def patches_per_frame(frames: pd.DataFrame) -> int:
    """P when the dataset's rows are frames in acquisition order, each cut into the same P
    patches (row r = frame r // P, patch r % P; P = 1 unpatched); 0 when they are not."""
    patch = frames["patch"].to_numpy()
    if (patch == -1).all():
        return 1
    p = int(patch.max()) + 1
    ok = patch.min() == 0 and len(patch) % p == 0 and (patch == np.tile(np.arange(p), len(patch) // p)).all()
    return p if ok else 0


def dataset_traces(store: Store, dataset_id: str, window: int, *, max_windows: int = MAX_WINDOWS,
                   k: float = FOREGROUND_K) -> pd.DataFrame | None:
    """Measured traces of a stored time series (a dataset ingested with a frame interval):
    windows of W frames evenly spread, every patch of each, at most ``max_windows`` (window,
    patch) pairs in all; areas in the dataset's effective pixel unit² (px² without one). None
    when the dataset is not a time series in order or has fewer than W frames."""
    scale = datasets.read_scale(store, dataset_id)
    frames = datasets.read_frames(store, dataset_id)
    p = patches_per_frame(frames)
    n_frames = len(frames) // p if p else 0
    if scale.frame_interval is None or n_frames < window:
        return None
    n_windows = max(1, min(max_windows // p, n_frames // window))
    starts = np.unique(np.linspace(0, n_frames - window, n_windows).astype(int))
    pixel_size = scale.pixel_size if scale.length_unit != "px" else None
    tables = []
    for start in starts:
        block = datasets.read_images(store, dataset_id, slice(start * p, (start + window) * p))
        block = block.reshape(window, p, *block.shape[1:])  # (W, P, [C,] H, W)
        for patch in range(p):
            table = measured_traces(block[:, patch], window, starts=[0], pixel_size=pixel_size,
                                    unit=scale.length_unit, k=k)
            tables.append(table.assign(**{START: int(start), PATCH: patch if p > 1 else -1}))
    return pd.concat(tables, ignore_index=True)


def _quartiles(v: np.ndarray) -> np.ndarray:
    """Quartiles (linear interpolation) of values that may be ±inf: numpy's interpolation gives NaN
    as soon as an infinite value is a neighbour (0 · inf), even where the quartile is finite (the
    median of 1, 2, inf is 2). Infinities become sentinels just outside the finite range, so any
    quartile beyond that range is one interpolated towards an infinity, and is that infinity."""
    if not len(v):
        return np.full(3, math.nan)
    finite = v[np.isfinite(v)]
    bottom, top = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    lo, hi = bottom - 1.0 - abs(bottom), top + 1.0 + abs(top)
    q = np.percentile(np.where(v == np.inf, hi, np.where(v == -np.inf, lo, v)), [25, 50, 75])
    return np.where(q > top, np.inf, np.where(q < bottom, -np.inf, q))


def _summary(values: pd.Series) -> dict[str, float]:
    """Median and quartiles of every value, mean and its standard error over the finite ones
    (a one-pixel-wide trace has an infinite anisotropy: it counts in the median, not the mean)."""
    v = values.to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    finite = v[np.isfinite(v)]
    q1, med, q3 = _quartiles(v)
    se = finite.std(ddof=1) / math.sqrt(len(finite)) if len(finite) > 1 else math.nan
    with np.errstate(invalid="ignore"):
        iqr = q3 - q1  # NaN when both quartiles are inf
    return {"n": len(v), "median": med, "q1": q1, "q3": q3, "iqr": iqr,
            "mean": finite.mean() if len(finite) else math.nan, "se": se}


def compare_traces(sampled: pd.DataFrame, measured: pd.DataFrame,
                   descriptors: Sequence[str] = COMPARED) -> pd.DataFrame:
    """Sampled vs measured traces, one row per descriptor.

    Columns ``sampled_*`` and ``measured_*`` for n, median, q1, q3, iqr, mean and se (the
    standard error of the mean, std/√n over finite values), then ``ratio`` = sampled mean /
    measured mean and ``ratio_se`` by first-order propagation:
    ratio · √((se_s/mean_s)² + (se_m/mean_m)²). The area row's ratio is the method's check.
    """
    missing = [d for d in descriptors for t in (sampled, measured) if d not in t.columns]
    if missing:
        raise ValueError(f"trace tables lack the column(s) {sorted(set(missing))}; "
                         "give tables from traces.describe_traces")
    rows = []
    for name in descriptors:
        s, m = _summary(sampled[name]), _summary(measured[name])
        ratio = s["mean"] / m["mean"] if m["mean"] else math.nan
        ratio_se = abs(ratio) * math.hypot(s["se"] / s["mean"], m["se"] / m["mean"]) if s["mean"] and m["mean"] else math.nan
        rows.append({"descriptor": name, **{f"sampled_{k}": v for k, v in s.items()},
                     **{f"measured_{k}": v for k, v in m.items()}, "ratio": ratio, "ratio_se": ratio_se})
    return pd.DataFrame(rows).set_index("descriptor")
