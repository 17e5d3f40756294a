"""XPCS panel: a measured two-time map, its non-equilibrium measure against its noise floor, and
the physical parameters an adapted regressor predicts for it (DESIGN §1, XPCS; issue 13).

Lists the stored measured maps (``xpcs_maps``, core.data.results.xpcs_maps) and the trained XPCS
regressors (``models`` of family ``xpcs``). For the chosen map it shows the map (heatmap), the
measure, its noise floor and verdict (``core.xpcs.noise.noise_floor``: equilibrium surrogates
with the map's decay, contrast and noise), and the chosen model's stored prediction for it
(ensemble mean ± sd, written by flows/train_xpcs.py); beside them, the model's 2-D embedding of
simulated and measured features before and after adaptation. Views are plain functions of
stored values, so they are tested without a browser; the callbacks only read and call them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import MATCH, Input, Output, State, dcc, html
from plotly.subplots import make_subplots

from components.errors import problem
from components.ids import RESULTS_VERSION
from components.services import Callbacks, Services
from core.data.results.xpcs_maps import read_maps
from core.data.store import StoreError
from core.xpcs.noise import NoiseFloor, noise_floor
from core.xpcs.simulate import PARAM_NAMES, UNITS

LABELS = {"D": "D (bulk diffusivity)", "kappa": "κ (boundary stiffness)", "c": "c (share on boundaries)",
          "T": "T (temperature)"}
NO_UNIT = "dimensionless"
DOMAIN_COLOURS = {"simulated": "#1f77b4", "measured": "#d62728"}


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    unit: str


def map_key(maps_id: str, index: int) -> str:
    """The map dropdown's value for map ``index`` of record ``maps_id``."""
    return f"{maps_id}#{index}"


def parse_key(key: str) -> tuple[str, int]:
    maps_id, _, index = key.rpartition("#")
    return maps_id, int(index)


def map_options(records: list[dict]) -> list[dict]:
    """One option per measured map of every complete ``xpcs_maps`` record, newest record first."""
    options = []
    for item in records:
        if not item.get("complete", True):
            continue
        sources, sides = item.get("sources") or [], item.get("sides") or []
        for i in range(int(item.get("n_maps", 0))):
            source = sources[i] if i < len(sources) else f"map {i}"
            side = f", {sides[i]} × {sides[i]} frames" if i < len(sides) else ""
            options.append({"label": f"{source}{side} · {item['id']}", "value": map_key(item["id"], i)})
    return options


def model_options(models: list[dict]) -> list[dict]:
    """The complete XPCS regressors, labelled by name and the measured records they adapted to."""
    options = []
    for item in models:
        if item.get("family") != "xpcs" or not item.get("complete", True):
            continue
        adapted = item.get("experimental_ids") or []
        on = f" (adapted to {', '.join(adapted)})" if adapted else " (not adapted)"
        options.append({"label": f"{item.get('name') or 'XPCS regressor'}{on} · {item['id']}", "value": item["id"]})
    return options


def _unit(name: str, units: dict) -> str:
    return units.get(name) or UNITS.get(name) or NO_UNIT


def prediction_rows(model: dict, maps_id: str, index: int) -> list[Row] | None:
    """Mean ± sd over the ensemble of each parameter the model stored for this map, with units;
    None when the model did not adapt to (so stored no prediction for) this map."""
    rows = [tuple(r) for r in model.get("experimental_maps") or []]
    predictions = model.get("experimental_predictions") or {}
    if (maps_id, index) not in rows or not predictions:
        return None
    k = rows.index((maps_id, index))
    names = (model.get("config") or {}).get("param_names") or PARAM_NAMES
    units = model.get("units") or {}
    mean, sd = predictions["mean"][k], predictions["sd"][k]
    return [Row(LABELS.get(name, name), f"{m:.3g} ± {s:.2g}", _unit(name, units))
            for name, m, s in zip(names, mean, sd)]


def floor_rows(floor: NoiseFloor) -> list[Row]:
    """The measure, its equilibrium noise floor and what the floor was drawn with, with units."""
    counts = "none (no shot noise)" if floor.mean_counts is None else f"{floor.mean_counts:.3g}"
    return [
        Row("Non-equilibrium measure", f"{floor.measure:.3f}", f"{NO_UNIT}, 0–1"),
        Row(f"Noise floor ({100 * floor.quantile:.0f}th pct.)", f"{floor.floor:.3f}", f"{NO_UNIT}, 0–1"),
        Row("p-value", f"{floor.p_value:.3f}", f"{floor.n_surrogates} equilibrium surrogates"),
        Row("Contrast β", f"{floor.contrast:.3g}", NO_UNIT),
        Row("Decay τc", f"{floor.decay_frames:.3g}", "frames"),
        Row("Independent pixels", f"{floor.n_pixels:.3g}", f"pixels, {floor.pixels_from}"),
        Row("Photons", counts, "per pixel per frame"),
    ]


def verdict_line(floor: NoiseFloor) -> str:
    return "significantly non-equilibrium" if floor.significant else "not distinguishable from equilibrium"


def map_figure(C: np.ndarray, title: str) -> go.Figure:
    """The two-time map C(t1, t2) as a heatmap, ages in frames (measured maps carry no frame time)."""
    fig = go.Figure(go.Heatmap(z=C, colorscale="Viridis", colorbar={"title": {"text": "C", "side": "right"}},
                               hovertemplate="t1 %{x} frames, t2 %{y} frames: C = %{z:.4g}<extra></extra>"))
    fig.update_layout(title={"text": title, "font": {"size": 12}}, height=330, template="plotly_white",
                      margin={"l": 50, "r": 10, "t": 40, "b": 45})
    fig.update_xaxes(title_text="t1 (frames)", constrain="domain")
    fig.update_yaxes(title_text="t2 (frames)", scaleanchor="x", autorange="reversed")
    return fig


def embedding_figure(embedding: dict) -> go.Figure | None:
    """Two scatter plots, features before and after adaptation, coloured by domain; None when
    the model stored no embedding (trained without measured maps)."""
    if not embedding or not embedding.get("before"):
        return None
    n_sim = int(embedding["n_simulated"])
    method = "UMAP" if embedding["method"] == "umap" else "PC"
    fig = make_subplots(rows=1, cols=2, subplot_titles=("before adaptation", "after adaptation (CORAL)"))
    for col, key in enumerate(("before", "after"), start=1):
        xy = np.asarray(embedding[key], dtype=float)
        for domain, part in (("simulated", xy[:n_sim]), ("measured", xy[n_sim:])):
            fig.add_trace(go.Scatter(
                x=part[:, 0], y=part[:, 1], mode="markers", name=domain, legendgroup=domain,
                showlegend=col == 1, marker={"color": DOMAIN_COLOURS[domain],
                                             "size": 5 if domain == "simulated" else 10, "opacity": 0.8},
                hovertemplate=f"{domain}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title_text=f"{method} 1 (no unit)", row=1, col=col)
        fig.update_yaxes(title_text=f"{method} 2 (no unit)", row=1, col=col)
    fig.update_layout(
        height=300, template="plotly_white", margin={"l": 50, "r": 10, "t": 60, "b": 45},
        title={"text": f"Regressor features, {n_sim} simulated and {len(xy) - n_sim} measured maps "
                       f"({embedding['method'].upper()})", "font": {"size": 12}})
    return fig


def rows_table(rows: list[Row]) -> html.Table:
    return html.Table(html.Tbody([
        html.Tr([html.Td(r.label, className="pe-2"), html.Td(html.Strong(r.value), className="pe-2"),
                 html.Td(r.unit, className="text-muted")]) for r in rows
    ]), className="small xpcs-table")


class XPCSAIO(html.Div):
    class ids:
        map = staticmethod(lambda aio_id: {"component": "XPCSAIO", "subcomponent": "map", "aio_id": aio_id})
        model = staticmethod(lambda aio_id: {"component": "XPCSAIO", "subcomponent": "model", "aio_id": aio_id})
        figure = staticmethod(lambda aio_id: {"component": "XPCSAIO", "subcomponent": "figure", "aio_id": aio_id})
        measure = staticmethod(lambda aio_id: {"component": "XPCSAIO", "subcomponent": "measure", "aio_id": aio_id})
        params = staticmethod(lambda aio_id: {"component": "XPCSAIO", "subcomponent": "params", "aio_id": aio_id})
        embedding = staticmethod(lambda aio_id: {"component": "XPCSAIO", "subcomponent": "embedding", "aio_id": aio_id})

    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        graph = {"config": {"displayModeBar": False}, "style": {"display": "none"}}
        super().__init__(dbc.Card([
            dbc.CardHeader("XPCS: measured two-time maps", className="py-1 fw-bold"),
            dbc.CardBody([
                dbc.Row([
                    dbc.Col([dbc.Label("Measured map", className="small fw-bold mb-0"),
                             dcc.Dropdown(id=self.ids.map(aio_id), placeholder="no measured maps yet "
                                          "(morphospace ingest-xpcs-map)")], md=6),
                    dbc.Col([dbc.Label("Regressor", className="small fw-bold mb-0"),
                             dcc.Dropdown(id=self.ids.model(aio_id), placeholder="no XPCS regressor yet "
                                          "(Jobs: Train XPCS regressor)")], md=6),
                ]),
                dbc.Row([
                    dbc.Col(dcc.Graph(id=self.ids.figure(aio_id), **graph), md=5),
                    dbc.Col([html.Div(id=self.ids.measure(aio_id)), html.Div(id=self.ids.params(aio_id))], md=7),
                ], className="mt-2"),
                dcc.Graph(id=self.ids.embedding(aio_id), **graph),
            ]),
        ], className="my-2 xpcs-panel"))


callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)


def _keep(value: Any, options: list[dict]) -> Any:
    offered = [o["value"] for o in options]
    return value if value in offered else (offered or [None])[0]


@callbacks.callback(
    Output(XPCSAIO.ids.map(MATCH), "options"),
    Output(XPCSAIO.ids.map(MATCH), "value"),
    Output(XPCSAIO.ids.model(MATCH), "options"),
    Output(XPCSAIO.ids.model(MATCH), "value"),
    Input(RESULTS_VERSION, "data"),
    State(XPCSAIO.ids.map(MATCH), "value"),
    State(XPCSAIO.ids.model(MATCH), "value"),
)
def _list(services: Services, _version, map_value, model_value):
    try:
        store = services.store()
        maps, models = map_options(store.list("xpcs_maps")), model_options(store.list("models"))
    except StoreError:
        return [], None, [], None  # the banner says Tiled is down
    return maps, _keep(map_value, maps), models, _keep(model_value, models)


def show_map(store: Any, key: str | None) -> tuple[go.Figure | None, Any]:
    """(heatmap or None, measure children) of the chosen measured map."""
    if not key:
        return None, html.Span("Store measured maps with `morphospace ingest-xpcs-map`.", className="text-muted")
    maps_id, index = parse_key(key)
    record = read_maps(store, maps_id)
    C = record.maps[index]
    floor = noise_floor(C)
    source = record.metadata.get("sources", [f"map {index}"])[index]
    measure = [html.Div(["Verdict: ", html.Strong(verdict_line(floor))], className="small", title=floor.verdict),
               rows_table(floor_rows(floor))]
    return map_figure(C, f"{source} ({C.shape[0]} × {C.shape[0]} frames)"), measure


def show_model(store: Any, key: str | None, model_id: str | None) -> tuple[Any, go.Figure | None]:
    """(parameters children, embedding figure or None) of the chosen regressor for the chosen map."""
    if not model_id:
        return html.Span("Train an XPCS regressor (Jobs) to see D, κ, c and T.", className="text-muted small"), None
    model = store.metadata("models", model_id)
    embedding = embedding_figure(model.get("feature_embedding") or {})
    if not key:
        return "", embedding
    maps_id, index = parse_key(key)
    rows = prediction_rows(model, maps_id, index)
    if rows is None:
        return html.Span(f"This regressor was not adapted to {maps_id}: train one with it among the "
                         "measured maps to see its parameters.", className="text-muted small"), embedding
    return [html.Div("Predicted (ensemble mean ± sd)", className="small fw-bold mt-2"), rows_table(rows)], embedding


HIDDEN, SHOWN = {"display": "none"}, {"display": "block"}


@callbacks.callback(
    Output(XPCSAIO.ids.figure(MATCH), "figure"),
    Output(XPCSAIO.ids.figure(MATCH), "style"),
    Output(XPCSAIO.ids.measure(MATCH), "children"),
    Input(XPCSAIO.ids.map(MATCH), "value"),
)
def _show_map(services: Services, key: str | None):
    try:
        figure, measure = show_map(services.store(), key)
    except (StoreError, ValueError, KeyError, IndexError) as exc:
        return go.Figure(), HIDDEN, problem("show the measured map", exc)
    return figure or go.Figure(), SHOWN if figure else HIDDEN, measure


@callbacks.callback(
    Output(XPCSAIO.ids.params(MATCH), "children"),
    Output(XPCSAIO.ids.embedding(MATCH), "figure"),
    Output(XPCSAIO.ids.embedding(MATCH), "style"),
    Input(XPCSAIO.ids.map(MATCH), "value"),
    Input(XPCSAIO.ids.model(MATCH), "value"),
)
def _show_model(services: Services, key: str | None, model_id: str | None):
    try:
        params, embedding = show_model(services.store(), key, model_id)
    except (StoreError, ValueError, KeyError, IndexError) as exc:
        return problem("show the regressor's predictions", exc), go.Figure(), HIDDEN
    return params, embedding or go.Figure(), SHOWN if embedding else HIDDEN
