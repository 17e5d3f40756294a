"""A frame player that runs in the browser: a picture, its caption, a slider and Play/Pause.

Frames arrive once, as PNG data URIs with a caption each (a ``{"src": [...], "caption": [...]}``
store); a tick advances the slider and the slider picks the frame shown, all client-side, so
playing costs no server round trip. Panels that play a sequence (variations by ‖ε‖, a path of
generated images) build it with :func:`player` and wire it with :func:`register_player`; the
panel's ``ids`` class needs ``player``, ``caption``, ``slider``, ``play``, ``tick`` and ``frames``.
"""

from __future__ import annotations

from typing import TypedDict

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, dcc, html

from components.services import Callbacks

PLAY_MS = 400  # one step of the player


class Frames(TypedDict):
    """The frames store: one PNG data URI and one caption per frame, in play order."""

    src: list[str]
    caption: list[str]


def player(ids: type, aio_id: str, prefix: str) -> html.Figure:
    """The player's layout; ``prefix`` names its parts' CSS classes (``{prefix}-player``, ``-caption``,
    ``-slider``, ``-play``), which tests and styles use."""
    return html.Figure([
        html.Img(id=ids.player(aio_id), className=f"w-100 {prefix}-player",
                 style={"imageRendering": "pixelated", "background": "#000", "minHeight": "2rem"}),
        html.Figcaption(id=ids.caption(aio_id), className=f"small text-center text-muted {prefix}-caption"),
        dcc.Slider(id=ids.slider(aio_id), min=0, max=0, step=1, value=0, marks=None, updatemode="drag",
                   className=f"{prefix}-slider"),
        dbc.Button("▶ Play", id=ids.play(aio_id), size="sm", color="secondary", outline=True,
                   className=f"py-0 {prefix}-play"),
        dcc.Interval(id=ids.tick(aio_id), interval=PLAY_MS, disabled=True),
        dcc.Store(id=ids.frames(aio_id)),
    ], className="m-0")


def register_player(callbacks: Callbacks, ids: type) -> None:
    """The player's three client-side callbacks, on the panel's ``callbacks``."""
    callbacks.clientside(
        """function(n, disabled) {
            if (!n) { return [dash_clientside.no_update, dash_clientside.no_update]; }
            return disabled ? [false, "⏸ Pause"] : [true, "▶ Play"];
        }""",
        Output(ids.tick(MATCH), "disabled"),
        Output(ids.play(MATCH), "children"),
        Input(ids.play(MATCH), "n_clicks"),
        State(ids.tick(MATCH), "disabled"),
        prevent_initial_call=True,
    )
    callbacks.clientside(
        "function(n, value, max) { return max > 0 ? ((value || 0) + 1) % (max + 1) : 0; }",
        Output(ids.slider(MATCH), "value", allow_duplicate=True),
        Input(ids.tick(MATCH), "n_intervals"),
        State(ids.slider(MATCH), "value"),
        State(ids.slider(MATCH), "max"),
        prevent_initial_call=True,
    )
    callbacks.clientside(
        """function(value, frames) {
            if (!frames || !frames.src.length) { return ["", ""]; }
            const i = Math.min(value || 0, frames.src.length - 1);
            return [frames.src[i], frames.caption[i]];
        }""",
        Output(ids.player(MATCH), "src"),
        Output(ids.caption(MATCH), "children"),
        Input(ids.slider(MATCH), "value"),
        Input(ids.frames(MATCH), "data"),
    )
