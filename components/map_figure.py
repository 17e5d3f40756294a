"""Building the latent map's figure: plain functions of numpy arrays, no Dash, no Tiled.

The map is ONE WebGL trace (``Scattergl`` in 2-D, ``Scatter3d`` in 3-D) whose coordinates
(float32) and colour codes (uint8/uint16) travel to the browser as base64 typed arrays
(``bdata``), never as JSON lists and never as one trace per cluster.

Frame indices are NOT sent as ``customdata``: Dash's ``dcc.Graph`` rebuilds an event point's
customdata from ``figure.data[i].customdata[pointNumber]``, which is undefined for a typed array
spec, so typed customdata vanishes from selectedData/hoverData/clickData, and a JSON list would
cost ~7 bytes per point. Instead :func:`drawn_frames` says which frames each trace draws (all of
them in order, a fixed sample, or the visible window's points) and :func:`event_frames` maps an
event's ``(curveNumber, pointNumber)`` back to frame indices on the server.

Colour is always a small integer code per point plus a colour scale that maps codes to colours:
clusters are categories (code = position in the sorted labels, noise -1 grey), a numeric column
or the frame index is quantised into 255 levels (the colour bar's ticks show real values). One
byte per point is half of a float32 and a quarter of the anchor's float64 lists, and a change of
colouring resends only the codes (see ``components.map_panel``).

Past ``POINTS_LIMIT`` points a 2-D map is drawn as a density (a heatmap of the points binned
over the visible window, each bin coloured by its dominant cluster or mean value) and the points
themselves come back once the visible window holds at most ``WINDOW_POINTS_CAP`` of them
(level of detail through ``relayoutData``). The thresholds come from ``bench/map.py``: see
bench/README.md for the figures.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sequential

# Above this many points a 2-D map is a density and a 3-D map a uniform sample. Measured with
# bench/map.py (2 cores, SwiftShader WebGL): every lasso or zoom makes dcc.Graph redraw all points,
# so a lasso's count shows after 0.7 s at 10k points, 2.0 s at 50k, 3.5 s at 100k, 6.3 s at 300k
# and 24 s at 1M; the density view answers a lasso in 0.2-0.3 s and a zoom to points in ~1 s at
# 100k and 1M alike. 50k keeps every interaction of the points view within ~2 s.
POINTS_LIMIT = 50_000
# At most this many points in the visible window are drawn as points in the density view
# (the window is padded by half its size on each side, so panning a little shows points);
# the same bound as POINTS_LIMIT, so the browser never holds more than 50k points.
WINDOW_POINTS_CAP = 50_000
BINS = 200  # density bins per axis: ~4 px cells on a ~800 px map, 160 kB of float32
NOISE_GREY = "#b4b4b4"
MISSING_GREY = "#d9d9d9"
CLUSTER_PALETTE = qualitative.Dark24 + qualitative.Light24
CONTINUOUS_SCALE = sequential.Viridis
LEVELS = 255  # quantisation levels of a continuous colour (codes 0..254, 255 = missing)

# Colour choices: two fixed ones, then ``COLUMN_PREFIX + name`` for a numeric frames column.
COLOUR_CLUSTER = "cluster"
COLOUR_FRAME = "frame"
COLUMN_PREFIX = "column:"


@dataclass(frozen=True)
class Colouring:
    """Per-point colour codes and how to turn them into colours and a colour bar."""

    codes: np.ndarray  # (N,) uint8 or uint16
    colorscale: list
    cmin: float
    cmax: float
    title: str
    tickvals: list = field(default_factory=list)
    ticktext: list = field(default_factory=list)
    categorical: bool = False

    def colorbar(self) -> dict:
        bar: dict[str, Any] = {"title": {"text": self.title}, "thickness": 14, "len": 0.9}
        if self.tickvals:
            bar.update(tickmode="array", tickvals=self.tickvals, ticktext=self.ticktext)
        return bar


@dataclass(frozen=True)
class Window:
    """The visible part of a 2-D map in data coordinates; ``None`` on an axis means all of it."""

    x: tuple[float, float] | None = None
    y: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return {"x": list(self.x) if self.x else None, "y": list(self.y) if self.y else None}

    @classmethod
    def from_dict(cls, data: dict | None) -> Window:
        data = data or {}
        x, y = data.get("x"), data.get("y")
        return cls(tuple(x) if x else None, tuple(y) if y else None)


# -- typed arrays ------------------------------------------------------------------------------
_TYPED = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4",
          "uint32": "u4", "float32": "f4", "float64": "f8"}


def typed_array(values: np.ndarray) -> dict:
    """plotly.js's typed-array spec ``{dtype, bdata[, shape]}`` for a numpy array.

    Graph objects do this themselves; a ``dash.Patch`` does not (it would send a JSON list),
    so values patched into a figure go through here.
    """
    a = np.ascontiguousarray(values)
    if a.dtype.name not in _TYPED:
        raise ValueError(f"dtype {a.dtype} has no plotly.js typed array; use one of {sorted(_TYPED)}")
    little = a.astype(a.dtype.newbyteorder("<"), copy=False)  # plotly.js reads little-endian
    spec = {"dtype": _TYPED[a.dtype.name], "bdata": base64.b64encode(little.tobytes()).decode("ascii")}
    if a.ndim > 1:
        spec["shape"] = ", ".join(str(s) for s in a.shape)
    return spec


def compact_codes(codes: np.ndarray, n_codes: int) -> np.ndarray:
    return codes.astype(np.uint8 if n_codes <= 256 else np.uint16)


# -- colouring ---------------------------------------------------------------------------------
def colour_options(frames: pd.DataFrame | None) -> list[dict]:
    """Dropdown options: cluster, frame index, then every numeric column of the frames table."""
    options = [{"label": "cluster", "value": COLOUR_CLUSTER},
               {"label": "frame index", "value": COLOUR_FRAME}]
    if frames is not None:
        for name in frames.columns:
            if name == "index":  # the frame index itself
                continue
            dtype = frames[name].dtype
            if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                options.append({"label": str(name), "value": COLUMN_PREFIX + str(name)})
    return options


def colouring(choice: str | None, labels: np.ndarray, frames: pd.DataFrame | None = None, *,
              clustered: bool = True) -> Colouring:
    """The colouring for a dropdown value (see :func:`colour_options`).

    ``clustered=False``: the map has no clustering yet, so its points are "not clustered", not
    HDBSCAN's "noise".
    """
    if choice in (None, COLOUR_CLUSTER):
        return cluster_colouring(labels) if clustered else unclustered_colouring(len(labels))
    if choice == COLOUR_FRAME:
        return continuous_colouring(np.arange(len(labels)), "frame index")
    if choice.startswith(COLUMN_PREFIX):
        name = choice[len(COLUMN_PREFIX):]
        if frames is None or name not in frames.columns:
            known = [o["label"] for o in colour_options(frames)]
            raise ValueError(f"no frames column {name!r} to colour by; known: {', '.join(known)}")
        values = pd.to_numeric(frames[name], errors="coerce").to_numpy(dtype=np.float64)
        if len(values) != len(labels):
            raise ValueError(f"frames column {name!r} has {len(values)} rows for {len(labels)} points")
        return continuous_colouring(values, name)
    raise ValueError(f"colour={choice!r} must be {COLOUR_CLUSTER!r}, {COLOUR_FRAME!r} or "
                     f"{COLUMN_PREFIX!r} followed by a frames column")


def cluster_colouring(labels: np.ndarray) -> Colouring:
    """Categorical: code = position of the label among the sorted labels; noise (-1) grey."""
    labels = np.asarray(labels).astype(np.int64, copy=False)
    categories, codes = np.unique(labels, return_inverse=True)
    k = max(len(categories), 1)
    scale = []
    for i, label in enumerate(categories):
        colour = NOISE_GREY if label < 0 else CLUSTER_PALETTE[int(label) % len(CLUSTER_PALETTE)]
        scale += [[i / k, colour], [(i + 1) / k, colour]]
    if not scale:
        scale = [[0, NOISE_GREY], [1, NOISE_GREY]]
    step = max(1, math.ceil(k / 30))  # a readable colour bar: at most ~30 ticks
    ticks = list(range(0, len(categories), step))
    return Colouring(
        codes=compact_codes(codes.reshape(-1), k), colorscale=scale, cmin=-0.5, cmax=k - 0.5,
        title="cluster", tickvals=ticks,
        ticktext=["noise" if categories[i] < 0 else str(int(categories[i])) for i in ticks],
        categorical=True,
    )


def unclustered_colouring(n: int) -> Colouring:
    """Every point one grey category, named "not clustered" (a map whose clustering is not run)."""
    return Colouring(codes=np.zeros(n, dtype=np.uint8), colorscale=[[0, NOISE_GREY], [1, NOISE_GREY]],
                     cmin=-0.5, cmax=0.5, title="cluster", tickvals=[0], ticktext=["not clustered"],
                     categorical=True)


def continuous_colouring(values: np.ndarray, title: str) -> Colouring:
    """Values quantised to codes 0..254 over their finite range; missing values get 255, grey."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    lo, hi = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 0.0)
    span = hi - lo
    top = LEVELS - 1  # 254
    scaled = np.zeros(len(values)) if span == 0 else (values - lo) / span * top
    codes = np.where(finite, np.rint(np.nan_to_num(scaled)), LEVELS).astype(np.uint8)
    n_scale = len(CONTINUOUS_SCALE) - 1
    has_missing = not finite.all()
    cmax = float(LEVELS if has_missing else top)
    scale = [[i / n_scale * top / cmax, c] for i, c in enumerate(CONTINUOUS_SCALE)]
    ticks = nice_ticks(lo, hi)
    tickvals = [0.0 if span == 0 else (t - lo) / span * top for t in ticks]
    ticktext = [_fmt(t) for t in ticks]
    if has_missing:
        scale += [[(top + 0.5) / cmax, MISSING_GREY], [1.0, MISSING_GREY]]
        tickvals.append(float(LEVELS))
        ticktext.append("missing")
    return Colouring(codes=codes, colorscale=scale, cmin=0.0, cmax=cmax, title=title,
                     tickvals=tickvals, ticktext=ticktext)


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 × 10^k) inside [lo, hi], at most ``most`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(most - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    ticks = [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]
    return [float(round(t, 12)) for t in ticks if lo - 1e-9 * step <= t <= hi + 1e-9 * step]


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value):,}"
    return f"{value:.4g}"


# -- traces ------------------------------------------------------------------------------------
def marker(colour: Colouring, n: int, dims: int = 2, codes: np.ndarray | None = None) -> dict:
    """Marker properties for the point trace (codes default to every point's)."""
    size = (5 if n <= 10_000 else 3 if n <= 100_000 else 2) if dims == 2 else (3 if n <= 20_000 else 2)
    return dict(
        color=colour.codes if codes is None else codes, colorscale=colour.colorscale,
        cmin=colour.cmin, cmax=colour.cmax, showscale=True, colorbar=colour.colorbar(), size=size,
    )


def point_trace(embedding: np.ndarray, colour: Colouring, indices: np.ndarray | None = None,
                n_total: int | None = None) -> go.Scattergl | go.Scatter3d:
    """One WebGL trace of the points at ``indices`` (default: all, in frame order)."""
    emb = np.asarray(embedding)
    if indices is None:
        xyz, codes = emb.astype(np.float32, copy=False), colour.codes
    else:
        indices = np.asarray(indices, dtype=np.int64)
        xyz, codes = emb[indices].astype(np.float32, copy=False), colour.codes[indices]
    n = n_total if n_total is not None else len(emb)
    common = dict(
        mode="markers", name="frames", showlegend=False,
        marker=marker(colour, n, emb.shape[1], codes),
        # Frame, cluster, metadata and the thumbnail come in a dcc.Tooltip from the server:
        # no per-point hover text is sent to the browser.
        hoverinfo="none",
    )
    if emb.shape[1] == 3:
        return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], **common)
    return go.Scattergl(x=xyz[:, 0], y=xyz[:, 1], unselected={"marker": {"opacity": 0.25}}, **common)


def highlight_trace(embedding: np.ndarray, indices: np.ndarray | None = None) -> go.Scatter3d:
    """3-D has no selection state: selected frames are drawn again on top, larger and outlined.

    Its customdata is a plain list of frame indices (at most a selection's worth), the one
    place a point names its frame itself.
    """
    emb = np.asarray(embedding)
    idx = np.asarray([] if indices is None else indices, dtype=np.int64)
    xyz = emb[idx].astype(np.float32, copy=False)
    return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], customdata=idx.tolist(), mode="markers",
                        name="selected", showlegend=False, hoverinfo="none",
                        marker=dict(size=5, color="rgba(0,0,0,0)", line=dict(color="black", width=2)))


def axis_titles(projector: Mapping[str, Any] | None, dims: int) -> list[str]:
    """Axis titles named by method and component: "UMAP 1", "PC 2 (31 %)".

    ``projector`` is a projection's ``projector`` metadata (``core.maps.projection.Projector.to_arrays``):
    PCA axes carry the share of the latent variance they explain when it was recorded, and
    older projections without it get plain "PC 2". Without a known method: "axis 2".
    """
    projector = projector or {}
    method = str(projector.get("method") or "").lower()
    if method != "pca":
        name = method.upper() or "axis"
        return [f"{name} {i + 1}" for i in range(dims)]
    ratios = list(projector.get("explained_variance_ratio") or [])
    return [f"PC {i + 1}" + (f" ({_percent(ratios[i])})" if i < len(ratios) and ratios[i] is not None else "")
            for i in range(dims)]


def _percent(ratio: float) -> str:
    share = 100 * float(ratio)
    return f"{share:.0f} %" if share >= 10 else f"{share:.2g} %"


def layout(dims: int, uirevision: str, title: str | None = None, axes: Sequence[str] | None = None) -> dict:
    """The map's layout; ``axes`` are its axis titles (see :func:`axis_titles`)."""
    axes = list(axes) if axes else axis_titles(None, dims)
    base = dict(
        uirevision=uirevision, margin=dict(l=55, r=10, t=30 if title else 10, b=45),  # room for "PC 2 (31 %)"
        hovermode="closest", template="simple_white", title=title, showlegend=False,
    )
    if dims == 3:
        base["scene"] = dict(xaxis_title=axes[0], yaxis_title=axes[1], zaxis_title=axes[2], uirevision=uirevision)
        return base
    # "event+select": in lasso mode plotly.js emits clicks only when clicking may also select
    # (a click then selects its point). Clicks inside a drawn lasso outline edit the outline.
    return {**base, "dragmode": "lasso", "clickmode": "event+select", "xaxis": dict(title=axes[0], zeroline=False),
            "yaxis": dict(title=axes[1], zeroline=False)}


@dataclass(frozen=True)
class MapView:
    """What a map figure shows: kind ``points``, ``density`` or ``sampled`` (3-D), and how many."""

    kind: str
    n: int
    shown: int
    dims: int


def extent(embedding: np.ndarray, pad: float = 0.02) -> tuple[tuple[float, float], tuple[float, float]]:
    lo, hi = embedding[:, :2].min(axis=0).astype(float), embedding[:, :2].max(axis=0).astype(float)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - pad * span, hi + pad * span
    return (lo[0], hi[0]), (lo[1], hi[1])


def map_figure(embedding: np.ndarray, colour: Colouring, *, uirevision: str, title: str | None = None,
               axes: Sequence[str] | None = None, window: Window | None = None, limit: int | None = None,
               cap: int | None = None, seed: int = 0) -> tuple[go.Figure, MapView]:
    """The map: all points when ``n <= limit``, else a 2-D density with LOD or a 3-D sample.

    ``axes``: axis titles, from :func:`axis_titles` of the projection's metadata.
    """
    limit = POINTS_LIMIT if limit is None else limit
    cap = WINDOW_POINTS_CAP if cap is None else cap
    emb = np.asarray(embedding)
    if emb.ndim != 2 or emb.shape[1] not in (2, 3):
        raise ValueError(f"embedding of shape {emb.shape} is not (N, 2) or (N, 3)")
    if len(colour.codes) != len(emb):
        raise ValueError(f"{len(colour.codes)} colour codes for {len(emb)} points")
    n, dims = len(emb), emb.shape[1]
    fig = go.Figure(layout=layout(dims, uirevision, title, axes))
    if n <= limit:
        fig.add_trace(point_trace(emb, colour))
        if dims == 3:
            fig.add_trace(highlight_trace(emb))
        return fig, MapView("points", n, n, dims)
    if dims == 3:
        # Plotly has no 3-D density trace that keeps clicks and hover; draw a fixed sample.
        sample = sample_indices(n, limit, seed)
        fig.add_trace(point_trace(emb, colour, sample, n_total=n))
        fig.add_trace(highlight_trace(emb))
        return fig, MapView("sampled", n, limit, dims)
    traces, shown = density_traces(emb, colour, window or Window(), cap=cap)
    fig.add_traces(traces)
    return fig, MapView("density", n, shown, dims)


def sample_indices(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """The same ``limit`` of ``n`` points every time (sorted), for a 3-D map too large to draw."""
    if n <= limit:
        return np.arange(n, dtype=np.int32)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False)).astype(np.int32)


def marker_json(colour: Colouring, n: int, dims: int, indices: np.ndarray | None = None) -> dict:
    """The point trace's marker as JSON, colour codes as a typed array (for a ``dash.Patch``)."""
    codes = colour.codes if indices is None else colour.codes[indices]
    props = marker(colour, n, dims, codes)
    props["color"] = typed_array(codes)
    return props


# -- density and level of detail ---------------------------------------------------------------
def in_window(xy: np.ndarray, window: Window, pad: float = 0.0) -> np.ndarray:
    """Boolean mask of the points inside the window, widened by ``pad`` × its size per side."""
    mask = np.ones(len(xy), dtype=bool)
    for axis, bounds in ((0, window.x), (1, window.y)):
        if bounds is None:
            continue
        lo, hi = sorted(bounds)
        margin = (hi - lo) * pad
        mask &= (xy[:, axis] >= lo - margin) & (xy[:, axis] <= hi + margin)
    return mask


def density_traces(embedding: np.ndarray, colour: Colouring, window: Window, *,
                   cap: int | None = None, bins: int = BINS) -> tuple[list, int]:
    """Traces of the density view for a window, and how many points they draw as points.

    Always an invisible pair of points at the full extent (so autoscale and double-click go
    back to the whole map), then either the window's points (at most ``cap``, a little past
    the window so a short pan still shows points) or a heatmap of the window's points.
    """
    cap = WINDOW_POINTS_CAP if cap is None else cap
    xy = np.asarray(embedding)[:, :2]
    (x0, x1), (y0, y1) = extent(xy)
    anchors = go.Scatter(x=[x0, x1], y=[y0, y1], mode="markers", marker=dict(opacity=0, size=1),
                         hoverinfo="skip", showlegend=False, name="extent")
    shown = window_points(xy, window, cap)
    if shown is not None:
        return [anchors, point_trace(embedding, colour, shown, n_total=cap)], len(shown)
    inside = np.flatnonzero(in_window(xy, window, 0.5))
    bx = _bounds(window.x, (x0, x1))
    by = _bounds(window.y, (y0, y1))
    n_codes = int(round(colour.cmax - colour.cmin)) if colour.categorical else LEVELS + 1
    z = binned(xy[inside], colour.codes[inside], bx, by, bins, colour.categorical, n_codes)
    heat = go.Heatmap(
        z=z, x0=bx[0] + (bx[1] - bx[0]) / bins / 2, dx=(bx[1] - bx[0]) / bins,
        y0=by[0] + (by[1] - by[0]) / bins / 2, dy=(by[1] - by[0]) / bins,
        colorscale=colour.colorscale, zmin=colour.cmin, zmax=colour.cmax, colorbar=colour.colorbar(),
        hoverinfo="skip", zsmooth=False, name="density",
    )
    return [anchors, heat], 0


def window_points(xy: np.ndarray, window: Window, cap: int | None = None) -> np.ndarray | None:
    """Frame indices the density view draws as points for a window (None: too many, a heatmap).

    The window padded by half its size on each side when that still fits under ``cap``, so a
    short pan still shows points; else the window itself.
    """
    cap = WINDOW_POINTS_CAP if cap is None else cap
    if window.x is None and window.y is None and len(xy) > cap:
        return None
    for pad in (0.5, 0.0):
        inside = np.flatnonzero(in_window(xy, window, pad))
        if len(inside) <= cap:
            return inside
    return None


def drawn_frames(embedding: np.ndarray, view: dict) -> dict[int, np.ndarray | None]:
    """For a drawn view (``{"kind", "n", "shown", "window"}``): trace number → frames it draws.

    ``None`` means every frame in order (pointNumber = frame index). Traces not listed (the
    density view's anchors and heatmap) draw no frame.
    """
    kind = view.get("kind")
    if kind == "points":
        return {0: None}
    if kind == "sampled":
        return {0: sample_indices(int(view["n"]), int(view["shown"]))}
    if kind == "density":
        shown = window_points(np.asarray(embedding)[:, :2], Window.from_dict(view.get("window")))
        return {} if shown is None else {1: shown}
    return {}


def event_frames(points: list[dict] | None, drawn: dict[int, np.ndarray | None]) -> list[int]:
    """Frame indices of an event's points (``selectedData``/``clickData``/``hoverData``), in order.

    A point that carries its own customdata (the 3-D highlight trace) names its frame; others
    are looked up by ``(curveNumber, pointNumber)`` in :func:`drawn_frames`; the rest (anchors,
    heatmap cells) are skipped.
    """
    found = []
    for point in points or []:
        value = point.get("customdata")
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            found.append(int(value))
            continue
        curve, number = point.get("curveNumber"), point.get("pointNumber", point.get("pointIndex"))
        if curve not in drawn or number is None:
            continue
        frames = drawn[curve]
        if frames is None:
            found.append(int(number))
        elif 0 <= int(number) < len(frames):
            found.append(int(frames[int(number)]))
    return found


def _bounds(bounds: tuple[float, float] | None, full: tuple[float, float], pad: float = 0.5):
    if bounds is None:
        return full
    lo, hi = sorted(bounds)
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


def binned(xy: np.ndarray, codes: np.ndarray, bx: tuple[float, float], by: tuple[float, float],
           bins: int, categorical: bool, n_codes: int) -> np.ndarray:
    """(bins, bins) float32 image: each bin's most common code (categorical) or mean code; NaN if empty."""
    ix = np.clip(((xy[:, 0] - bx[0]) / (bx[1] - bx[0]) * bins).astype(np.int64), 0, bins - 1)
    iy = np.clip(((xy[:, 1] - by[0]) / (by[1] - by[0]) * bins).astype(np.int64), 0, bins - 1)
    flat = iy * bins + ix  # row = y bin, as a heatmap's z is indexed
    counts = np.bincount(flat, minlength=bins * bins)
    z = np.full(bins * bins, np.nan, dtype=np.float32)
    if len(flat) == 0:
        return z.reshape(bins, bins)
    if categorical:
        keys = flat * n_codes + codes.astype(np.int64)
        if bins * bins * n_codes <= 20_000_000:  # dense counts table, ≤ 160 MB of int64 at worst
            per = np.bincount(keys, minlength=bins * bins * n_codes).reshape(bins * bins, n_codes)
            z = np.where(counts > 0, per.argmax(axis=1), np.nan).astype(np.float32)
        else:  # many clusters: count (bin, code) pairs that occur, keep each bin's largest
            pairs, n = np.unique(keys, return_counts=True)
            b, c = pairs // n_codes, pairs % n_codes
            order = np.lexsort((n, b))
            b, c = b[order], c[order]
            last = np.r_[b[1:] != b[:-1], True]
            z[b[last]] = c[last]
    else:  # mean code of the bin's points with a value (code LEVELS = missing)
        valid = codes < LEVELS
        counts = np.bincount(flat[valid], minlength=bins * bins)
        sums = np.bincount(flat[valid], weights=codes[valid].astype(np.float64), minlength=bins * bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(counts > 0, sums / counts, np.nan).astype(np.float32)
    return z.reshape(bins, bins)


def window_from_relayout(relayout: dict | None, window: Window) -> Window | None:
    """The new visible window after a ``relayoutData`` event, or None when the axes did not move.

    Zoom and pan give ``xaxis.range[0]`` … or ``xaxis.range``; autoscale gives
    ``xaxis.autorange``; drawing a selection gives ``selections`` (not a move).
    """
    if not relayout:
        return None
    new = {"x": window.x, "y": window.y}
    moved = False
    for axis in ("x", "y"):
        key = f"{axis}axis"
        if relayout.get(f"{key}.autorange"):
            new[axis], moved = None, True
        elif f"{key}.range[0]" in relayout and f"{key}.range[1]" in relayout:
            new[axis] = (float(relayout[f"{key}.range[0]"]), float(relayout[f"{key}.range[1]"]))
            moved = True
        elif isinstance(relayout.get(f"{key}.range"), (list, tuple)):
            lo, hi = relayout[f"{key}.range"]
            new[axis], moved = (float(lo), float(hi)), True
    return Window(new["x"], new["y"]) if moved else None


# -- selection ---------------------------------------------------------------------------------
def selection_kind(selected: dict) -> str:
    return "lasso" if selected.get("lassoPoints") else "box" if selected.get("range") else "click"


def indices_in_shape(selected: dict, embedding: np.ndarray) -> list[int]:
    """Every point inside the event's lasso polygon or box, whether drawn or not (density view)."""
    xy = np.asarray(embedding)[:, :2]
    if selected.get("lassoPoints"):
        lasso = selected["lassoPoints"]
        polygon = np.column_stack([np.asarray(lasso["x"], float), np.asarray(lasso["y"], float)])
        return np.flatnonzero(points_in_polygon(xy, polygon)).tolist()
    if selected.get("range"):
        (xa, xb), (ya, yb) = sorted(selected["range"]["x"]), sorted(selected["range"]["y"])
        mask = (xy[:, 0] >= xa) & (xy[:, 0] <= xb) & (xy[:, 1] >= ya) & (xy[:, 1] <= yb)
        return np.flatnonzero(mask).tolist()
    return []


def parse_selection(selected: dict | None, drawn: dict[int, np.ndarray | None],
                    embedding: np.ndarray | None = None) -> dict | None:
    """``selectedData`` → the page's SELECTION value ``{"indices": [...], "how": ...}``.

    With ``embedding`` (the density view, where only some points are drawn) the lasso or box is
    applied to every point; otherwise the selected points are mapped to frames through
    ``drawn`` (see :func:`drawn_frames`). None when nothing is selected (a double-click).
    """
    if not selected:
        return None
    if embedding is not None and (selected.get("lassoPoints") or selected.get("range")):
        indices = indices_in_shape(selected, embedding)
    else:
        indices = sorted(set(event_frames(selected.get("points"), drawn)))
    return {"indices": indices, "how": selection_kind(selected)}


def points_in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule (as plotly.js uses) for many points: boolean mask of shape (N,).

    Only points inside the polygon's bounding box are tested, edge by edge, so a lasso of a
    tenth of a million-point map costs ~20 ms.
    """
    xy = np.asarray(xy, dtype=np.float64)
    poly = np.asarray(polygon, dtype=np.float64)
    mask = np.zeros(len(xy), dtype=bool)
    if len(poly) < 3:
        return mask
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    box = np.flatnonzero((xy[:, 0] >= lo[0]) & (xy[:, 0] <= hi[0]) & (xy[:, 1] >= lo[1]) & (xy[:, 1] <= hi[1]))
    x, y = xy[box, 0], xy[box, 1]
    inside = np.zeros(len(box), dtype=bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        if yi != yj:
            crosses = (yi > y) != (yj > y)
            x_cross = (xj - xi) * (y - yi) / (yj - yi) + xi
            inside ^= crosses & (x < x_cross)
        xj, yj = xi, yi
    mask[box] = inside
    return mask


def parse_svg_path(path: str) -> np.ndarray:
    """Vertices of a plotly selection path such as ``M1,2L3,4L5,6Z`` as an (M, 2) array."""
    body = path.strip().lstrip("M").rstrip("Z")
    return np.array([[float(v) for v in part.split(",")] for part in body.split("L") if part], dtype=np.float64)
