"""Inspect panel: what the map's selection holds, and the latent neighbours of a clicked frame.

Reads the page-level ``SELECTION``, ``CURRENT`` and ``CLICKED`` stores (``components.ids``) and
shows the selection's count and cluster composition, its pixel-wise mean and standard deviation
images, a paged gallery of its frames, the nearest neighbours in latent space of the clicked
frame, and CSV / NPY exports. (Making those neighbours the selection, the way to select in a 3-D
map, is the map panel's "select k nearest".)

A selection can hold live points too (``"live": {"session", "rows"}``, see
``components.map_panel``): their count, composition (the session table's ``cluster`` column),
mean/std images and gallery come from the frames the live session stored. Each part of the
selection is a :class:`FrameSource`; the views show every part, the map's first, each with its
own count and, when live points are in, its own titled mean/std images.

The views are plain functions of ``(store, selection, current, ...)`` returning Dash components,
so they run in a unit test without a browser; the callbacks only route and turn exceptions into
an alert in the panel, so a Tiled failure never breaks the page. The numbers come from
``core.maps.selection``.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
from dash import MATCH, Input, Output, State, ctx, dcc, html, no_update

from components.errors import with_store
from components.ids import CLICKED, CURRENT, SELECTION, part_ids
from components.intensity import intensity_scale
from components.map_data import cluster_name, latent_means, load_map, map_id
from components.pictures import hint, thumbnail
from components.records import Clicked, MapRef, Selection, selected_indices, selected_live
from components.services import Callbacks, Services
from components.words import noun_for
from core.data.reader import ResultStore
from core.live.session import LiveSession
from core.maps.selection import (
    NOISE,
    export_csv,
    export_latents_npy,
    mean_std_images,
    nearest_neighbours,
    read_images,
    selection_summary,
    to_png_data_uri,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 24  # thumbnails per gallery page: one screenful in a 4-column panel
STATS_CAP = 5000  # frames averaged at most; more are sampled (core.maps.selection.mean_std_images)
N_NEIGHBOURS = 12  # neighbours of a clicked frame shown (the map panel selects any k of them)
STATS_PX = 256  # mean/std PNGs are shrunk to at most this
HINT = "Lasso a region of the map (or box-select it) to see its frames here."


# -- data of the map shown (components.map_data caches it) ------------------------------------
def map_array(store: ResultStore, current: MapRef, what: str) -> np.ndarray:
    """``labels``, ``embedding`` or ``mu`` of the map in ``current``."""
    if what == "mu":
        return latent_means(store, current["latents_id"])
    return getattr(load_map(store, current), what)


def frames_table(store: ResultStore, current: MapRef):
    frames = load_map(store, current).frames
    if frames is None:
        raise ValueError(f"dataset {current['dataset_id']} has no usable frames table")
    return frames


# -- where a selection's frames come from: the map's dataset, a live session ----------------------
class SessionImages:
    """A live session's stored images, where :mod:`core.maps.selection` reads a dataset's.

    core.maps.selection reads ``store.node("datasets", id)["images"]``; this answers with the
    session's ``images`` array, so the same windowed reads and statistics serve live frames.
    """

    def __init__(self, session: LiveSession):
        self.session = session

    def node(self, kind: str, id: str) -> dict:
        return {"images": self.session.images}


@dataclass(frozen=True)
class FrameSource:
    """The selected items of one image source; the views below work the same on either kind.

    ``labels`` is the cluster of every item the source holds (the map's frames, or a live
    session's stored points); ``selected`` the chosen items as positions in ``labels``; ``rows``
    where each one's image is, read through ``images`` (a Store, or :class:`SessionImages`) under
    ``dataset_id``. On the map, positions, rows and frame numbers are all the frame index.
    """

    kind: str  # "map" or "live"
    images: Any
    dataset_id: str
    labels: np.ndarray
    selected: np.ndarray  # (k,) positions in labels, sorted, unique
    rows: np.ndarray  # (k,) image row of each selected item
    frames: np.ndarray  # (k,) frame number shown for each selected item
    patches: np.ndarray  # (k,) patch of that frame, -1 when frames are not cut into patches
    missing: int = 0  # selected live points not in the session's table (yet)
    clustered: bool = True  # False: a map without clustering, whose labels say nothing

    @property
    def css(self) -> str:
        """Class prefix of this source's elements: ``ms-mean`` on the map, ``ms-live-mean`` live."""
        return "ms" if self.kind == "map" else "ms-live"

    @property
    def title(self) -> str:
        return "Map frames" if self.kind == "map" else f"Live frames of {self.dataset_id}"

    def caption(self, k: int) -> tuple[str, str]:
        """(caption, title) of selected item k: ``#12 · c0`` on the map, ``live 7.3 · c0`` (frame 7,
        patch 3) live."""
        label, frame, patch = int(self.labels[self.selected[k]]), int(self.frames[k]), int(self.patches[k])
        short = "" if not self.clustered else " · noise" if label == -1 else f" · c{label}"
        name = cluster_name(label, self.clustered)
        if self.kind == "map":
            return f"#{frame}{short}", f"frame {frame}, {name}"
        part = (f".{patch}", f" patch {patch}") if patch >= 0 else ("", "")
        return f"live {frame}{part[0]}{short}", f"live frame {frame}{part[1]}, {name}"


def map_source(store: ResultStore, selection: Selection | None, current: MapRef | None) -> FrameSource | None:
    """The selection's frames of the map shown (None when it has none)."""
    indices = selected_indices(selection)
    if not current or not indices:
        return None
    chosen = np.unique(np.asarray(indices, dtype=np.int64))
    return FrameSource("map", store, current["dataset_id"], map_array(store, current, "labels"),
                       chosen, chosen, chosen, np.full(len(chosen), -1),
                       clustered=bool(current.get("clustering_id")))


def live_source(store: ResultStore, selection: Selection | None) -> FrameSource | None:
    """The selection's live points, found in their session's table by ``row`` (None: none).

    Points the browser has but the table not yet (the websocket can be a moment ahead of Tiled)
    are counted in ``missing``.
    """
    live = selected_live(selection)
    rows = np.unique(np.asarray(live.get("rows") or [], dtype=np.int64))
    if not live.get("session") or not len(rows):
        return None
    session = LiveSession.kept(store, live["session"])  # looked up for the lasso already
    table = session.columns("points", ["row", "cluster", "index", "patch"])
    stored = table["row"] >= 0
    # by row, each once (a twice-written append)
    rows_stored, first = np.unique(table["row"][stored], return_index=True)
    cluster, index, patch = (table[name][stored][first].astype(np.int64) for name in ("cluster", "index", "patch"))
    found = np.isin(rows, rows_stored)
    positions = np.searchsorted(rows_stored, rows[found])
    return FrameSource("live", SessionImages(session), session.id, cluster, positions, rows[found],
                       index[positions], patch[positions], missing=int((~found).sum()))


def frame_sources(store: ResultStore, selection: Selection | None, current: MapRef | None) -> list[FrameSource]:
    """The map's part of the selection, then its live part; either may be absent."""
    return [source for source in (map_source(store, selection, current), live_source(store, selection))
            if source is not None]


# -- views: plain functions, testable without a browser ------------------------------------------
def summary_block(source: FrameSource, how: str | None) -> html.Div:
    """One source's count line and cluster composition table."""
    summary = selection_summary(source.selected, source.labels)
    if source.kind == "map":
        what, of = "frame", f"{summary['n_total']:,}"
    else:
        what, of = "live frame", f"{summary['n_total']:,} stored in {source.dataset_id}"
    share = f"{summary['fraction']:.1%} of {of}" if summary["fraction"] is not None else f"of {of}"
    line = html.Div([
        html.Span(f"{summary['count']:,}", className=f"fs-5 fw-bold {source.css}-count"),
        html.Span(f" {noun_for(summary['count'], what)} selected ({share})" + (f" · {how}" if how else "")
                  + (f" · {source.missing:,} more not stored yet: select again in a moment"
                     if source.missing else ""), className="small"),
    ])
    rows = [
        html.Tr([
            html.Td(cluster_name(label, source.clustered), className="py-0"),
            html.Td(f"{count:,}", className="py-0 text-end"),
            html.Td(html.Div(style={"width": f"{100 * count / summary['count']:.1f}%", "height": "0.6rem",
                                    "background": "#adb5bd" if label == NOISE else "#0d6efd"}),
                    className="py-0 align-middle", style={"width": "50%"}),
        ]) for label, count in summary["clusters"].items()
    ]
    table = dbc.Table(html.Tbody(rows), size="sm", borderless=True,
                      className=f"small mb-1 {source.css}-composition")
    return html.Div([line, table])


def summary_view(store: ResultStore, selection: Selection | None, current: MapRef | None) -> tuple[Any, bool]:
    """A count line and composition table per source; and whether the exports are disabled.

    Exports cover the map's frames only (the live ones are in their session's Tiled node).
    """
    sources = frame_sources(store, selection, current)
    if not sources:
        return hint(HINT), True
    how = (selection or {}).get("how")
    blocks = [summary_block(source, how) for source in sources]
    if sources[-1].kind == "live":
        blocks.append(html.Div("The exports below hold the map's frames only.", className="small text-muted"))
    return html.Div(blocks), sources[0].kind != "map"


def stats_block(source: FrameSource, cap: int, titled: bool) -> list:
    """Mean and standard-deviation images of one source, with a note when the frames were sampled."""
    started = time.perf_counter()
    mean, std, info = mean_std_images(source.images, source.dataset_id, source.rows, cap=cap)
    seconds = time.perf_counter() - started
    top = float(std.max())
    images = dbc.Row([
        dbc.Col(html.Figure([
            html.Img(src=to_png_data_uri(mean, max_size=STATS_PX), className=f"{source.css}-mean w-100",
                     style={"imageRendering": "pixelated"}, title="pixel-wise mean, 0 = black, 1 = white"),
            html.Figcaption("mean", className="small text-center"),
            intensity_scale(0.0, 1.0, class_name=f"{source.css}-mean-scale"),
        ])),
        dbc.Col(html.Figure([
            html.Img(src=to_png_data_uri(std, vmin=0.0, vmax=None, max_size=STATS_PX),
                     className=f"{source.css}-std w-100",
                     style={"imageRendering": "pixelated"}, title=f"population std, white = {top:.3g}"),
            html.Figcaption("std", className="small text-center"),
            intensity_scale(0.0, top, "std of intensity", class_name=f"{source.css}-std-scale"),
        ])),
    ], className="g-2")
    if info["sampled"]:
        note = dbc.Alert(f"Sampled: mean and std of {info['n_used']:,} frames drawn at random from the "
                         f"{info['n_selected']:,} selected (cap {cap:,}).", color="info",
                         className=f"small py-1 my-1 {source.css}-sampled")
    else:
        note = None
    timing = html.Div(f"{info['n_used']:,} frames read in {info['n_requests']} request(s), {seconds:.2f} s",
                      className="text-muted", style={"fontSize": "0.7rem"})
    heading = html.Div(source.title, className="small fw-bold mt-1") if titled else None
    return [heading, images, note, timing]


def stats_view(store: ResultStore, selection: Selection | None, current: MapRef | None, *, cap: int = STATS_CAP) -> Any:
    """Mean and std images of each source's selected frames, titled when they are not the map's alone."""
    sources = [s for s in frame_sources(store, selection, current) if len(s.selected)]
    titled = any(source.kind == "live" for source in sources)
    return [part for source in sources for part in stats_block(source, cap, titled)]


def n_pages(selection: Selection | None) -> int:
    count = len(set(selected_indices(selection))) + len(set(selected_live(selection).get("rows") or []))
    return max(1, -(-count // PAGE_SIZE))


def gallery_view(store: ResultStore, selection: Selection | None, current: MapRef | None, page: int) -> Any:
    """Thumbnails of one page of the selection: the map's frames in index order, then live ones
    in arrival order, captioned name · cluster (see :meth:`FrameSource.caption`)."""
    sources = frame_sources(store, selection, current)
    items = [(source, k) for source in sources for k in range(len(source.selected))]
    if not items:
        return hint(HINT)
    page = min(max(1, int(page or 1)), -(-len(items) // PAGE_SIZE))
    first = (page - 1) * PAGE_SIZE
    shown = items[first: first + PAGE_SIZE]
    tiles = []
    for source in sources:
        ks = [k for s, k in shown if s is source]
        if ks:
            frames = read_images(source.images, source.dataset_id, source.rows[ks])
            for k, frame in zip(ks, frames):
                caption, title = source.caption(k)
                tiles.append(thumbnail(frame, caption, title=title))
    return [html.Div(tiles, className="ms-gallery"),
            html.Div(f"frames {first + 1}–{first + len(shown)} of {len(items):,}",
                     className="small text-muted ms-gallery-range"),
            intensity_scale(0.0, 1.0, class_name="ms-gallery-scale")]


def neighbours_view(store: ResultStore, clicked: Clicked | None, current: MapRef | None, k: int = N_NEIGHBOURS) -> Any:
    """The clicked frame and its k nearest neighbours in latent space, captioned index · distance."""
    if not current or not clicked or clicked.get("index") is None:
        return hint("Click a point of the map to see its nearest neighbours in latent space.")
    index = int(clicked["index"])
    mu = map_array(store, current, "mu")
    neighbours, distances = nearest_neighbours(mu, index, min(k, len(mu) - 1))
    frames = read_images(store, current["dataset_id"], [index, *neighbours.tolist()])
    tiles = [thumbnail(frames[0], f"#{index} clicked")] + [
        thumbnail(frame, f"#{i} · {d:.2f}", title=f"frame {i}, latent distance {d:.3f}")
        for i, d, frame in zip(neighbours.tolist(), distances, frames[1:])
    ]
    note = html.Div(f"Frame {index} and its {len(neighbours)} nearest frames in latent space (Euclidean "
                    "distance of the latent means).", className="small text-muted")
    return [note, html.Div(tiles, className="ms-gallery ms-neighbours"),
            intensity_scale(0.0, 1.0, class_name="ms-neighbours-scale")]


def export_file(store: ResultStore, selection: Selection | None, current: MapRef | None, what: str) -> dict:
    """``dcc.send_string`` / ``dcc.send_bytes`` payload of the selection as CSV or latents NPY."""
    indices = selected_indices(selection)
    if not current:
        raise ValueError("No map is shown: choose one in the sidebar first.")
    stem = f"selection-{map_id(current)}-{len(indices)}"
    if what == "csv":
        text = export_csv(frames_table(store, current), indices, map_array(store, current, "labels"),
                          map_array(store, current, "embedding"))
        return dcc.send_string(text, f"{stem}.csv", type="text/csv")
    data = export_latents_npy(map_array(store, current, "mu"), indices)
    return dcc.send_bytes(data, f"{stem}-latents.npy", type="application/octet-stream")


# -- the component -------------------------------------------------------------------------------
_id = part_ids("InspectAIO")


class InspectAIO(html.Div):
    class ids:
        summary = _id("summary")
        stats = _id("stats")
        tabs = _id("tabs")
        gallery = _id("gallery")
        pages = _id("pages")
        neighbours = _id("neighbours")
        export_csv = _id("export-csv")
        export_npy = _id("export-npy")
        download_csv = _id("download-csv")
        download_npy = _id("download-npy")
        export_message = _id("export-message")

    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        ids = self.ids
        exports = html.Div([
            dbc.Button("Export CSV", id=ids.export_csv(aio_id), size="sm", color="secondary", outline=True,
                       disabled=True, className="me-2", title="indices, clusters, map coordinates, frame metadata"),
            dbc.Button("Export latents (NPY)", id=ids.export_npy(aio_id), size="sm", color="secondary",
                       outline=True, disabled=True, title="latent means of the selected frames, (n, d) float32"),
            dcc.Download(id=ids.download_csv(aio_id)), dcc.Download(id=ids.download_npy(aio_id)),
            dcc.Loading(html.Div(id=ids.export_message(aio_id)), type="dot"),
        ], className="my-2")
        gallery = [
            dcc.Loading(html.Div(id=ids.gallery(aio_id), className="mt-2"), type="circle"),
            dbc.Pagination(id=ids.pages(aio_id), max_value=1, active_page=1, previous_next=True,
                           fully_expanded=False, size="sm", className="mt-1 ms-pages"),
        ]
        neighbours = dcc.Loading(html.Div(hint("Click a point of the map to see its nearest neighbours "
                                               "in latent space."), id=ids.neighbours(aio_id),
                                          className="mt-2"), type="circle")
        super().__init__([
            html.H6("Selection", className="mt-2"),
            dcc.Loading(html.Div(hint(HINT), id=ids.summary(aio_id)), type="dot"),
            exports,
            dbc.Tabs([
                dbc.Tab(dcc.Loading(html.Div(id=ids.stats(aio_id), className="mt-2"), type="circle"),
                        label="Mean / std", tab_id="stats"),
                dbc.Tab(gallery, label="Gallery", tab_id="gallery"),
                dbc.Tab(neighbours, label="Neighbours", tab_id="neighbours"),
            ], id=ids.tabs(aio_id), active_tab="stats"),
        ], className="ms-inspect")


# -- callbacks: route, call a view, show failures in the panel ------------------------------------
callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)


@callbacks.callback(
    Output(InspectAIO.ids.summary(MATCH), "children"),
    Output(InspectAIO.ids.export_csv(MATCH), "disabled"),
    Output(InspectAIO.ids.export_npy(MATCH), "disabled"),
    Input(SELECTION, "data"),
    Input(CURRENT, "data"),
)
def _summary(services: Services, selection: Selection | None, current: MapRef | None):
    result, error = with_store(services, "count the selection", summary_view, selection, current)
    if error is not None:
        return error, True, True
    view, disabled = result
    return view, disabled, disabled


@callbacks.callback(Output(InspectAIO.ids.stats(MATCH), "children"),
                    Input(SELECTION, "data"), Input(CURRENT, "data"))
def _stats(services: Services, selection: Selection | None, current: MapRef | None):
    view, error = with_store(services, "compute the mean and std images", stats_view, selection, current)
    return error or view


@callbacks.callback(
    Output(InspectAIO.ids.gallery(MATCH), "children"),
    Output(InspectAIO.ids.pages(MATCH), "max_value"),
    Output(InspectAIO.ids.pages(MATCH), "active_page"),
    Input(SELECTION, "data"),
    Input(CURRENT, "data"),
    Input(InspectAIO.ids.pages(MATCH), "active_page"),
    Input(InspectAIO.ids.tabs(MATCH), "active_tab"),
)
def _gallery(services: Services, selection: Selection | None, current: MapRef | None, page, tab):
    new_selection = ctx.triggered_id in (SELECTION, CURRENT)
    page = 1 if new_selection or not page else page
    if tab != "gallery":  # read frames only when the gallery is open
        return ([] if new_selection else no_update), n_pages(selection), page
    view, error = with_store(services, "show the gallery", gallery_view, selection, current, page)
    return error or view, n_pages(selection), page


@callbacks.callback(Output(InspectAIO.ids.neighbours(MATCH), "children"),
                    Input(CLICKED, "data"), Input(CURRENT, "data"))
def _neighbours(services: Services, clicked: Clicked | None, current: MapRef | None):
    view, error = with_store(services, "find the nearest neighbours", neighbours_view, clicked, current)
    return error or view


@callbacks.callback(
    Output(InspectAIO.ids.download_csv(MATCH), "data"),
    Output(InspectAIO.ids.download_npy(MATCH), "data"),
    Output(InspectAIO.ids.export_message(MATCH), "children"),
    Input(InspectAIO.ids.export_csv(MATCH), "n_clicks"),
    Input(InspectAIO.ids.export_npy(MATCH), "n_clicks"),
    State(SELECTION, "data"),
    State(CURRENT, "data"),
    prevent_initial_call=True,
)
def _export(services: Services, _csv_clicks, _npy_clicks, selection: Selection | None, current: MapRef | None):
    what = "csv" if ctx.triggered_id == InspectAIO.ids.export_csv(ctx.triggered_id["aio_id"]) else "npy"
    payload, error = with_store(services, f"export the selection as {what.upper()}", export_file,
                                selection, current, what)
    if error is not None:
        return no_update, no_update, error
    return (payload, no_update, None) if what == "csv" else (no_update, payload, None)

