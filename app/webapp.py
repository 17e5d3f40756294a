"""The web app: until the explorer lands, one page that shows a stored map.

The map is one WebGL trace with a colour array (not one trace per cluster), so it stays
light as the map grows.
"""

from __future__ import annotations

import logging

import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import Dash, Input, Output, dcc, html

from core.settings import Settings
from core.store import Store, StoreError

log = logging.getLogger(__name__)

MAP_SELECT, MAP_GRAPH, MAP_INFO = "map-select", "map-graph", "map-info"


def map_figure(embedding: np.ndarray, labels: np.ndarray, title: str) -> go.Figure:
    """One Scattergl (2-D) or Scatter3d trace coloured by cluster (noise = -1, grey)."""
    common = dict(
        mode="markers",
        marker=dict(color=labels, colorscale="Turbo", size=4, showscale=True,
                    colorbar=dict(title="cluster")),
        customdata=np.arange(len(labels)),
        hovertemplate="frame %{customdata}<br>cluster %{marker.color}<extra></extra>",
    )
    emb = embedding.astype(np.float32)
    if emb.shape[1] == 3:
        trace = go.Scatter3d(x=emb[:, 0], y=emb[:, 1], z=emb[:, 2], **common)
    else:
        trace = go.Scattergl(x=emb[:, 0], y=emb[:, 1], **common)
    fig = go.Figure(trace)
    fig.update_layout(title=title, margin=dict(l=10, r=10, t=40, b=10), dragmode="lasso",
                      template="plotly_white")
    return fig


def load_map(store: Store, clustering_id: str) -> tuple[go.Figure, str]:
    meta = store.metadata("clusterings", clustering_id)
    embedding = store.array("projections", meta["projection_id"], "embedding")
    labels = store.array("clusterings", clustering_id, "labels")
    dataset = store.metadata("datasets", meta["dataset_id"])
    title = f"{dataset.get('name') or meta['dataset_id']}: {len(labels)} frames, {meta['n_clusters']} clusters"
    quality = meta.get("quality", {})
    info = ", ".join(f"{k} {v:.3g}" for k, v in quality.items() if isinstance(v, (int, float)))
    return map_figure(embedding, labels, title), info


def create_app(settings: Settings) -> Dash:
    app = Dash(__name__, title="Morphospace", external_stylesheets=[dbc.themes.BOOTSTRAP])

    def store() -> Store:
        return Store.from_settings(settings)

    def options() -> list[dict]:
        try:
            maps = store().list("clusterings")
        except StoreError as exc:
            log.warning("%s", exc)
            return []
        return [{"label": f"{m['id']} ({m.get('tag') or m.get('dataset_id')})", "value": m["id"]}
                for m in maps if m.get("complete")]

    def layout():
        opts = options()
        return dbc.Container([
            html.H3("Morphospace"),
            dcc.Dropdown(id=MAP_SELECT, options=opts, value=opts[0]["value"] if opts else None,
                         placeholder="No map stored yet: run `morphospace demo`", clearable=False),
            dcc.Loading(dcc.Graph(id=MAP_GRAPH, style={"height": "75vh"})),
            html.Div(id=MAP_INFO, className="text-muted small"),
        ], fluid=True)

    app.layout = layout

    @app.callback(Output(MAP_GRAPH, "figure"), Output(MAP_INFO, "children"), Input(MAP_SELECT, "value"))
    def show_map(clustering_id):
        if not clustering_id:
            return go.Figure(), "No map yet."
        try:
            return load_map(store(), clustering_id)
        except StoreError as exc:
            return go.Figure(), f"Could not load the map: {exc}"

    return app
