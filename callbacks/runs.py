"""Panels → the jobs panel: a run another panel submitted becomes the page's SUBMITTED run,
which the jobs panel follows like its own (forwarded in the browser)."""

from __future__ import annotations

from dash import ALL, Dash, Input, Output

from components.ids import FORWARD_TRIGGERED, SUBMITTED
from components.variations_panel import VariationsAIO


def register(app: Dash) -> None:
    app.clientside_callback(FORWARD_TRIGGERED, Output(SUBMITTED, "data", allow_duplicate=True),
                            Input(VariationsAIO.ids.submitted(ALL), "data"), prevent_initial_call=True)
