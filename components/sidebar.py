"""Sidebar: choose the dataset, the model, the projection and the clustering to show.

Each selector lists what Tiled holds for the choice above it, with the parameters each result
was made with; the chosen chain is published in the page-level ``CURRENT`` store.
"""

from __future__ import annotations

import uuid

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, callback, dcc, html

from components import context
from components.errors import problem
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


def _options(kind: str, items: list[dict]) -> list[dict]:
    return [{"label": describe(kind, item), "value": item["id"]} for item in items]


def resolve(store: Store, chosen: dict[str, str | None]) -> tuple[dict[str, list[dict]], dict[str, str | None]]:
    """Options per level given the choices above it, and the choice per level.

    A choice is kept while it is still offered; otherwise the newest result that leads to a
    clustered map is taken (so a fresh projection without clusters does not blank the page),
    else the newest. Only complete results are offered.
    """
    found = {kind: [item for item in store.list(kind) if item.get("complete")] for kind in LEVELS}
    parent = {"projections": "model_id", "clusterings": "projection_id"}
    mapped = {"datasets": {c.get("dataset_id") for c in found["clusterings"]},
              "models": {c.get("model_id") for c in found["clusterings"]},
              "projections": {c.get("projection_id") for c in found["clusterings"]}}
    chosen = dict(chosen)
    options: dict[str, list[dict]] = {}
    above: str | None = None
    for kind in LEVELS:  # each level's options depend on the choice above it
        items = found[kind]
        if kind == "models":  # trained on the dataset, or mapped it (a GAN map's generated dataset)
            mapping = {p.get("model_id") for p in found["projections"] if p.get("dataset_id") == chosen[above]}
            items = [item for item in items if item.get("dataset_id") == chosen[above] or item["id"] in mapping]
        elif kind in parent:
            items = [item for item in items if item.get(parent[kind]) == chosen[above]]
            if kind == "projections":  # a projection belongs to its dataset too
                items = [item for item in items if item.get("dataset_id") == chosen["datasets"]]
        options[kind] = _options(kind, items)
        values = [item["id"] for item in items]
        if chosen.get(kind) not in values:
            preferred = [v for v in values if v in mapped.get(kind, set())]
            chosen[kind] = (preferred or values or [None])[0]
        above = kind
    return options, chosen


def current_map(store: Store, projection_id: str | None, clustering_id: str | None) -> dict | None:
    """The CURRENT value (``components.ids``) of a projection and, optionally, its clustering."""
    if not projection_id:
        return None
    projection = store.metadata("projections", projection_id)
    if clustering_id and store.metadata("clusterings", clustering_id).get("projection_id") != projection_id:
        clustering_id = None  # the two selectors are mid-update: show the projection alone
    return {
        "clustering_id": clustering_id,
        "projection_id": projection_id,
        "latents_id": projection["latents_id"],
        "dataset_id": projection["dataset_id"],
        "model_id": projection["model_id"],
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
        return (*empty, *[None for _ in LEVELS], problem("list the results", exc))
    return (*[options[k] for k in LEVELS], *[chosen[k] for k in LEVELS], "")


def register_current(sidebar_id: str) -> None:
    """Publish the chosen map (projection and clustering) in the page-level CURRENT store."""

    @callback(Output(CURRENT, "data"),
              Input(SidebarAIO.ids.select(sidebar_id, "projections"), "value"),
              Input(SidebarAIO.ids.select(sidebar_id, "clusterings"), "value"))
    def _current(projection_id, clustering_id):
        try:
            return current_map(context.store(), projection_id, clustering_id)
        except StoreError:
            return None
