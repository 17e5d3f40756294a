"""Live points in the page: a lasso takes folded live points too, and a replay reads a whole
session as one message (the browser side is in tests/test_browser_live.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from app.live import points_message
from components import map_panel
from core.live.session import LiveSession, keep_open
from streaming.messages import from_typed_array

CURRENT = {"projection_id": "p-1", "clustering_id": "c-1", "n_components": 2}
VIEW = {"key": "c-1", "kind": "points", "n": 0, "shown": 0, "dims": 2}
# Ten points in two batches, arrival position k at x = k: the table holds them in another order.
ARRIVAL = [(0, 3), (0, 1), (0, 2), (0, 0), (0, 4), (1, 9), (1, 5), (1, 6), (1, 8), (1, 7)]  # (batch, row)


def session_of_ten(store) -> LiveSession:
    live = LiveSession.create(store, n_components=2, metadata={})
    order = [3, 7, 0, 9, 5, 1, 8, 2, 6, 4]  # appended out of arrival order
    batch, row = (np.array([ARRIVAL[k][i] for k in order]) for i in (0, 1))
    # Arrival order is (batch, row): sorted, so x = arrival position of each appended point.
    position = {pair: k for k, pair in enumerate(sorted(ARRIVAL))}
    live.append_points({"index": 100 + row, "patch": [-1] * 10, "source": ["sim"] * 10, "batch": batch,
                        "row": row, "x": [position[(b, r)] for b, r in zip(batch, row)], "y": np.zeros(10),
                        "cluster": np.zeros(10, int), "non_equilibrium": [np.nan] * 10,
                        "received": 1000.0 + row, "processed": np.zeros(10)})
    return live


def test_a_lasso_takes_the_folded_live_points_it_covers_up_to_the_scrub(store):
    """The page shows the first 7 of 10 points (positions 0-6, x = position); a lasso over x in
    [-0.5, 4.5] takes positions 0-4 (rows 0-4), whether the page drew them as points or folded."""
    live = session_of_ten(store)
    drawn = [{"curveNumber": 1, "pointNumber": 0, "customdata": [4, 104], "id": f"live:{live.id}:4"}]
    selected = {"points": drawn, "lassoPoints": {"x": [-0.5, 4.5, 4.5, -0.5], "y": [-1, -1, 1, 1]}}
    shown = {"session": live.id, "upto": 7}
    selection = map_panel.selection_from(store, CURRENT, selected, VIEW, shown)
    assert selection == {"indices": [], "how": "lasso", "live": {"session": live.id, "rows": [0, 1, 2, 3, 4]}}
    everything = {"range": {"x": [-1, 20], "y": [-1, 1]}, "points": []}
    assert map_panel.selection_from(store, CURRENT, everything, VIEW, shown)["live"]["rows"] == [0, 1, 2, 3, 4, 5, 6]
    assert map_panel.selection_from(store, CURRENT, everything, VIEW, {**shown, "upto": 10})["live"]["rows"] == list(range(10))
    # Nothing shown (Live off): only the map's own points.
    assert map_panel.selection_from(store, CURRENT, everything, VIEW, None) == {"indices": [], "how": "box"}


def test_a_first_lasso_after_the_page_went_live_is_one_request_and_sees_new_rows(store):
    """The live panel looks a session up as the page starts showing it (``keep_open``): the first
    lasso then costs one request, the read (eight lookups before it took 0.25-0.8 s at load 6-8),
    and still takes the rows appended since."""
    live = session_of_ten(store)
    everything = {"range": {"x": [-1, 20], "y": [-1, 1]}, "points": []}
    shown = {"session": live.id, "upto": 100}
    keep_open(lambda: store, live.id).join()
    live.append_points({"index": [110, 111], "patch": [-1, -1], "source": ["sim"] * 2, "batch": [2, 2],
                        "row": [10, 11], "x": [10.0, 11.0], "y": [0.0, 0.0], "cluster": [0, 0],
                        "non_equilibrium": [np.nan] * 2, "received": [1010.0, 1011.0], "processed": [0.0, 0.0]})
    requests = []
    hooks = store.root.context.http_client.event_hooks
    hooks["request"] = [*hooks["request"], requests.append]
    try:
        rows = map_panel.selection_from(store, CURRENT, everything, VIEW, shown)["live"]["rows"]
    finally:
        hooks["request"] = [hook for hook in hooks["request"] if hook != requests.append]
    assert rows == list(range(12))
    assert [r.method for r in requests] == ["GET"], [str(r.url) for r in requests]


def test_the_web_process_imports_tiled_s_table_client_before_its_first_lasso():
    """Tiled's table client imports dask.dataframe (~0.7 s) when first needed: the map panel's
    import pays it, not the first lasso over live points (1.1 s against 0.2 s after)."""
    code = "import sys, components.map_panel; sys.exit(0 if 'tiled.client.dataframe' in sys.modules else 1)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr


def test_a_replay_is_one_message_in_arrival_order_with_times():
    """The replay route's message for a whole session: every row, sorted by (batch, row), with
    each frame's arrival time for the time slider."""
    rows = pd.DataFrame({"index": [12, 10, 11], "patch": [-1] * 3, "batch": [1, 0, 0], "row": [2, 0, 1],
                         "x": np.float32([2, 0, 1]), "y": np.float32([0, 0, 0]), "cluster": [0] * 3,
                         "non_equilibrium": [np.nan] * 3, "noise_floor": [np.nan] * 3, "ring": [""] * 3,
                         "source": ["s"] * 3, "received": [1002.5, 1000.5, 1001.5]})
    message = points_message(rows, "s-1", 0, None)
    assert message["n"] == 3 and message["seq"] == 1 and message["missing"] == 0
    assert from_typed_array(message["index"]).tolist() == [10, 11, 12]
    assert from_typed_array(message["received"]).tolist() == [1000.5, 1001.5, 1002.5]
    assert from_typed_array(message["coords"]).tolist() == [[0, 0], [1, 0], [2, 0]]


def test_a_gap_fill_brings_the_errors_of_its_batches_and_an_errors_only_batch_is_not_missing():
    """Batches 0-2 asked for: batch 1's frames all failed (it is in the errors table only), so
    none is missing; the errors of batches 1 and 2 come along, batch 3's does not (not asked)."""
    rows = pd.DataFrame({"index": [10, 13], "patch": [-1] * 2, "batch": [0, 2], "row": [0, 1],
                         "x": np.float32([0, 1]), "y": np.float32([0, 0]), "cluster": [0] * 2,
                         "non_equilibrium": [np.nan] * 2, "noise_floor": [np.nan] * 2, "ring": [""] * 2,
                         "source": ["s"] * 2, "received": [1000.0, 1003.0]})
    errors = pd.DataFrame({"index": [12, 11, -1, 14], "source": ["s"] * 4,
                           "reason": ["bad shape", "all NaN", "unreadable header", "late"],
                           "received": [1002.0, 1001.0, 1002.5, 1004.0], "batch": [1, 1, 2, 3]})
    message = points_message(rows, "s-1", 0, 2, errors)
    assert message["missing"] == 0 and message["seq"] == 2 and message["n"] == 2
    assert [(e["index"], e["reason"]) for e in message["errors"]] == [
        (11, "all NaN"), (12, "bad shape"), (None, "unreadable header")]
    assert points_message(rows, "s-1", 0, 2)["missing"] == 1  # without the errors table: batch 1 unseen
