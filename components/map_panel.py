"""Map panel: the latent map of the chosen clustering, its colouring, hover cards and selection.

Reads the page store ``CURRENT`` (which map), draws it with ``components.map_figure`` and
publishes ``SELECTION`` (lasso, box, k nearest neighbours) and ``CLICKED``.

Live points (the traces ``assets/live.js`` adds) are told apart by their ids,
``live:<session>:<row>``: a lasso over them adds ``"live": {"session", "rows"}`` to the selection
(rows of the session's stored images), beside ``indices``, which stay the map's own frames. The
page draws only the newest live points as points and folds older ones into a density, so a lasso
or box also takes every live point the page shows (``LIVE_SHOWN``) inside its shape from the
session's table.

Dash refuses a ``MATCH`` callback that writes a plain string id, so the panel writes its own
``selection``/``clicked`` stores and two tiny client-side callbacks (``ALL`` inputs, no server
round trip) forward whichever panel instance changed to the page stores.

Every callback is a thin wrapper over a plain function that takes the store as an argument, so
the logic can be tested without a browser and with any object that quacks like ``core.data.store.Store``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import MATCH, Input, Output, Patch, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from components import map_figure as mf
from components.errors import problem, with_store
from components.ids import CLICKED, CURRENT, LIVE_SHOWN, SELECTION, part_ids
from components.map_data import cache_key, cluster_name, latent_means, load_map, map_id, thumbnails
from components.records import Clicked, LiveRows, LiveShown, MapRef, Selection
from components.services import Callbacks, Services
from components.words import plural
from core.data.reader import ResultStore
from core.maps.selection import nearest_neighbours, to_png_data_uri
from core.data.results.datasets import read_images
from core.live.session import LiveSession

log = logging.getLogger(__name__)

K_RANGE = (1, 5000)  # nearest-neighbour selection: more than a few thousand is a lasso's job
THUMB_PX = 96  # hover thumbnail's longest side
HOVER_COLUMNS = 8  # frames-table columns shown on hover
HIGHLIGHT_CAP = 50_000  # at most this many selected points are marked on the map by the panel
LIVE_POINT = re.compile(r"live:([A-Za-z0-9_-]+):(-?\d+)")  # its id from assets/live.js (-1: no image)


# -- drawing -----------------------------------------------------------------------------------
def empty_figure(text: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template="simple_white", xaxis_visible=False, yaxis_visible=False,
                      margin=dict(l=10, r=10, t=10, b=10),
                      annotations=[dict(text=text, showarrow=False, x=0.5, y=0.5, xref="paper",
                                        yref="paper", font=dict(size=14, color="#666"))])
    return fig


def view_of(current: MapRef, view: mf.MapView, colour: str, window: mf.Window | None = None) -> dict:
    """The panel's view store: which map is drawn and how (read by the other callbacks)."""
    return {"key": map_id(current), "kind": view.kind, "n": view.n, "shown": view.shown,
            "dims": view.dims, "colour": colour, "window": (window or mf.Window()).to_dict(),
            "highlight": False}


def draw(store: ResultStore, current: MapRef | None, colour: str | None):
    """A whole new map: (figure, colour options, colour value, view, error)."""
    if not current:
        return (empty_figure("No map yet: choose or build one"), mf.colour_options(None),
                mf.COLOUR_CLUSTER, None, None)
    data = load_map(store, current)
    options = mf.colour_options(data.frames)
    if colour not in {o["value"] for o in options}:
        colour = mf.COLOUR_CLUSTER
    colouring = mf.colouring(colour, data.labels, data.frames, clustered=data.clustered)
    fig, view = mf.map_figure(data.embedding, colouring, uirevision=map_id(current),
                              axes=mf.axis_titles(data.projector, data.dims))
    # A click picks a frame (for "select k nearest") and never replaces a lasso: with Plotly's
    # "event+select" it silently swapped a lasso's frames for one while its outline stayed drawn.
    fig.update_layout(clickmode="event")
    note = dbc.Alert(data.note, color="warning", className="py-1 small mb-2") if data.note else None
    return fig, options, colour, view_of(current, view, colour), note


def recolour(store: ResultStore, current: MapRef, colour: str, view: dict) -> tuple[Patch, Patch]:
    """A Patch of the drawn map's colours only (the points stay where they are): (figure, view)."""
    data = load_map(store, current)
    colouring = mf.colouring(colour, data.labels, data.frames, clustered=data.clustered)
    fig = Patch()
    if view["kind"] == "density":
        window = mf.Window.from_dict(view["window"])
        traces, _ = mf.density_traces(data.embedding, colouring, window)
        fig["data"] = traces
    else:
        indices = mf.sample_indices(data.n, mf.POINTS_LIMIT) if view["kind"] == "sampled" else None
        fig["data"][0]["marker"] = mf.marker_json(colouring, data.n, data.dims, indices)
    new_view = Patch()
    new_view["colour"] = colour
    return fig, new_view


def rewindow(store: ResultStore, current: MapRef, relayout: dict | None, view: dict | None):
    """After zoom or pan in the density view, the visible window's points or density: (figure, view)."""
    if not view or view.get("kind") != "density" or view.get("key") != map_id(current):
        return None
    window = mf.window_from_relayout(relayout, mf.Window.from_dict(view["window"]))
    if window is None:
        return None
    data = load_map(store, current)
    colouring = mf.colouring(view["colour"], data.labels, data.frames, clustered=data.clustered)
    traces, shown = mf.density_traces(data.embedding, colouring, window)
    fig = Patch()
    fig["data"] = traces
    new_view = Patch()
    new_view["window"], new_view["shown"] = window.to_dict(), shown
    return fig, new_view


def update_map(get_store: Callable[[], ResultStore], triggers: set[str], current: MapRef | None,
               colour: str | None, relayout: dict | None, view: dict | None):
    """What the map callback returns, or None for no update.

    Decided by the state, not by what triggered it: the browser drops an earlier request's
    answer when the same callback is triggered again (a resize while the map is on its way),
    so every call must bring the page to the map, the colouring and the window asked for.
    ``triggers`` (``"current"``, ``"colour"``, ``"graph"``) only says whether a zoom or pan
    happened (``"graph"``), which is the one change the view store cannot tell.
    Outputs: (figure, colour options, colour value, view, error, panel selection). A map not yet
    drawn is drawn (and the selection cleared); a colouring or a zoom patches the drawn figure;
    the same map sent again changes nothing. A failure shows an alert and leaves the page working:
    a map that cannot be read is replaced by an empty one, a colouring that fails leaves the map
    as it was.
    """
    same_map = bool(current and view and view.get("key") == map_id(current))
    if same_map:
        try:
            if colour != view.get("colour"):
                fig, new_view = recolour(get_store(), current, colour, view)
                return fig, no_update, no_update, new_view, None, no_update
            if "graph" in triggers:  # zoom or pan: only the density view redraws
                changed = rewindow(get_store(), current, relayout, view)
                if changed is not None:
                    return changed[0], no_update, no_update, changed[1], no_update, no_update
        except Exception as exc:
            log.exception("map %s could not be redrawn", map_id(current))
            return (no_update, no_update, no_update, no_update,
                    problem("redraw the map", exc), no_update)
        return None
    try:
        fig, options, colour, new_view, error = draw(get_store(), current, colour)
        return fig, options, colour, new_view, error, None
    except Exception as exc:
        log.exception("map %s could not be drawn", map_id(current))
        return (empty_figure("The map could not be loaded"), no_update, no_update, None,
                problem(f"show map {map_id(current)}", exc), None)


# -- selection ---------------------------------------------------------------------------------
def drawn(store: ResultStore, current: MapRef | None, view: dict | None) -> dict:
    """Trace number → frames it draws, for the view the browser shows (see map_figure.drawn_frames)."""
    if not current or not view or view.get("key") != map_id(current):
        return {}
    if view["kind"] == "points":  # no need to read the map
        return {0: None}
    return mf.drawn_frames(load_map(store, current).embedding, view)


def split_live(points: list[dict] | None) -> tuple[list[dict], dict | None]:
    """An event's points of the map itself, and its live points as ``{"session", "rows"}`` (or None).

    Live points must not reach :func:`components.map_figure.event_frames`, which would take their
    customdata for frames of the map.
    """
    own, rows, sessions = [], set(), set()
    for point in points or []:
        found = LIVE_POINT.fullmatch(str(point.get("id", "")))
        if found is None:
            own.append(point)
        else:
            sessions.add(found[1])
            rows.add(int(found[2]))
    if len(sessions) > 1:
        raise ValueError(f"the selection holds points of {len(sessions)} live sessions "
                         f"({', '.join(sorted(sessions))}); switch Live off and on, then select again")
    return own, ({"session": sessions.pop(), "rows": sorted(rows)} if sessions else None)


def live_in_shape(store: ResultStore, selected: dict, shown: LiveShown | None) -> LiveRows | None:
    """Every live point the page shows inside the event's lasso or box, folded ones included.

    The page holds a session's points in arrival order, which is the table's order by
    (``batch``, ``row``); it shows the first ``upto`` of them (all, or up to where it is scrubbed).
    """
    if not shown or not shown.get("session") or not (selected.get("lassoPoints") or selected.get("range")):
        return None
    # Only the columns needed: an hour's session holds ~10^5 rows, and the answer must come in 1 s.
    table = pd.DataFrame(LiveSession.kept(store, shown["session"]).columns("points", ["batch", "row", "x", "y"]))
    table = table.sort_values(["batch", "row"], kind="stable").iloc[: int(shown["upto"])]
    table = table[table["row"] >= 0]  # a point with no stored image cannot be inspected
    inside = mf.indices_in_shape(selected, table[["x", "y"]].to_numpy(np.float64))
    return {"session": shown["session"], "rows": sorted(set(table["row"].to_numpy(np.int64)[inside].tolist()))}


def selection_from(store: ResultStore, current: MapRef | None, selected: dict | None,
                   view: dict | None, shown: LiveShown | None = None) -> Selection | None:
    """The SELECTION value for a ``selectedData`` event (every point in the shape in density view,
    and every live point the page shows in it, see :func:`live_in_shape`)."""
    if not current or not view:
        return None
    own, live = split_live((selected or {}).get("points"))
    embedding = load_map(store, current).embedding if view.get("kind") == "density" else None
    selection = mf.parse_selection(selected and {**selected, "points": own},
                                   drawn(store, current, view), embedding)
    folded = live_in_shape(store, selected, shown) if selection is not None else None
    if folded is not None and (live is None or live["session"] == folded["session"]):
        live = {"session": folded["session"], "rows": sorted(set(folded["rows"]) | set((live or {}).get("rows", [])))}
    if selection is not None and live is not None and live["rows"]:
        selection["live"] = live
    return selection


def event_frame(store: ResultStore, current: MapRef | None, event: dict | None, view: dict | None) -> int | None:
    """The frame under a click or hover event, or None (a live point, a heatmap cell, nothing drawn)."""
    points, _ = split_live(((event or {}).get("points") or [])[:1])
    found = mf.event_frames(points, drawn(store, current, view))
    return found[0] if found else None


def click_message(index: int, selection: Selection | None) -> str:
    """What a click did: it picked a frame; a selection made before stays as it was."""
    text = f"Frame {index} clicked: “select k nearest” selects its neighbours."
    kept = len((selection or {}).get("indices") or [])
    if kept:
        text += (f" The {plural(kept, 'frame')} selected before {'stays' if kept == 1 else 'stay'} selected: "
                 "a click adds nothing to a selection (double-click the map to clear it).")
    return text


def check_k(k: Any, n: int) -> int:
    lo, hi = K_RANGE
    try:
        value = float(k)
    except (TypeError, ValueError):
        raise ValueError(f"k={k!r} must be a whole number between {lo} and {hi}") from None
    k_int = int(value) if value.is_integer() else None
    if k_int is None or not lo <= k_int <= hi:
        raise ValueError(f"k={k!r} must be a whole number between {lo} and {hi}")
    if k_int > n:
        raise ValueError(f"k={k_int} is more than the {n} frames of this map; choose k ≤ {n}")
    return k_int


def nearest_frames(store: ResultStore, latents_id: str, index: int, k: int) -> list[int]:
    """The k frames nearest to frame ``index`` in latent space (mu), itself first."""
    mu = latent_means(store, latents_id)
    k = check_k(k, len(mu))
    if not 0 <= index < len(mu):
        raise ValueError(f"frame {index} is not in this map's {len(mu)} frames")
    found = nearest_neighbours(mu, index, k - 1)[0].tolist() if k > 1 else []
    return [index, *found]


def neighbour_selection(store: ResultStore, current: MapRef | None, clicked: Clicked | None,
                        k: Any) -> tuple[Selection, str]:
    """(SELECTION value, message) for "select k nearest"; ValueError with the reason otherwise."""
    if not current:
        raise ValueError("No map is shown yet.")
    check_k(k, K_RANGE[1])  # a bad k is named before anything else
    if not clicked or clicked.get("index") is None:
        raise ValueError("Click a frame on the map first, then select its nearest neighbours.")
    index = int(clicked["index"])
    found = nearest_frames(store, current["latents_id"], index, k)
    message = (f"Selected the {plural(len(found), 'frame')} nearest to frame {index} in latent space "
               "(itself included).")
    return {"indices": found, "how": "neighbours"}, message


def highlight(store: ResultStore, current: MapRef | None, selection: Selection | None, view: dict | None):
    """Mark a selection made elsewhere (neighbours, another panel) on the map: (figure, view) or None.

    Plotly already shows its own 2-D lasso, box and click selections (marking them again would
    redraw every point), and the density view has no selection state; the count line reports those.
    """
    if not current or not view or view.get("key") != map_id(current) or view["kind"] == "density":
        return None
    how = (selection or {}).get("how")
    indices = np.asarray((selection or {}).get("indices") or [], dtype=np.int64)
    if (view["dims"] == 2 and how in ("lasso", "box", "click")) or (not len(indices) and not view.get("highlight")):
        return None
    indices = indices[(indices >= 0) & (indices < view["n"])][:HIGHLIGHT_CAP]
    fig, new_view = Patch(), Patch()
    if view["dims"] == 3:
        emb = load_map(store, current).embedding
        xyz = emb[indices].astype(np.float32)
        for axis, name in enumerate("xyz"):
            fig["data"][1][name] = mf.typed_array(np.ascontiguousarray(xyz[:, axis]))
        fig["data"][1]["customdata"] = indices.tolist()  # a list: dcc.Graph drops typed customdata
    else:
        fig["data"][0]["selectedpoints"] = indices.tolist() if len(indices) else None
    new_view["highlight"] = bool(len(indices))
    return fig, new_view


# -- hover -------------------------------------------------------------------------------------
def hover_card(store: ResultStore, current: MapRef, index: int) -> list:
    """Thumbnail, frame index, cluster and metadata of one frame, as a tooltip's children."""
    data = load_map(store, current)
    if not 0 <= index < data.n:
        raise ValueError(f"frame {index} is not in this map's {data.n} frames")
    label = int(data.labels[index])
    lines = [html.Div([html.B(f"frame {index}"), f" · {cluster_name(label, data.clustered)}"])]
    if data.frames is not None:
        row = data.frames.iloc[index]
        for name, value in list(row.items())[:HOVER_COLUMNS + 1]:
            if name == "index":
                continue
            text = str(value)
            lines.append(html.Div(f"{name}: {text if len(text) <= 48 else '…' + text[-47:]}"))
    try:
        uri = thumbnails.get(cache_key(store, current["dataset_id"], index),
                             lambda: to_png_data_uri(read_images(store, current["dataset_id"], index), max_size=THUMB_PX))
        picture = html.Img(src=uri, className="ms-thumb")
    except Exception as exc:
        log.warning("no thumbnail for frame %s of %s: %s", index, current["dataset_id"], exc)
        picture = html.Div(f"no image: {exc}", className="text-danger")
    return [picture, html.Div(lines, className="small mt-1")]


# -- count line --------------------------------------------------------------------------------
def count_line(view: dict | None, selection: Selection | None) -> str:
    """"N points · M selected", and what the map draws when it is not every point."""
    if not view:
        return ""
    selected = len((selection or {}).get("indices") or [])
    live = len(((selection or {}).get("live") or {}).get("rows") or [])
    text = f"{view['n']:,} points · {selected:,} selected" + (f" + {live:,} live" if live else "")
    if view["kind"] == "density":
        text += (f" · density view ({view['shown']:,} points drawn here)" if view["shown"]
                 else f" · density view: zoom in to ≤ {mf.WINDOW_POINTS_CAP:,} points to see them")
    elif view["kind"] == "sampled":
        text += f" · 3-D shows a fixed sample of {view['shown']:,}"
    return text


# -- the component -----------------------------------------------------------------------------
_id = part_ids("MapAIO")


class MapAIO(html.Div):
    """The latent map with its colouring control, count line and nearest-neighbour selection."""

    class ids:
        graph = _id("graph")
        tooltip = _id("tooltip")
        colour = _id("colour")
        k = _id("k")
        neighbours = _id("neighbours")
        count = _id("count")
        error = _id("error")
        message = _id("message")
        view = _id("view")
        selection = _id("selection")
        clicked = _id("clicked")

    def __init__(self, aio_id: str | None = None, graph_props: dict | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        graph_props = dict(graph_props or {})
        graph_props.setdefault("style", {"height": "70vh"})
        graph_props.setdefault("config", {"displaylogo": False, "scrollZoom": True})
        controls = dbc.Row([
            dbc.Col(dbc.InputGroup([
                dbc.InputGroupText("colour by"),
                dbc.Select(id=self.ids.colour(aio_id), value=mf.COLOUR_CLUSTER,
                           options=mf.colour_options(None), className="ms-map-colour"),
            ], size="sm"), width=6),
            dbc.Col(dbc.InputGroup([
                dbc.InputGroupText("k"),
                dbc.Input(id=self.ids.k(aio_id), type="number", value=20, min=K_RANGE[0],
                          max=K_RANGE[1], step=1, style={"maxWidth": "6em"}, className="ms-map-k"),
                dbc.Button("select k nearest", id=self.ids.neighbours(aio_id), color="secondary",
                           outline=True, className="ms-map-neighbours",
                           title="the k frames nearest the clicked frame in latent space"),
            ], size="sm"), width=6),
        ], className="g-2 mb-1")
        super().__init__([
            controls,
            html.Div(id=self.ids.error(aio_id)),
            html.Div([
                dcc.Graph(id=self.ids.graph(aio_id), className="ms-map", clear_on_unhover=True,
                          figure=empty_figure("Loading the map…"), **graph_props),
                dcc.Tooltip(id=self.ids.tooltip(aio_id), direction="right", className="ms-map-tooltip"),
            ], style={"position": "relative"}),
            html.Div(id=self.ids.count(aio_id), className="ms-map-count small text-muted"),
            html.Div(id=self.ids.message(aio_id), className="ms-map-message small"),
            dcc.Store(id=self.ids.view(aio_id)),
            dcc.Store(id=self.ids.selection(aio_id)),
            dcc.Store(id=self.ids.clicked(aio_id)),
        ], id={"component": "MapAIO", "subcomponent": "root", "aio_id": aio_id})


# -- callbacks (thin: read state, call the functions above, return) ----------------------------

callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)


@callbacks.callback(
    Output(MapAIO.ids.graph(MATCH), "figure"),
    Output(MapAIO.ids.colour(MATCH), "options"),
    Output(MapAIO.ids.colour(MATCH), "value"),
    Output(MapAIO.ids.view(MATCH), "data"),
    Output(MapAIO.ids.error(MATCH), "children"),
    Output(MapAIO.ids.selection(MATCH), "data"),
    Input(CURRENT, "data"),
    Input(MapAIO.ids.colour(MATCH), "value"),
    Input(MapAIO.ids.graph(MATCH), "relayoutData"),
    State(MapAIO.ids.view(MATCH), "data"),
)
def _draw(services: Services, current: MapRef | None, colour, relayout, view):
    triggers = {"current" if cid == CURRENT else cid.get("subcomponent")
                for cid in ctx.triggered_prop_ids.values() if cid}
    outputs = update_map(services.store, triggers, current, colour, relayout, view)
    if outputs is None:
        raise PreventUpdate
    return outputs


@callbacks.callback(
    Output(MapAIO.ids.selection(MATCH), "data", allow_duplicate=True),
    Output(MapAIO.ids.message(MATCH), "children", allow_duplicate=True),
    Input(MapAIO.ids.graph(MATCH), "selectedData"),
    State(CURRENT, "data"),
    State(MapAIO.ids.view(MATCH), "data"),
    State(LIVE_SHOWN, "data"),
    prevent_initial_call=True,
)
def _select(services: Services, selected, current: MapRef | None, view, shown: LiveShown | None):
    selection, error = with_store(services, "read the selection", selection_from, current, selected, view, shown)
    return (no_update, error) if error is not None else (selection, None)


@callbacks.callback(
    Output(MapAIO.ids.clicked(MATCH), "data"),
    Output(MapAIO.ids.message(MATCH), "children", allow_duplicate=True),
    Input(MapAIO.ids.graph(MATCH), "clickData"),
    State(CURRENT, "data"),
    State(MapAIO.ids.view(MATCH), "data"),
    State(SELECTION, "data"),
    prevent_initial_call=True,
)
def _click(services: Services, click, current: MapRef | None, view, selection: Selection | None):
    index, error = with_store(services, "tell which frame was clicked", event_frame, current, click, view)
    if error is not None:
        return no_update, error
    if index is None:
        raise PreventUpdate
    return {"index": index}, html.Span(click_message(index, selection), className="text-muted")


@callbacks.callback(
    Output(MapAIO.ids.selection(MATCH), "data", allow_duplicate=True),
    Output(MapAIO.ids.message(MATCH), "children", allow_duplicate=True),
    Input(MapAIO.ids.neighbours(MATCH), "n_clicks"),
    State(MapAIO.ids.k(MATCH), "value"),
    State(CURRENT, "data"),
    State(CLICKED, "data"),
    prevent_initial_call=True,
)
def _neighbours(services: Services, _, k, current: MapRef | None, clicked: Clicked | None):
    found, error = with_store(services, "select the nearest neighbours", neighbour_selection, current, clicked, k)
    if error is not None:
        return no_update, error
    selection, message = found
    return selection, html.Span(message, className="text-muted")


@callbacks.callback(
    Output(MapAIO.ids.tooltip(MATCH), "show"),
    Output(MapAIO.ids.tooltip(MATCH), "bbox"),
    Output(MapAIO.ids.tooltip(MATCH), "children"),
    Input(MapAIO.ids.graph(MATCH), "hoverData"),
    State(CURRENT, "data"),
    State(MapAIO.ids.view(MATCH), "data"),
    prevent_initial_call=True,
)
def _hover(services: Services, hover, current: MapRef | None, view):
    point = ((hover or {}).get("points") or [None])[0]
    if point is None or not current:
        return False, no_update, no_update
    bbox = point.get("bbox") or {"x0": 10, "x1": 10, "y0": 10, "y1": 10}  # 3-D gives no bbox
    try:
        index = event_frame(services.store(), current, hover, view)
        if index is None:
            return False, no_update, no_update
        children = hover_card(services.store(), current, index)
    except Exception as exc:
        log.exception("hover card on map %s failed", map_id(current))
        children = html.Div(f"Could not read the frame: {exc}", className="small text-danger")
    return True, bbox, children


@callbacks.callback(
    Output(MapAIO.ids.count(MATCH), "children"),
    Output(MapAIO.ids.count(MATCH), "title"),
    Input(MapAIO.ids.view(MATCH), "data"),
    Input(SELECTION, "data"),
)
def _count(view, selection: Selection | None):
    return count_line(view, selection), f"clustering {view['key']}" if view else ""


@callbacks.callback(
    Output(MapAIO.ids.graph(MATCH), "figure", allow_duplicate=True),
    Output(MapAIO.ids.view(MATCH), "data", allow_duplicate=True),
    Input(SELECTION, "data"),
    State(CURRENT, "data"),
    State(MapAIO.ids.view(MATCH), "data"),
    prevent_initial_call=True,
)
def _highlight(services: Services, selection: Selection | None, current: MapRef | None, view):
    try:
        changed = highlight(services.store(), current, selection, view)
    except Exception:
        log.exception("could not mark the selection on the map")
        raise PreventUpdate from None
    if changed is None:
        raise PreventUpdate
    return changed
