"""Sidebar: choose the dataset, the model, the projection and the clustering to show.

Each selector lists what Tiled holds for the choice above it, with the parameters each result
was made with; the chosen chain is published in the page-level ``CURRENT`` store.

Results stored by anyone (a CLI run, another tab, the demo's first map) reach an open page: every
few seconds it counts the finished results in Tiled (one small request per kind) and, only when a
count moved, bumps ``RESULTS_VERSION`` so every panel lists them again. Values that did not change
are not sent again, so a refresh never redraws the map that is shown.
"""

from __future__ import annotations

import logging
import uuid

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, ctx, dcc, html, no_update

from components import context
from components.errors import problem
from components.ids import CURRENT, RESULTS_VERSION
from components.words import plural
from core.data.store import KINDS, Store, StoreError

log = logging.getLogger(__name__)

LEVELS = ("datasets", "models", "projections", "clusterings")
WATCHED = tuple(kind for kind in KINDS if kind != "live")  # what the page's panels list
POLL_MS = 5000  # how often an open page asks Tiled whether results were added
LABELS = {"datasets": "Dataset", "models": "Model", "projections": "Projection", "clusterings": "Clusters"}


def describe(kind: str, item: dict) -> str:
    """One line naming a result by what made it."""
    p = item.get("params", {})
    if kind == "datasets":
        n = item.get("n_frames")
        return f"{item.get('name') or item['id']} ({plural(n, 'frame') if n is not None else '? frames'})"
    if kind == "models":
        config = item.get("config", {})
        return f"{item.get('family', 'vae').upper()} d={config.get('latent_dim')} · {item['id']}"
    if kind == "projections":
        dims = p.get("n_components", "?")
        extra = f", k={p.get('n_neighbors')}, min_dist={p.get('min_dist')}" if p.get("method") == "umap" else ""
        return f"{str(p.get('method', '?')).upper()} {dims}-D{extra} · {item['id']}"
    n = item.get("n_clusters")
    return f"{plural(n, 'cluster') if n is not None else '? clusters'}, min size {p.get('min_cluster_size')} · {item['id']}"


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


def fingerprint(store: Store) -> list[int]:
    """Finished results per watched kind: it changes when any run stores one."""
    return [store.count_complete(kind) for kind in WATCHED]


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
        poll = staticmethod(lambda aio_id: {"component": "SidebarAIO", "subcomponent": "poll", "aio_id": aio_id})
        seen = staticmethod(lambda aio_id: {"component": "SidebarAIO", "subcomponent": "seen", "aio_id": aio_id})

    def __init__(self, aio_id: str | None = None, poll_ms: int = POLL_MS):
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
            dcc.Interval(id=self.ids.poll(aio_id), interval=poll_ms),
            dcc.Store(id=self.ids.seen(aio_id)),  # the fingerprint the selectors were listed at
        ], className="ms-sidebar")


@callback(
    [Output(SidebarAIO.ids.select(MATCH, level), "options") for level in LEVELS],
    [Output(SidebarAIO.ids.select(MATCH, level), "value") for level in LEVELS],
    Output(SidebarAIO.ids.message(MATCH), "children"),
    Output(SidebarAIO.ids.seen(MATCH), "data"),
    [Input(SidebarAIO.ids.select(MATCH, level), "value") for level in LEVELS],
    Input(RESULTS_VERSION, "data"),
)
def _refresh(*values):
    chosen = dict(zip(LEVELS, values[: len(LEVELS)]))
    try:
        store = context.store()
        seen = fingerprint(store)  # first: what is stored while listing is seen by the next poll
        options, resolved = resolve(store, chosen)
    except StoreError as exc:
        empty = [[] for _ in LEVELS]
        return (*empty, *[None for _ in LEVELS], problem("list the results", exc), no_update)
    # New results: send only the choices that moved (sending one again re-publishes the map).
    # The first call sends them all, or what depends on them would never run.
    keep = ctx.triggered_id == RESULTS_VERSION
    picked = [no_update if keep and resolved[k] == chosen[k] else resolved[k] for k in LEVELS]
    return (*[options[k] for k in LEVELS], *picked, "", seen)


def new_version(store: Store, seen: list[int] | None, version: int | None) -> int | None:
    """The next RESULTS_VERSION when Tiled holds results the page has not listed, else None."""
    return None if fingerprint(store) == seen else (version or 0) + 1


def register_page_stores(sidebar_id: str) -> None:
    """Publish the chosen map in the page-level CURRENT store, and bump RESULTS_VERSION when
    results were stored since the selectors were listed (page-level ids need a concrete aio id)."""

    @callback(Output(CURRENT, "data"),
              Input(SidebarAIO.ids.select(sidebar_id, "projections"), "value"),
              Input(SidebarAIO.ids.select(sidebar_id, "clusterings"), "value"),
              State(CURRENT, "data"))
    def _current(projection_id, clustering_id, shown):
        try:
            current = current_map(context.store(), projection_id, clustering_id)
        except StoreError:
            current = None
        # The same map again changes nothing (None is always sent: the map panel's first draw waits on it).
        return no_update if current is not None and current == shown else current

    @callback(Output(RESULTS_VERSION, "data", allow_duplicate=True),
              Input(SidebarAIO.ids.poll(sidebar_id), "n_intervals"),
              State(SidebarAIO.ids.seen(sidebar_id), "data"),
              State(RESULTS_VERSION, "data"),
              prevent_initial_call=True)
    def _poll(_n, seen, version):
        try:
            bumped = new_version(context.store(), seen, version)
        except Exception as exc:  # Tiled down or restarting: the service banner says so; next poll retries
            log.debug("results poll failed: %s", exc)
            bumped = None
        return no_update if bumped is None else bumped
