"""What the page's shared stores do without a browser: the results poll and the map callback's state."""

import numpy as np

from components import map_data
from components import map_panel as mp
from components import sidebar
from tests.test_map_figure import CURRENT, FakeStore


def test_poll_bumps_the_version_only_when_a_result_is_finished(store):
    """Nothing new: no bump; a half-written result: no bump; a finished one: the next version."""
    seen = sidebar.fingerprint(store)
    assert sidebar.new_version(store, seen, 4) is None
    writer = store.writer("projections", metadata={})
    writer.write_array("embedding", np.zeros((3, 2), dtype=np.float32))
    assert sidebar.new_version(store, seen, 4) is None
    writer.finish()
    assert sidebar.new_version(store, seen, 4) == 5
    assert sidebar.new_version(store, None, None) == 1  # never listed (Tiled was down): list now


def test_a_dropped_recolour_is_applied_by_the_next_call():
    """The colour asked for differs from the drawn one: any later call (a zoom) recolours."""
    map_data.clear()
    store = FakeStore()
    *_, view, _ = mp.draw(store, CURRENT, "cluster")
    zoom = {"xaxis.range[0]": -0.5, "xaxis.range[1]": 0.5}
    out = mp.update_map(lambda: store, {"graph"}, CURRENT, "frame", zoom, view)
    assert out[3].to_plotly_json()["operations"][0]["params"]["value"] == "frame"


def test_a_click_says_the_selection_stays():
    """A click names its frame; with frames selected it says they stay (in the right number)."""
    assert mp.click_message(12, None) == "Frame 12 clicked: “select k nearest” selects its neighbours."
    assert "The 298 frames selected before stay selected" in mp.click_message(3, {"indices": list(range(298))})
    assert "The 1 frame selected before stays selected" in mp.click_message(3, {"indices": [5]})
