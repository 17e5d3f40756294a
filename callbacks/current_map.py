"""Sidebar → every panel: the chosen projection and clustering become the page's CURRENT map."""

from __future__ import annotations

from dash import Dash, Input, Output, State, no_update

from components.ids import CURRENT
from components.records import MapRef
from components.services import Services, bind
from components.sidebar import SidebarAIO, current_map
from core.data.store import StoreError


def publish(services: Services, projection_id: str | None, clustering_id: str | None,
            shown: MapRef | None) -> MapRef | None:
    """The CURRENT value for the sidebar's choice; the same map again changes nothing."""
    try:
        current = current_map(services.store(), projection_id, clustering_id)
    except StoreError:
        current = None
    # None is always sent: the map panel's first draw waits on it.
    return no_update if current is not None and current == shown else current


def register(app: Dash, services: Services, *, sidebar: str) -> None:
    app.callback(Output(CURRENT, "data"),
                 Input(SidebarAIO.ids.select(sidebar, "projections"), "value"),
                 Input(SidebarAIO.ids.select(sidebar, "clusterings"), "value"),
                 State(CURRENT, "data"))(bind(publish, services))
