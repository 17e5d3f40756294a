"""The inspect panel's views and callbacks without a browser: hints, alerts, export payloads."""

import base64
import io

import numpy as np
import pandas as pd
import pytest
from components import context
from components import inspect_panel as panel
from core.settings import Settings


def texts(component) -> str:
    """All text of a Dash component tree, for assertions."""
    if component is None or isinstance(component, (str, int, float)):
        return "" if component is None else str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(texts(c) for c in component)
    return texts(getattr(component, "children", None))


@pytest.fixture
def current(store):
    """A 6-frame map written to Tiled: frame i is constant i / 10, labels 0 0 1 1 -1 -1."""
    writer = store.dataset_writer(metadata={})
    writer.append(np.repeat(np.arange(6, dtype="float32") / 10, 4).reshape(6, 2, 2))
    dataset = writer.finish(pd.DataFrame({"index": range(6), "source": list("abcdef")}))
    mu = np.arange(12, dtype="float32").reshape(6, 2)
    return {
        "dataset_id": dataset,
        "latents_id": store.put("latents", arrays={"mu": mu}),
        "projection_id": store.put("projections", arrays={"embedding": mu[:, ::-1].copy()}),
        "clustering_id": store.put("clusterings", arrays={"labels": np.array([0, 0, 1, 1, -1, -1])}),
        "model_id": "m", "n_components": 2,
    }


def test_empty_selection_is_a_hint_not_an_error(store, current):
    """No selection: a hint to lasso, exports disabled, no statistics, no gallery frames."""
    view, disabled = panel.summary_view(store, None, current)
    assert "Lasso a region" in texts(view) and disabled
    assert panel.stats_view(store, {"indices": []}, current) == []
    assert "Lasso a region" in texts(panel.gallery_view(store, {"indices": []}, current, 1))


def test_views_show_counts_images_and_exports(store, current):
    """Frames 1, 2, 4: count 3, one per cluster and noise; CSV and NPY payloads of those rows."""
    selection = {"indices": [4, 1, 2], "how": "lasso"}
    view, disabled = panel.summary_view(store, selection, current)
    assert not disabled and "3 frames selected (50.0% of 6) · lasso" in texts(view).replace("  ", " ")
    assert "noise" in texts(view) and "cluster 1" in texts(view)
    stats = panel.stats_view(store, selection, current)
    assert "3 frames read in 1 request(s)" in texts(stats)
    assert "#1 · c0" in texts(panel.gallery_view(store, selection, current, 1))
    csv = panel.export_file(store, selection, current, "csv")
    table = pd.read_csv(io.StringIO(csv["content"]))
    assert table["index"].tolist() == [4, 1, 2] and table["cluster"].tolist() == [-1, 0, 1]
    npy = panel.export_file(store, selection, current, "npy")
    back = np.load(io.BytesIO(base64.b64decode(npy["content"])))
    assert back.tolist() == [[8, 9], [2, 3], [4, 5]] and npy["filename"].endswith("-latents.npy")


def test_failures_become_alerts_and_the_callbacks_return(store, current, monkeypatch):
    """A stale selection is a warning naming the range; an unreachable Tiled points at the banner."""
    monkeypatch.setattr(context, "store", lambda: store)
    stale = panel._stats({"indices": [2, 60]}, current)
    assert stale.color == "warning" and "outside [0, 5]" in texts(stale)
    monkeypatch.undo()
    monkeypatch.setattr(context, "_settings", Settings(tiled_uri="http://127.0.0.1:9/api/v1"))
    monkeypatch.setattr(context, "_store", None)
    down = panel._stats({"indices": [1]}, current)
    assert "ms-offline" in down.className and "Tiled is not reachable" in texts(down)
    summary, csv_disabled, npy_disabled = panel._summary({"indices": [1]}, current)
    assert "ms-offline" in summary.className and csv_disabled and npy_disabled
