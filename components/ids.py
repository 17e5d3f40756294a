"""Ids of the page-level stores that panels share. Panels' own ids live in their AIO classes."""

from collections.abc import Callable

# The values each store holds are typed in components.records; callbacks/ wires them between panels.
CURRENT = "current-map"  # MapRef of the map shown, or None
SELECTION = "selection"  # Selection (frames of the map, maybe live points), or None
CLICKED = "clicked-frame"  # Clicked: the frame last clicked on the map, or None
# int, bumped whenever a job completes or results appear in Tiled, so selectors reload what Tiled holds.
RESULTS_VERSION = "results-version"
# RunRecord of a run submitted by a panel other than the jobs panel, which then follows it like its own.
SUBMITTED = "submitted-run"
# LiveShown: which live points the page shows ({"session", "upto"}: the first upto of the session's
# points in arrival order), or None; assets/live.js writes it, a lasso on the map reads it.
LIVE_SHOWN = "live-shown"
# MapPoint of the last click on a 2-D map (empty space included in the synthesis panel's click mode).
MAP_POINT = "map-point"
# DrawnPath: the last path drawn on the map (Plotly's "draw open path"), for the synthesis panel.
DRAWN_PATH = "drawn-path"

# Clientside JS for clientside_callback: the triggered value of an ALL-pattern input, to a page store.
FORWARD_TRIGGERED = """function(values) {
    const t = dash_clientside.callback_context.triggered;
    if (!t || !t.length) { return dash_clientside.no_update; }
    const v = t[0].value;
    return v === undefined ? null : v;
}"""


def part_ids(component: str) -> Callable[[str], staticmethod]:
    """``_id = part_ids("InspectAIO")``, then in the AIO's ``ids`` class ``summary = _id("summary")``:
    ``InspectAIO.ids.summary(aio_id)`` is the pattern-matching id of that part of one instance."""
    def part(subcomponent: str) -> staticmethod:
        return staticmethod(lambda aio_id: {"component": component, "subcomponent": subcomponent, "aio_id": aio_id})
    return part
