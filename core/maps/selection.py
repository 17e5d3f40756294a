"""What a selection of the map holds: counts, pixel statistics, neighbours, exports, thumbnails.

A selection is a list of row indices of the map; row ``i`` of the map is frame ``i`` of the dataset,
row ``i`` of the latents and of the clustering's labels. Everything here is plain numpy/pandas over
the :class:`core.data.store.Store`, usable from a notebook, a flow or a Dash callback.

Reading frames from Tiled
-------------------------
Tiled serves an array by slices, so a selection is read as a few slices rather than one request
per frame: the indices are sorted and grouped into *windows*, each window one slice
``images[first:last + 1]`` of at most ``chunk`` frames, from which the selected rows are kept.
Two selected frames share a window when the frames between them cost less to transfer than a
second request: measured against a SimpleTiledServer in another process on this 2-core machine, a
request costs ~70 ms whatever its size and the payload then streams at ~35 MB/s, so a gap is worth
reading through up to about 70 ms x 35 MB/s = 2.5 MB (:data:`MERGE_GAP_BYTES`). Two windows are
requested ahead of the one being averaged (:data:`PREFETCH`).

Measured there on a 50,000-frame dataset of 32x32 frames (200 MB), mean and std of: 5,000
contiguous frames 0.85 s (10 requests); 5,000 frames at random 7.0 s (96 requests, i.e. the whole
dataset read through: 8.5 s without prefetch); 500 at random 5.9 s; 20,000 at random, capped to
5,000, 7.0 s. One request per frame would cost ~70 ms x 5,000 = 6 min for a capped selection.

Example
-------
>>> import numpy as np
>>> from core.maps.selection import selection_summary, nearest_neighbours
>>> selection_summary([0, 1, 2], np.array([0, 0, -1, 1]))["clusters"]
{0: 2, 'noise': 1}
>>> nearest_neighbours(np.array([[0.0], [1.0], [3.0]]), 0, 1)
(array([1]), array([1.]))
"""

from __future__ import annotations

import base64
import io
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image  # at import: a first import racing in two callback threads fails half-way

from core.data.results import datasets

log = logging.getLogger(__name__)

# Read through a gap of unselected frames rather than start a new request while the gap is
# smaller than this (one request's latency worth of transfer; see the module docstring).
MERGE_GAP_BYTES = 2 * 2**20
# Whatever ``chunk`` asks for, a window never holds more than this much float32 (nor 8x that in
# the float64 statistics): large frames (e.g. 1024x1024) get fewer frames per read.
MAX_WINDOW_BYTES = 64 * 2**20
# Windows requested ahead while the current one is averaged: requests are mostly latency, so two
# in flight roughly halve the time of a scattered selection (measured in the module docstring).
PREFETCH = 2
NOISE = "noise"


def _as_indices(indices: Any, n: int | None = None, *, name: str = "indices") -> np.ndarray:
    """Validated int64 row indices, bounds-checked against ``n`` when given."""
    array = np.asarray(indices if indices is not None else [])
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{name} must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if n is not None:
        bad = array[(array < 0) | (array >= n)]
        if bad.size:
            raise ValueError(
                f"{name} contain {bad.size} value(s) outside [0, {n - 1}] (first: {int(bad[0])!r}); "
                "was the selection made on another map? Select again on the map shown."
            )
    return array


def _empty_selection(what: str) -> ValueError:
    return ValueError(f"The selection is empty: nothing to {what}. Lasso or box-select points of the map first.")


# -- counts --------------------------------------------------------------------------------------
def selection_summary(indices: Sequence[int], labels: np.ndarray | None) -> dict:
    """Count and cluster composition of a selection.

    Parameters
    ----------
    indices : sequence of int
        Selected rows of the map (duplicates are counted once).
    labels : ndarray of shape (n_frames,) or None
        Cluster label of every row of the map, ``-1`` for noise; None when the map has no
        clustering (the composition is then empty).

    Returns
    -------
    dict
        ``count`` (selected frames), ``n_total`` (frames in the map, None without labels),
        ``fraction`` (count / n_total, None without labels) and ``clusters``: label → count,
        largest first, ties by label, noise (``-1``) listed under the key ``"noise"``.
    """
    n = None if labels is None else len(labels)
    selected = np.unique(_as_indices(indices, n))
    summary: dict[str, Any] = {"count": int(selected.size), "n_total": n,
                               "fraction": (selected.size / n) if n else None, "clusters": {}}
    if labels is None or selected.size == 0:
        return summary
    values, counts = np.unique(np.asarray(labels)[selected], return_counts=True)
    order = np.lexsort((values, -counts))  # by count descending, then label
    summary["clusters"] = {(NOISE if values[i] == -1 else int(values[i])): int(counts[i]) for i in order}
    return summary


# -- reading frames ------------------------------------------------------------------------------
def read_windows(
    sorted_indices: np.ndarray,
    *,
    frame_bytes: int,
    chunk: int = 512,
    gap_bytes: int = MERGE_GAP_BYTES,
) -> list[tuple[int, int, np.ndarray]]:
    """Group sorted, unique indices into slices to read: ``[(start, stop, rows_in_slice), ...]``.

    A window spans at most ``chunk`` frames (and at most :data:`MAX_WINDOW_BYTES`); the next
    selected frame joins the current window when the unselected frames before it weigh at most
    ``gap_bytes``. ``rows_in_slice`` are the selected rows relative to ``start``.
    """
    if chunk < 1:
        raise ValueError(f"chunk={chunk!r} must be at least 1")
    span_max = max(1, min(chunk, MAX_WINDOW_BYTES // max(frame_bytes, 1)))
    max_gap = gap_bytes // max(frame_bytes, 1)  # unselected frames worth reading through
    windows = []
    i, n = 0, len(sorted_indices)
    while i < n:
        start = int(sorted_indices[i])
        j = i + 1
        while (j < n and sorted_indices[j] - start < span_max
               and sorted_indices[j] - sorted_indices[j - 1] - 1 <= max_gap):
            j += 1
        stop = int(sorted_indices[j - 1]) + 1
        windows.append((start, stop, sorted_indices[i:j] - start))
        i = j
    return windows


def _images_node(store: Any, dataset_id: str) -> Any:
    return store.node(datasets.KIND, dataset_id)[datasets.IMAGES]


def iter_selected_images(
    store: Any, dataset_id: str, indices: Sequence[int], *, chunk: int = 512,
    gap_bytes: int = MERGE_GAP_BYTES, prefetch: int = PREFETCH,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(indices, frames)`` for the selected frames, window by window, in index order.

    Each window is one Tiled request (:func:`read_windows` says how they are grouped); up to
    ``prefetch`` further windows are requested while the caller works on the current one, so
    memory is bounded by ``prefetch + 1`` windows of at most ``chunk`` frames.
    """
    node = _images_node(store, dataset_id)
    n = node.shape[0]
    selected = np.unique(_as_indices(indices, n))
    frame_bytes = int(np.prod(node.shape[1:])) * node.dtype.itemsize
    windows = read_windows(selected, frame_bytes=frame_bytes, chunk=chunk, gap_bytes=gap_bytes)

    def fetch(window: tuple[int, int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        start, stop, rows = window
        block = np.asarray(node[start:stop])  # (stop - start, [C,] H, W): one request
        return rows + start, block[rows]

    if prefetch < 1 or len(windows) < 2:
        yield from map(fetch, windows)
        return
    with ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="selection-read") as pool:
        pending: deque = deque()
        try:
            for window in windows:
                pending.append(pool.submit(fetch, window))
                if len(pending) > prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # the caller stopped early or a read failed
                future.cancel()


def read_images(store: Any, dataset_id: str, indices: Sequence[int], *, chunk: int = 512) -> np.ndarray:
    """The frames at ``indices``, in the order given (for a gallery page or thumbnails).

    Returns an array of shape (len(indices), [C,] H, W); duplicates are repeated.
    """
    wanted = _as_indices(indices)
    if wanted.size == 0:
        raise _empty_selection("read")
    found: dict[int, np.ndarray] = {}
    for idx, frames in iter_selected_images(store, dataset_id, wanted, chunk=chunk):
        found.update(zip(idx.tolist(), frames))
    return np.stack([found[i] for i in wanted.tolist()])


# -- pixel statistics ----------------------------------------------------------------------------
def mean_std_images(
    store: Any,
    dataset_id: str,
    indices: Sequence[int],
    *,
    cap: int = 5000,
    chunk: int = 512,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pixel-wise mean and standard deviation of the selected frames, read from Tiled in chunks.

    The standard deviation is the *population* one (``ddof=0``, like ``np.std``): it describes
    the frames used, and a selection is not a sample of a larger population. Frames are read
    window by window (at most ``chunk`` frames in memory, see :func:`iter_selected_images`); each
    window's mean and sum of squared deviations are computed exactly in float64 and merged into
    the running ones with Chan et al.'s pairwise update (the batched form of Welford's
    algorithm). Unlike accumulating Σx and Σx², this never subtracts two large nearly equal
    sums, so a bright frame set with a faint variation keeps its digits, at the same cost.

    Parameters
    ----------
    store : core.data.store.Store
    dataset_id : str
        Dataset whose ``images`` (N, [C,] H, W) the indices refer to.
    indices : sequence of int
        Selected frames; duplicates count once.
    cap : int, default 5000
        When more frames are selected, a seeded random subset of ``cap`` of them is used
        (uniform, without replacement), so the time and the bytes read stay bounded.
    chunk : int, default 512
        Most frames held in memory at once (fewer for frames over 128 KiB).
    seed : int, default 0
        Seed of the subset: the same selection gives the same images.

    Returns
    -------
    mean, std : ndarray of shape ([C,] H, W), float32
    info : dict
        ``{"n_used", "n_selected", "sampled": bool, "n_requests"}``.

    Raises
    ------
    ValueError
        Empty selection, indices outside the dataset, or ``cap`` < 1.

    Example
    -------
    >>> mean, std, info = mean_std_images(store, "ds-…", range(100, 900))  # doctest: +SKIP
    >>> info  # doctest: +SKIP
    {'n_used': 800, 'n_selected': 800, 'sampled': False, 'n_requests': 2}
    """
    if cap < 1:
        raise ValueError(f"cap={cap!r} must be at least 1")
    selected = np.unique(_as_indices(indices))
    if selected.size == 0:
        raise _empty_selection("average")
    used = selected
    if selected.size > cap:
        used = np.sort(np.random.default_rng(seed).choice(selected, size=cap, replace=False))
    count = 0
    mean = m2 = None
    n_requests = 0
    for _, frames in iter_selected_images(store, dataset_id, used, chunk=chunk):
        n_requests += 1
        x = frames.astype(np.float64)  # (b, [C,] H, W)
        b = len(x)
        batch_mean = x.mean(axis=0)
        batch_m2 = ((x - batch_mean) ** 2).sum(axis=0)
        if mean is None:
            mean, m2, count = batch_mean, batch_m2, b
            continue
        total = count + b
        delta = batch_mean - mean
        mean = mean + delta * (b / total)
        m2 = m2 + batch_m2 + delta**2 * (count * b / total)
        count = total
    std = np.sqrt(m2 / count)
    info = {"n_used": int(count), "n_selected": int(selected.size), "sampled": bool(count < selected.size),
            "n_requests": n_requests}
    return mean.astype(np.float32), std.astype(np.float32), info


# -- neighbours ----------------------------------------------------------------------------------
def nearest_neighbours(latents: np.ndarray, index: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` frames closest to frame ``index`` in latent space (Euclidean), itself excluded.

    Parameters
    ----------
    latents : ndarray of shape (n_frames, d)
        Latent means (``mu``) of every frame of the map.
    index : int
        The frame whose neighbours are wanted, in [0, n_frames).
    k : int
        How many, in [1, n_frames - 1].

    Returns
    -------
    indices : ndarray of shape (k,), int64
        Nearest first; equal distances by index. Another frame with the same latent vector is a
        neighbour at distance 0; only ``index`` itself is left out.
    distances : ndarray of shape (k,), float64
    """
    z = np.asarray(latents)
    if z.ndim != 2:
        raise ValueError(f"latents must be (n_frames, d), got shape {z.shape}")
    n = len(z)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise ValueError(f"index={index!r} must be an integer between 0 and {n - 1}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise ValueError(f"k={k!r} must be an integer between 1 and {n - 1} (frames in the map minus the frame itself)")
    query = z[index].astype(np.float64)
    d2 = np.empty(n, dtype=np.float64)
    step = 65_536  # keep the float64 difference block ~32 MiB at d=64
    for start in range(0, n, step):
        block = z[start:start + step].astype(np.float64) - query  # (b, d)
        d2[start:start + step] = np.einsum("ij,ij->i", block, block)
    d2[index] = np.inf
    kth = d2[np.argpartition(d2, k - 1)[k - 1]]  # the k-th smallest distance
    # Every frame within it (ties at the k-th distance included), then ordered by (distance, index).
    candidates = np.flatnonzero(d2 <= kth)
    order = np.lexsort((candidates, d2[candidates]))[:k]
    chosen = candidates[order]
    return chosen.astype(np.int64), np.sqrt(d2[chosen])


# -- export --------------------------------------------------------------------------------------
def export_table(
    frames_df: pd.DataFrame | None,
    indices: Sequence[int],
    labels: np.ndarray | None,
    embedding: np.ndarray | None,
) -> pd.DataFrame:
    """One row per selected frame, in the selection's order (see :func:`export_csv`)."""
    sizes = [len(a) for a in (frames_df, labels, embedding) if a is not None]
    if len(set(sizes)) > 1:
        raise ValueError(f"frames table, labels and embedding have different lengths: {sizes}")
    rows = _as_indices(indices, sizes[0] if sizes else None)
    if rows.size == 0:
        raise _empty_selection("export")
    table = pd.DataFrame({"index": rows})
    if labels is not None:
        table["cluster"] = np.asarray(labels)[rows].astype(np.int64)
    if embedding is not None:
        xyz = np.asarray(embedding)[rows]
        for axis, name in zip(range(xyz.shape[1]), ("x", "y", "z")):
            table[name] = xyz[:, axis]
    if frames_df is not None:
        meta = frames_df.iloc[rows].reset_index(drop=True)
        if "index" in meta and np.array_equal(meta["index"].to_numpy(), rows):
            meta = meta.drop(columns="index")  # the same row number: say it once
        meta = meta.rename(columns={c: f"frames_{c}" for c in meta.columns if c in table.columns})
        table = pd.concat([table, meta], axis=1)
    return table


def export_csv(
    frames_df: pd.DataFrame | None,
    indices: Sequence[int],
    labels: np.ndarray | None,
    embedding: np.ndarray | None,
) -> str:
    """The selection as CSV text: ``index, cluster, x, y[, z]``, then the frames table's columns.

    Rows follow the selection's order, the same as :func:`export_latents_npy`, so row ``i`` of
    the CSV describes row ``i`` of the NPY. ``cluster`` is the integer label, ``-1`` for noise.
    A frames-table column whose name is taken gets the prefix ``frames_``; the frames table's own
    ``index`` is dropped when it equals the row number. Any of ``frames_df``, ``labels``,
    ``embedding`` may be None to leave its columns out.
    """
    return export_table(frames_df, indices, labels, embedding).to_csv(index=False)


def export_latents_npy(mu: np.ndarray, indices: Sequence[int]) -> bytes:
    """The latent vectors of the selection, ``mu[indices]`` of shape (n, d), as ``.npy`` bytes.

    Read back with ``np.load(io.BytesIO(data))``.
    """
    mu = np.asarray(mu)
    rows = _as_indices(indices, len(mu))
    if rows.size == 0:
        raise _empty_selection("export")
    buffer = io.BytesIO()
    np.save(buffer, mu[rows], allow_pickle=False)
    return buffer.getvalue()


# -- thumbnails ----------------------------------------------------------------------------------
def to_png_data_uri(
    image: np.ndarray,
    *,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    max_size: int | None = None,
) -> str:
    """A ``data:image/png;base64,…`` URI of an image, for ``html.Img(src=...)`` or a hover.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (C, H, W)
        Channel-first like the datasets. C = 1 is grey, C = 3 RGB, C = 4 RGBA; any other C is
        shown as the mean over channels.
    vmin, vmax : float or None, default 0 and 1
        Values mapped to black and white (clipped outside). None takes the image's own minimum
        or maximum: ``vmin=None, vmax=None`` stretches the contrast (e.g. a std image). NaN
        pixels are drawn black.
    max_size : int or None
        Shrink (never enlarge) so that the longer side is at most this many pixels; let the
        browser enlarge with CSS ``image-rendering: pixelated``.
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 3:
        c = x.shape[0]
        if c == 1:
            x = x[0]
        elif c in (3, 4):
            x = np.moveaxis(x, 0, -1)  # (H, W, C) for PIL
        else:
            x = x.mean(axis=0)
    elif x.ndim != 2:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {x.shape}")
    finite = np.isfinite(x)
    lo = float(np.min(x[finite])) if vmin is None and finite.any() else (vmin or 0.0)
    hi = float(np.max(x[finite])) if vmax is None and finite.any() else (1.0 if vmax is None else vmax)
    scale = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    pixels = np.round(np.clip(np.where(finite, scale, 0.0), 0, 1) * 255).astype(np.uint8)
    picture = Image.fromarray(pixels)
    if max_size is not None and max(picture.size) > max_size:
        w, h = picture.size
        ratio = max_size / max(w, h)
        picture = picture.resize((max(1, round(w * ratio)), max(1, round(h * ratio))), Image.Resampling.BOX)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
