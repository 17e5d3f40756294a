"""Map → the other panels: a map's selection and clicked frame become the page's SELECTION and
CLICKED, forwarded in the browser (no server round trip)."""

from __future__ import annotations

from dash import ALL, Dash, Input, Output

from components.ids import CLICKED, FORWARD_TRIGGERED, SELECTION
from components.map_panel import MapAIO


def register(app: Dash) -> None:
    app.clientside_callback(FORWARD_TRIGGERED, Output(SELECTION, "data", allow_duplicate=True),
                            Input(MapAIO.ids.selection(ALL), "data"), prevent_initial_call=True)
    app.clientside_callback(FORWARD_TRIGGERED, Output(CLICKED, "data", allow_duplicate=True),
                            Input(MapAIO.ids.clicked(ALL), "data"), prevent_initial_call=True)
