"""Jobs and Tiled → every panel: RESULTS_VERSION is bumped when a run this page followed
completed, or when the sidebar's poll finds results stored by anyone else, so selectors reload."""

from __future__ import annotations

import logging

from dash import ALL, Dash, Input, Output, State, no_update

from components.ids import RESULTS_VERSION
from components.jobs_panel import JobsAIO
from components.services import Services, bind
from components.sidebar import SidebarAIO, new_version

log = logging.getLogger(__name__)


def run_completed(_counts: list[int | None], version: int | None) -> int:
    """A run completed: the next version."""
    return (version or 0) + 1


def poll(services: Services, _n: int | None, seen: list[int] | None, version: int | None) -> int:
    """The next version when Tiled holds results the sidebar has not listed."""
    try:
        bumped = new_version(services.store(), seen, version)
    except Exception as exc:  # Tiled down or restarting: the service banner says so; next poll retries
        log.debug("results poll failed: %s", exc)
        bumped = None
    return no_update if bumped is None else bumped


def register(app: Dash, services: Services, *, sidebar: str) -> None:
    app.callback(Output(RESULTS_VERSION, "data", allow_duplicate=True),
                 Input(JobsAIO.ids.completed(ALL), "data"), State(RESULTS_VERSION, "data"),
                 prevent_initial_call=True)(run_completed)
    app.callback(Output(RESULTS_VERSION, "data", allow_duplicate=True),
                 Input(SidebarAIO.ids.poll(sidebar), "n_intervals"),
                 State(SidebarAIO.ids.seen(sidebar), "data"), State(RESULTS_VERSION, "data"),
                 prevent_initial_call=True)(bind(poll, services))
