"""Sidebar: choose the dataset, the model, the projection and the clustering to show.

Each selector lists what Tiled holds for the choice above it, with the parameters each result
was made with; the chosen chain is published in the page-level ``CURRENT`` store.
"""

from __future__ import annotations

import uuid

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, dcc, html

from components import context
from components.ids import CURRENT, RESULTS_VERSION
from core.store import Store, StoreError

LEVELS = ("datasets", "models", "projections", "clusterings")
LABELS = {"datasets": "Dataset", "models": "Model", "projections": "Projection", "clusterings": "Clusters"}


def describe(kind: str, item: dict) -> str:
    """One line naming a result by what made it."""
    p = item.get("params", {})
    if kind == "datasets":
        return f"{item.get('name') or item['id']} ({item.get('n_frames', '?')} frames)"
    if kind == "models":
        config = item.get("config", {})
        return f"{item.get('family', 'vae').upper()} d={config.get('latent_dim')} · {item['id']}"
    if kind == "projections":
        dims = p.get("n_components", "?")
        extra = f", k={p.get('n_neighbors')}, min_dist={p.get('min_dist')}" if p.get("method") == "umap" else ""
        return f"{str(p.get('method', '?')).upper()} {dims}-D{extra} · {item['id']}"
    return f"{item.get('n_clusters', '?')} clusters, min size {p.get('min_cluster_size')} · {item['id']}"


def choices(store: Store, chosen: dict[str, str | None]) -> dict[str, list[dict]]:
    """Options for every level given the choices above it (complete results only)."""
    def complete(kind: str) -> list[dict]:
        return [item for item in store.list(kind) if item.get("complete")]

    datasets = complete("datasets")
    models = [m for m in complete("models") if m.get("dataset_id") == chosen.get("datasets")]
    projections = [
        p for p in complete("projections")
        if p.get("dataset_id") == chosen.get("datasets") and p.get("model_id") == chosen.get("models")
    ]
    clusterings = [c for c in complete("clusterings") if c.get("projection_id") == chosen.get("projections")]
    found = {"datasets": datasets, "models": models, "projections": projections, "clusterings": clusterings}
    return {kind: [{"label": describe(kind, item), "value": item["id"]} for item in items]
            for kind, items in found.items()}


def resolve(store: Store, chosen: dict[str, str | None]) -> tuple[dict[str, list[dict]], dict[str, str | None]]:
    """Options per level, and the choice per level (kept when still offered, else the newest)."""
    chosen = dict(chosen)
    options: dict[str, list[dict]] = {}
    for kind in LEVELS:  # each level's options depend on the choices above it
        options = choices(store, chosen)
        values = [o["value"] for o in options[kind]]
        if chosen.get(kind) not in values:
            chosen[kind] = values[0] if values else None
    return options, chosen


def current_map(store: Store, clustering_id: str | None) -> dict | None:
    if not clustering_id:
        return None
    meta = store.metadata("clusterings", clustering_id)
    projection = store.metadata("projections", meta["projection_id"])
    return {
        "clustering_id": clustering_id,
        "projection_id": meta["projection_id"],
        "latents_id": meta["latents_id"],
        "dataset_id": meta["dataset_id"],
        "model_id": meta["model_id"],
        "n_components": projection.get("params", {}).get("n_components", 2),
    }


class SidebarAIO(html.Div):
    class ids:
        select = staticmethod(lambda aio_id, level: {"component": "SidebarAIO", "subcomponent": f"select-{level}", "aio_id": aio_id})
        message = staticmethod(lambda aio_id: {"component": "SidebarAIO", "subcomponent": "message", "aio_id": aio_id})

    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        selectors = [
            html.Div([
                dbc.Label(LABELS[level], className="mb-0 mt-2 small fw-bold"),
                dcc.Dropdown(id=self.ids.select(aio_id, level), clearable=False, optionHeight=45,
                             placeholder=f"no {level} yet"),
            ]) for level in LEVELS
        ]
        super().__init__([
            *selectors,
            html.Div(id=self.ids.message(aio_id), className="small text-danger mt-2"),
        ], className="ms-sidebar")


@callback(
    [Output(SidebarAIO.ids.select(MATCH, level), "options") for level in LEVELS],
    [Output(SidebarAIO.ids.select(MATCH, level), "value") for level in LEVELS],
    Output(SidebarAIO.ids.message(MATCH), "children"),
    [Input(SidebarAIO.ids.select(MATCH, level), "value") for level in LEVELS],
    Input(RESULTS_VERSION, "data"),
)
def _refresh(*values):
    chosen = dict(zip(LEVELS, values[: len(LEVELS)]))
    try:
        options, chosen = resolve(context.store(), chosen)
    except StoreError as exc:
        empty = [[] for _ in LEVELS]
        return (*empty, *[None for _ in LEVELS], f"Cannot read results from Tiled: {exc}")
    return (*[options[k] for k in LEVELS], *[chosen[k] for k in LEVELS], "")


def register_current(sidebar_id: str) -> None:
    """Publish the chosen clustering's chain in the page-level CURRENT store."""

    @callback(Output(CURRENT, "data"), Input(SidebarAIO.ids.select(sidebar_id, "clusterings"), "value"))
    def _current(clustering_id):
        try:
            return current_map(context.store(), clustering_id)
        except StoreError:
            return None
