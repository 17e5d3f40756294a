"""The page's wiring between panels, one module per concern; each panel's own callbacks stay in
its All-in-One component. ``app.webapp.create_app`` calls :func:`register`."""

from __future__ import annotations

from dash import Dash

from callbacks import current_map, results, runs, selection, synthesis
from components.services import Services


def register(app: Dash, services: Services, *, sidebar: str) -> None:
    """``sidebar``: the aio id of the page's sidebar (its choice and poll feed page stores)."""
    current_map.register(app, services, sidebar=sidebar)
    results.register(app, services, sidebar=sidebar)
    selection.register(app)
    runs.register(app)
    synthesis.register(app)
