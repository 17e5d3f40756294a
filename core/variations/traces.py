"""Per-particle diffusion traces of a material variation (Dao et al., Digital Discovery 2025).

The kept samples of one reference are pixel-averaged into a *trace image*; each particle of the
reference leaves its own "diffusion trace" there. This module finds the particles of the
reference, cuts the trace image's foreground into one region per particle, and describes each
region (DESIGN §1 "Per-particle traces"):

- **Reference particles** (:func:`reference_particles`): the robust foreground of
  ``core.variations.descriptors`` (pixels > 4σ from a smoothed background, both signs: a
  bright-field colloid is a bright core in a dark ring), holes filled, connected components
  (8-connectivity) smaller than ``min_fraction`` of the typical particle (:func:`typical_size`)
  dropped as noise. On the real bright-field colloid frames (500 px) this gives the five
  particles of every frame (340–460 px each) and drops 10–60 specks of 1–16 px; on the
  bulk-water frames (640 × 424) 545–565 particles (7–1100 px, median 23; the largest is an
  artefact at the image corner, which a rule relative to the largest component would have
  let remove every particle).
- **Traces** (:func:`extract_traces`): the trace image's foreground, split by a marker-based
  watershed (scikit-image) seeded by the reference particles on the Euclidean distance to the
  nearest particle: inside a connected piece of foreground each pixel goes to the particle it is
  nearest to *through the foreground* (a nearest-seed split that never jumps across
  background). Foreground pieces touching no reference particle are dropped
  (:func:`split_traces` counts their pixels).
- **Descriptors** (:func:`describe_traces`): area in physical units, anisotropy (principal-axis
  ratio) and a shape tortuosity (:func:`skeleton_tortuosity`).
- **Measured traces** (:func:`window_trace`): the same extraction on the pixel mean of W real
  consecutive frames measures real motion.
- **Diffusion modes** (:func:`trace_modes`): HAC (average linkage) over the traces on
  (anisotropy, tortuosity), each scaled to its range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from core.variations.clusters import cut, dendrogram_data, hac, scale_descriptors
from core.variations.descriptors import FOREGROUND_K, foreground, principal_axis_ratio

MIN_FRACTION = 0.2  # a particle has at least this share of the largest particle's pixels
MIN_PIXELS = 3  # and at least this many pixels
EIGHT = np.ones((3, 3), bool)  # 8-connectivity
TRACE_COLUMNS = ("particle", "area", "anisotropy", "tortuosity", "centroid_y", "centroid_x", "n_pixels")
MODE_DESCRIPTORS = ("anisotropy", "tortuosity")


def TRACE_UNITS(unit: str = "px") -> dict[str, str]:  # noqa: N802 (a table of units, named as one)
    """The unit of every column of :func:`describe_traces`, for a length unit ``unit``.

    Centroids stay in pixels: they place the trace on the image.
    """
    return {"particle": "id", "area": f"{unit}²", "anisotropy": "axis ratio ≥ 1",
            "tortuosity": "skeleton path / chord ≥ 1", "centroid_y": "px", "centroid_x": "px",
            "n_pixels": "px"}


def _gray(image: np.ndarray) -> np.ndarray:
    """(H, W) or (C, H, W) -> float32 (H, W), channels averaged."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3:
        return x.mean(axis=0)
    if x.ndim != 2:
        raise ValueError(f"an image of shape {x.shape} must be (H, W) or (C, H, W)")
    return x


# -- particles of the reference ----------------------------------------------------------------
def typical_size(sizes: np.ndarray) -> float:
    """Area-weighted median of component sizes: the size of the component that holds the
    median foreground pixel. Specks of noise hold few pixels and one large artefact holds only
    its share, so neither moves it far from the particles' size."""
    s = np.sort(np.asarray(sizes, dtype=np.float64))[::-1]
    return float(s[np.searchsorted(np.cumsum(s), s.sum() / 2)])


def reference_particles(
    reference_image: np.ndarray,
    *,
    k: float = FOREGROUND_K,
    min_fraction: float = MIN_FRACTION,
    min_pixels: int = MIN_PIXELS,
) -> np.ndarray:
    """Label image (H, W) int32 of the particles of a reference: 0 background, 1 … n particles.

    Labels follow scipy's raster order (top-left first), so they repeat for the same image.
    """
    fg = ndi.binary_fill_holes(foreground(_gray(reference_image), k=k))
    labels, n = ndi.label(fg, structure=EIGHT)
    if n == 0:
        return labels.astype(np.int32)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    keep = sizes >= max(min_pixels, min_fraction * typical_size(sizes))
    relabel = np.zeros(n + 1, np.int32)
    relabel[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return relabel[labels]


# -- traces ------------------------------------------------------------------------------------
def split_traces(trace_fg: np.ndarray, particles: np.ndarray) -> tuple[np.ndarray, int]:
    """Cut a trace foreground (H, W) bool among the particles: (labels (H, W) int32, dropped).

    Label j is the trace of particle j; ``dropped`` counts the foreground pixels connected to
    no particle. A particle whose pixels all lie outside the foreground gets no trace.
    """
    from skimage.segmentation import watershed

    fg = np.asarray(trace_fg, dtype=bool)
    particles = np.asarray(particles)
    if fg.shape != particles.shape:
        raise ValueError(f"trace {fg.shape} and particles {particles.shape} must have the same shape")
    markers = np.where(fg, particles, 0).astype(np.int32)
    if not markers.any():
        return np.zeros(fg.shape, np.int32), int(fg.sum())
    distance = ndi.distance_transform_edt(markers == 0)  # to the nearest particle pixel
    labels = watershed(distance, markers=markers, mask=fg, connectivity=2).astype(np.int32)
    return labels, int(fg.sum() - (labels > 0).sum())


def extract_traces(
    trace_image: np.ndarray, particles: np.ndarray, *, k: float = FOREGROUND_K
) -> np.ndarray:
    """Label image (H, W) int32 of the traces in a trace image (H, W) or (C, H, W): label j is
    the trace of reference particle j (:func:`split_traces` on the trace's foreground)."""
    return split_traces(foreground(_gray(trace_image), k=k), particles)[0]


def window_trace(frames: np.ndarray, start: int, w: int) -> np.ndarray:
    """Pixel mean float32 of the ``w`` real frames from ``start`` (frames (T, H, W) or
    (T, C, H, W)): the measured trace, whose reference is ``frames[start]``."""
    n = len(frames)
    if not (isinstance(w, (int, np.integer)) and w >= 1):
        raise ValueError(f"w={w!r} must be an integer >= 1")
    if not (isinstance(start, (int, np.integer)) and 0 <= start and start + w <= n):
        raise ValueError(f"frames {start} … {start + w - 1} are not all in the {n} frames given")
    return np.asarray(frames[start : start + w], dtype=np.float64).mean(axis=0).astype(np.float32)


# -- descriptors -------------------------------------------------------------------------------
def _longest_geodesic(skeleton: np.ndarray) -> tuple[float, float]:
    """(length, chord) of the longest geodesic path in an 8-connected skeleton.

    Pixels are nodes, neighbours are joined by edges of length 1 or √2; the path's ends are
    found by a double sweep (the farthest pixel from any pixel, then the farthest from that),
    exact on trees, which skeletons of hole-free regions are.
    """
    rc = np.argwhere(skeleton)
    if len(rc) < 2:
        return 0.0, 0.0
    index = np.full(skeleton.shape, -1, np.int64)
    index[tuple(rc.T)] = np.arange(len(rc))
    rows, cols, weights = [], [], []
    h, w = skeleton.shape
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each neighbour pair once
        r2, c2 = rc[:, 0] + dr, rc[:, 1] + dc
        ok = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
        j = np.full(len(rc), -1)
        j[ok] = index[r2[ok], c2[ok]]
        has = j >= 0
        rows.append(np.flatnonzero(has))
        cols.append(j[has])
        weights.append(np.full(int(has.sum()), math.hypot(dr, dc)))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(len(rc), len(rc))).tocsr()
    d0 = dijkstra(graph, directed=False, indices=0)
    a = int(np.argmax(np.where(np.isfinite(d0), d0, -1)))
    da = dijkstra(graph, directed=False, indices=a)
    b = int(np.argmax(np.where(np.isfinite(da), da, -1)))
    return float(da[b]), float(np.linalg.norm(rc[a] - rc[b]))


def skeleton_tortuosity(mask: np.ndarray) -> float:
    """Tortuosity of a trace's shape: the longest geodesic path along its skeleton over the
    straight distance between that path's ends (≥ 1).

    A straight bar gives 1; an L with legs a, b gives (a + b)/√(a² + b²); a zig-zag of ±45°
    strokes √2. A compact blob has no path to bend: when the path's chord is no longer than the
    region's thickness (twice its largest inscribed radius) the result is 1. A disc is such a
    blob (its skeleton is its centre, one pixel), so a disc gives 1, as does an isotropic
    Brownian trace: tortuosity separates bent paths from straight ones, and anisotropy separates
    both from blobs. NaN for an empty mask. Skeleton: Zhang–Suen thinning (scikit-image).
    """
    from skimage.morphology import skeletonize

    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return math.nan
    length, chord = _longest_geodesic(skeletonize(m))
    thickness = 2 * float(ndi.distance_transform_edt(np.pad(m, 1)).max())
    if chord <= thickness or chord == 0:
        return 1.0
    return max(1.0, length / chord)


def describe_traces(
    labels: np.ndarray, *, pixel_size: float | None = None, unit: str = "px"
) -> pd.DataFrame:
    """One row per trace of a label image (:data:`TRACE_COLUMNS`; ``table.attrs["units"]`` is
    :func:`TRACE_UNITS` of the unit used).

    ``area`` is n_pixels × pixel_size² in ``unit``² (px² when ``pixel_size`` is None);
    anisotropy is the principal-axis ratio of the region (``descriptors.principal_axis_ratio``).
    """
    if pixel_size is None:
        scale, unit = 1.0, "px"
    elif isinstance(pixel_size, (int, float)) and math.isfinite(pixel_size) and pixel_size > 0:
        scale = float(pixel_size) ** 2
    else:
        raise ValueError(f"pixel_size={pixel_size!r} must be a number > 0 (or None for pixels)")
    labels = np.asarray(labels)
    ids = [int(j) for j in np.unique(labels) if j > 0]
    objects = ndi.find_objects(labels)
    rows = []
    for j in ids:
        sl = objects[j - 1]
        region = labels[sl] == j
        n = int(region.sum())
        r, c = np.argwhere(region).mean(axis=0)
        rows.append({"particle": j, "area": n * scale, "anisotropy": principal_axis_ratio(region),
                     "tortuosity": skeleton_tortuosity(region),
                     "centroid_y": float(r + sl[0].start), "centroid_x": float(c + sl[1].start),
                     "n_pixels": n})
    table = pd.DataFrame(rows, columns=list(TRACE_COLUMNS)).astype({"particle": np.int64, "n_pixels": np.int64})
    table.attrs["units"] = TRACE_UNITS(unit)
    return table


def trace_table(
    reference_image: np.ndarray,
    trace_image: np.ndarray,
    *,
    pixel_size: float | None = None,
    unit: str = "px",
    k: float = FOREGROUND_K,
) -> tuple[pd.DataFrame, int]:
    """Particles of the reference, their traces and descriptors: (table, dropped pixels)."""
    particles = reference_particles(reference_image, k=k)
    labels, dropped = split_traces(foreground(_gray(trace_image), k=k), particles)
    return describe_traces(labels, pixel_size=pixel_size, unit=unit), dropped


# -- diffusion modes ---------------------------------------------------------------------------
@dataclass
class TraceModes:
    """HAC of particle traces on (anisotropy, tortuosity).

    labels : (n,) mode of each trace (row of the table), 0-based
    linkage : (n − 1, 4) scipy linkage (average, Euclidean on range-scaled descriptors)
    summary : one row per mode: mode, count, area_mean, area_sd, anisotropy_median,
        tortuosity_median
    dendrogram : :func:`core.variations.clusters.dendrogram_data` of the linkage
    """

    labels: np.ndarray
    linkage: np.ndarray
    summary: pd.DataFrame
    dendrogram: dict
    columns: tuple[str, ...] = MODE_DESCRIPTORS


def mode_summary(table: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Per mode: count, area mean ± sd (sd with ddof 1, NaN for one trace), medians."""
    g = table.assign(mode=np.asarray(labels)).groupby("mode")
    return pd.DataFrame({
        "count": g.size(), "area_mean": g["area"].mean(), "area_sd": g["area"].std(),
        "anisotropy_median": g["anisotropy"].median(), "tortuosity_median": g["tortuosity"].median(),
    }).reset_index()


def trace_modes(table: pd.DataFrame, n_modes: int) -> TraceModes:
    """Diffusion modes: HAC with average linkage over the traces on (anisotropy, tortuosity),
    each scaled to its range (min → 0, max → 1), as the paper does.

    An infinite anisotropy (a one-pixel-wide line) takes the largest finite one; NaN the median.
    ``n_modes`` is lowered to the number of traces. HAC is deterministic: no seed.
    """
    n = len(table)
    if n < 2:
        raise ValueError(f"diffusion modes need at least 2 particle traces, got {n}: "
                         "sample more references or check the particles are found")
    if not (isinstance(n_modes, (int, np.integer)) and n_modes >= 1):
        raise ValueError(f"n_modes={n_modes!r} must be an integer >= 1")
    values = table[list(MODE_DESCRIPTORS)].astype(np.float64)
    for c in MODE_DESCRIPTORS:
        finite = values[c][np.isfinite(values[c])]
        if len(finite):
            values[c] = values[c].replace(np.inf, finite.max())
    X, _ = scale_descriptors(values, list(MODE_DESCRIPTORS), scaler="range")
    _, Z = hac(X, n_clusters=1)
    labels = cut(Z, min(int(n_modes), n))
    return TraceModes(labels=labels, linkage=Z, summary=mode_summary(table, labels),
                      dendrogram=dendrogram_data(Z))
