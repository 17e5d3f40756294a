"""Ids of the page-level stores that panels share. Panels' own ids live in their AIO classes."""

from collections.abc import Callable

# dcc.Store: {"clustering_id" (or None), "projection_id", "latents_id", "dataset_id", "model_id",
#             "n_components"} of the map shown, or None.
CURRENT = "current-map"
# dcc.Store: {"indices": [int, ...], "how": "lasso" | "box" | "click" | "neighbours"}, or None;
#             live points selected too add "live": {"session": id, "rows": [int, ...]}.
SELECTION = "selection"
# dcc.Store: {"index": int} of the frame last clicked on the map, or None.
CLICKED = "clicked-frame"
# dcc.Store: int, bumped whenever a job completes, so selectors reload what Tiled holds.
RESULTS_VERSION = "results-version"
# dcc.Store: a run submitted by a panel other than the jobs panel ({"id", "job", "flow", "kind",
#             "label", "submitted"}), which the jobs panel then follows like its own.
SUBMITTED = "submitted-run"

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
