"""Live switch: start a live session on the shown map and watch frames arrive, or replay one.

The server side only starts and stops the session (``services.live()``, the app's
``app.live.LiveRunner``) and lists stored sessions; everything per message happens in the
browser (``assets/live.js``), which a clientside callback hands the session's config to once
the session listens. A shown map gets its session process warmed up at once, so that the switch
is quick; the page says "starting…" until the session is ready (the script watches the switch
itself: a Dash callback on it would wait for the start), and whether the shown map is warm in
``#live-status``'s ``data-standby``. Only one LiveAIO per page: the script writes its
state into the element ``#live-status`` and which points it shows into the store ``LIVE_SHOWN``.

The time slider scrubs back through the session (a replayed one or the live one): the page
shows the session as it was after the slider's fraction of its batches, read again from Tiled
when the slider is let go; all the way right follows the newest.
"""

from __future__ import annotations

import uuid

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, ctx, dcc, html, no_update
from components.errors import guarded
from components.ids import CURRENT, LIVE_SHOWN, part_ids
from components.records import MapRef
from components.services import Callbacks, Services
from core.live.session import keep_open, list_sessions

STATUS_ID = "live-status"  # assets/live.js writes here
SCRUB_STEPS = 1000  # the time slider's resolution: 0.1 % of the points held


_id = part_ids("LiveAIO")


class LiveAIO(html.Div):
    class ids:
        switch = _id("switch")
        pause = _id("pause")
        replay = _id("replay")
        config = _id("config")
        message = _id("message")
        standby = _id("standby")
        poll = _id("poll")
        scrub = _id("scrub")

    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        super().__init__([
            dbc.Switch(id=self.ids.switch(aio_id), label="Live", value=False, className="me-2 mb-0 ms-live-switch"),
            dbc.Button("Pause", id=self.ids.pause(aio_id), size="sm", color="outline-secondary",
                       className="me-2 py-0 ms-live-pause", disabled=True),
            html.Span("off", id=STATUS_ID, className="small text-muted me-3", **{"data-points": "0"}),
            dcc.Dropdown(id=self.ids.replay(aio_id), placeholder="replay a stored live session",
                         className="ms-live-replay", style={"minWidth": "260px"}, clearable=True),
            html.Div(dcc.Slider(id=self.ids.scrub(aio_id), min=0, max=SCRUB_STEPS, step=1, value=SCRUB_STEPS,
                                marks=None, className="ms-live-scrub"),
                     title="time: the session as it was earlier (right: follow the newest)",
                     style={"width": "180px"}),
            html.Div(id=self.ids.message(aio_id), className="small ms-2"),
            dcc.Store(id=LIVE_SHOWN),
            dcc.Store(id=self.ids.config(aio_id)),
            dcc.Store(id=self.ids.standby(aio_id)),
            dcc.Interval(id=self.ids.poll(aio_id), interval=1000, disabled=True),
        ], className="d-flex align-items-center ms-live")


def start_or_stop(services: Services, on: bool, current: MapRef | None) -> dict | None:
    """The page's live config: a new session on the shown map, or None (stopped)."""
    runner = services.live()
    if not on:
        runner.stop(current)  # and warm up the next session on the shown map
        return None
    config = runner.start(current)
    keep_open(services.store, config["session"])  # for the first lasso over its points
    return config


def replay_config(services: Services, session_id: str) -> dict:
    meta = next((s for s in list_sessions(services.store()) if s["id"] == session_id), None)
    if meta is None:
        raise ValueError(f"no live session {session_id!r} in this project")
    keep_open(services.store, session_id)  # for the first lasso over its points
    return {"mode": "replay", "session": session_id, "token": services.live().token,
            "dims": int(meta.get("n_components", 2))}


def session_options(services: Services, current: MapRef | None) -> list[dict]:
    """Stored sessions of the shown map, newest first."""
    if not current:
        return []
    sessions = [s for s in list_sessions(services.store()) if s.get("projection_id") == current.get("projection_id")]
    return [{"label": f"{s['id']} ({s.get('stats', {}).get('processed', '?')} frames)", "value": s["id"]}
            for s in sessions]



callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)


@callbacks.callback(
    Output(LiveAIO.ids.config(MATCH), "data"),
    Output(LiveAIO.ids.message(MATCH), "children"),
    Output(LiveAIO.ids.pause(MATCH), "disabled"),
    Output(LiveAIO.ids.replay(MATCH), "value"),
    Output(LiveAIO.ids.switch(MATCH), "value"),
    Input(LiveAIO.ids.switch(MATCH), "value"),
    Input(LiveAIO.ids.replay(MATCH), "value"),
    State(CURRENT, "data"),
    prevent_initial_call=True,
)
def _switch(services: Services, on, replay, current: MapRef | None):
    if ctx.triggered_id and ctx.triggered_id.get("subcomponent") == "replay":
        if not replay:
            return None, None, True, no_update, no_update
        config, error = guarded("replay the live session", replay_config, services, replay)
        if error is not None:
            return no_update, error, True, no_update, no_update
        services.live().stop(current)
        return config, html.Span(f"Replaying {replay}", className="text-muted"), True, no_update, False
    config, error = guarded("start live mode" if on else "stop live mode", start_or_stop, services, on, current)
    if error is not None:
        return None, error, True, no_update, False
    if config is None:
        return None, None, True, no_update, no_update
    text = f"Live session {config['session']}: frames from {config['source']}"
    return config, html.Span(text, className="text-muted"), False, None, no_update


@callbacks.callback(Output(LiveAIO.ids.replay(MATCH), "options"), Input(CURRENT, "data"),
                    Input(LiveAIO.ids.config(MATCH), "data"))
def _sessions(services: Services, current: MapRef | None, _config):
    options, error = guarded("list the stored live sessions", session_options, services, current)
    return options if error is None else []


def warm_up(services: Services, current: MapRef | None, config: dict | None) -> str:
    """Start the shown map's session process (unless a session runs) and say how it is:
    "ready", "warming", "failed", "no map" or "in use". Never waits: the page asks again."""
    if config and config.get("mode") == "live":
        return "in use"
    state, error = guarded("prepare live mode", services.live().prepare, current)
    return "failed" if error is not None else state


@callbacks.callback(Output(LiveAIO.ids.standby(MATCH), "data"), Output(LiveAIO.ids.poll(MATCH), "disabled"),
                    Input(CURRENT, "data"), Input(LiveAIO.ids.config(MATCH), "data"),
                    Input(LiveAIO.ids.poll(MATCH), "n_intervals"))
def _warm_up(services: Services, current: MapRef | None, config, _tick):
    state = warm_up(services, current, config)
    return state, state != "warming"  # asked again each second while it warms up


callbacks.clientside(
    "function(standby) { if (window.morphoLive) { window.morphoLive.standby(standby || ''); } }",
    Input(LiveAIO.ids.standby(MATCH), "data"),
)

# A new config (or none) restarts the script's state, unpaused, following the newest point.
callbacks.clientside(
    """function(config) {
        if (window.morphoLive) { window.morphoLive.configure(config || null); }
        return ['Pause', %d];
    }""" % SCRUB_STEPS,
    Output(LiveAIO.ids.pause(MATCH), "children"),
    Output(LiveAIO.ids.scrub(MATCH), "value"),
    Input(LiveAIO.ids.config(MATCH), "data"),
)

callbacks.clientside(
    "function(value) { if (window.morphoLive) { window.morphoLive.scrub(value / %d); } }" % SCRUB_STEPS,
    Input(LiveAIO.ids.scrub(MATCH), "value"),
    prevent_initial_call=True,
)

callbacks.clientside(
    """function(n) {
        const paused = !(window.morphoLive && window.morphoLive.paused());
        if (window.morphoLive) { window.morphoLive.pause(paused); }
        return paused ? 'Resume' : 'Pause';
    }""",
    Output(LiveAIO.ids.pause(MATCH), "children", allow_duplicate=True),
    Input(LiveAIO.ids.pause(MATCH), "n_clicks"),
    prevent_initial_call=True,
)
