"""The web app: panels composed into one page. Each panel owns its layout and callbacks.

Panels talk through the page-level stores in ``components.ids``, wired in ``callbacks/``: the
sidebar publishes the map to show, the map publishes the selection, jobs bump the results
version. The settings, the store and the live runner are handed to every panel's
``register(app, services)`` here, so each app has its own. Every request passes the Host and
Origin checks of ``app.guard`` first.
"""

from __future__ import annotations

import atexit
from pathlib import Path

import dash_bootstrap_components as dbc
from dash import Dash, dcc, html

from app import guard
from app.live import LiveRunner
from app.live import register_routes as register_live_routes
from callbacks import register as register_wiring
from components import inspect_panel, jobs_panel, live_panel, map_panel, quality_panel, sidebar, status_banner
from components import synthesis_panel, variations_panel, xpcs_panel
from components.ids import CLICKED, CURRENT, DRAWN_PATH, MAP_POINT, RESULTS_VERSION, SELECTION, SUBMITTED
from components.inspect_panel import InspectAIO
from components.jobs_panel import JobsAIO
from components.live_panel import LiveAIO
from components.map_panel import MapAIO
from components.quality_panel import QualityAIO
from components.services import Services
from components.sidebar import SidebarAIO
from components.status_banner import ServiceBannerAIO
from components.synthesis_panel import SynthesisAIO
from components.variations_panel import VariationsAIO
from components.xpcs_panel import XPCSAIO
from core.settings import Settings

SIDEBAR = "sidebar"
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def layout() -> dbc.Container:
    return dbc.Container([
        dcc.Store(id=CURRENT), dcc.Store(id=SELECTION), dcc.Store(id=CLICKED), dcc.Store(id=SUBMITTED),
        dcc.Store(id=MAP_POINT), dcc.Store(id=DRAWN_PATH),
        dcc.Store(id=RESULTS_VERSION, data=0),
        dbc.Row(dbc.Col([
            html.Div([html.H4("Morphospace", className="my-2 me-4"), LiveAIO(aio_id="live")],
                     className="d-flex align-items-center"),
            ServiceBannerAIO(aio_id="status"),
        ])),
        dbc.Row([
            dbc.Col([SidebarAIO(aio_id=SIDEBAR), html.Hr(), QualityAIO(aio_id="quality")], width=2),
            dbc.Col(MapAIO(aio_id="map"), width=6),
            dbc.Col([SynthesisAIO(aio_id="synthesis"), InspectAIO(aio_id="inspect")], width=4),
        ]),
        dbc.Row(dbc.Col(VariationsAIO(aio_id="variations"))),
        dbc.Row(dbc.Col(XPCSAIO(aio_id="xpcs"))),
        dbc.Row(dbc.Col(JobsAIO(aio_id="jobs"))),
    ], fluid=True)


PANELS = (sidebar, quality_panel, map_panel, inspect_panel, variations_panel, jobs_panel, live_panel, status_banner,
          xpcs_panel, synthesis_panel)


def create_app(settings: Settings, services: Services | None = None) -> Dash:
    """The page for ``settings``; ``services`` (tests) replaces the store and live runner it opens."""
    if services is None:
        runner = LiveRunner(settings)
        atexit.register(runner.close)  # a live session started from the page ends with the app
        services = Services.from_settings(settings, live=runner)
    # Bootstrap comes from assets/ (no CDN): the app must look right on an offline beamline network.
    app = Dash(__name__, title="Morphospace", assets_folder=str(ASSETS),
               suppress_callback_exceptions=True)
    app.layout = layout
    guard.install(app.server, settings)  # before every route, Dash's own included
    if services.live_runner is not None:
        register_live_routes(app.server, services.live_runner, services.store)
    for panel in PANELS:
        panel.register(app, services)
    register_wiring(app, services, sidebar=SIDEBAR)
    return app

