"""The inspect panel's views and callbacks without a browser: hints, alerts, export payloads."""

import base64
import io

import numpy as np
import pandas as pd
import pytest
from components.services import Services
from components import inspect_panel as panel
from components import map_panel
from components.map_data import map_id
from core.live.session import LiveSession
from core.settings import Settings
from core.data.results import clusterings, latents, projections
from core.data.results.datasets import dataset_writer
from core.maps.projection import Projector


def texts(component) -> str:
    """All text of a Dash component tree, for assertions."""
    if component is None or isinstance(component, (str, int, float)):
        return "" if component is None else str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(texts(c) for c in component)
    return texts(getattr(component, "children", None))


def words(component) -> str:
    """Its text with runs of spaces made one."""
    return " ".join(texts(component).split())


def scales(component) -> list[tuple[str, float, float]]:
    """(class, black value, white value) of every intensity scale in a component tree."""
    if isinstance(component, (list, tuple)):
        return [found for c in component for found in scales(c)]
    if component is None or isinstance(component, (str, int, float)):
        return []
    own = []
    if "ms-intensity" in (getattr(component, "className", None) or "").split():
        props = component.to_plotly_json()["props"]
        own = [(component.className, float(props["data-vmin"]), float(props["data-vmax"]))]
    return own + scales(getattr(component, "children", None))


@pytest.fixture
def current(store):
    """A 6-frame map written to Tiled through the results' owners: frame i is constant i / 10,
    latents on a line, its PCA map, labels 0 0 1 1 -1 -1."""
    writer = dataset_writer(store, metadata={})
    writer.append(np.repeat(np.arange(6, dtype="float32") / 10, 4).reshape(6, 2, 2))
    dataset = writer.finish(pd.DataFrame({"index": range(6), "source": list("abcdef")}))
    mu = np.arange(12, dtype="float32").reshape(6, 2)
    links = {"dataset_id": dataset, "model_id": "m"}
    links["latents_id"] = latents.write_latents(store, mu, np.zeros_like(mu), links)
    projector = Projector("pca").fit(mu)
    links["projection_id"] = projections.write_projection(store, projector.embedding_, projector, links)
    labels = np.array([0, 0, 1, 1, -1, -1])
    clustering_id = clusterings.write_clustering(store, labels, (labels >= 0).astype(float), links)
    return {**links, "clustering_id": clustering_id, "n_components": 2}


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


def test_failures_become_alerts_and_the_callbacks_return(store, current):
    """A stale selection is a warning naming the range; an unreachable Tiled points at the banner."""
    services = Services.from_store(store)
    stale = panel._stats(services, {"indices": [2, 60]}, current)
    assert stale.color == "warning" and "outside [0, 5]" in texts(stale)
    services = Services.from_settings(Settings(tiled_uri="http://127.0.0.1:9/api/v1"))
    down = panel._stats(services, {"indices": [1]}, current)
    assert "ms-offline" in down.className and "Tiled is not reachable" in texts(down)
    summary, csv_disabled, npy_disabled = panel._summary(services, {"indices": [1]}, current)
    assert "ms-offline" in summary.className and csv_disabled and npy_disabled


@pytest.fixture
def session(store):
    """A live session of 4 stored points: row r is constant 0.2 (r + 1), frame 5 + r, clusters
    0, 1, 1, -1; the table appended in another order than the rows."""
    live = LiveSession.create(store, n_components=2, metadata={})
    live.put_images(np.arange(4), np.repeat(np.arange(1, 5, dtype="float32") / 5, 4).reshape(4, 2, 2))
    rows = [2, 0, 3, 1]
    live.append_points({"index": [5 + r for r in rows], "patch": [-1] * 4, "source": ["sim"] * 4,
                        "batch": [0] * 4, "row": rows, "x": np.zeros(4), "y": np.zeros(4),
                        "cluster": [[0, 1, 1, -1][r] for r in rows], "non_equilibrium": [np.nan] * 4,
                        "received": np.zeros(4), "processed": np.zeros(4)})
    return live


def test_live_selection_shows_its_stored_frames(store, current, session):
    """Live rows 1, 2, 3 (and 9, not stored yet): count 3 of 4, clusters 1 1 noise, mean 0.6 and
    std sqrt(0.08 / 3) = 0.163 of the images 0.4, 0.6, 0.8, gallery captions frame · cluster."""
    selection = {"indices": [], "how": "lasso", "live": {"session": session.id, "rows": [3, 1, 2, 9]}}
    view, disabled = panel.summary_view(store, selection, current)
    text = words(view)
    assert disabled and f"3 live frames selected (75.0% of 4 stored in {session.id}) · lasso" in text
    assert "1 more not stored yet" in text and "cluster 1 2" in text and "noise 1" in text
    source = panel.live_source(store, selection)
    assert source.rows.tolist() == [1, 2, 3] and source.frames.tolist() == [6, 7, 8]
    stats = panel.stats_view(store, selection, current)
    assert f"Live frames of {session.id}" in words(stats) and "3 frames read in 1 request(s)" in words(stats)
    assert [(lo, hi) for _, lo, hi in scales(stats)] == [(0.0, 1.0), (0.0, pytest.approx(0.163, abs=5e-4))]
    from core.maps.selection import mean_std_images

    mean, std, _ = mean_std_images(source.images, source.dataset_id, source.rows)
    assert np.allclose(mean, 0.6) and np.allclose(std, np.sqrt(0.08 / 3))
    gallery = words(panel.gallery_view(store, selection, current, 1))
    assert "live 6 · c1 live 7 · c1 live 8 · noise" in gallery and "frames 1–3 of 3" in gallery


def test_map_and_live_selection_shows_both(store, current, session):
    """Frame 1 of the map and live row 0: two counts, two titled mean/std pairs, one gallery."""
    selection = {"indices": [1], "how": "lasso", "live": {"session": session.id, "rows": [0]}}
    view, disabled = panel.summary_view(store, selection, current)
    assert not disabled and "1 frame selected (16.7% of 6)" in words(view)
    assert "1 live frame selected (25.0% of 4" in words(view) and "map's frames only" in words(view)
    stats = words(panel.stats_view(store, selection, current))
    assert "Map frames" in stats and f"Live frames of {session.id}" in stats
    assert "#1 · c0 live 5 · c0" in words(panel.gallery_view(store, selection, current, 1))
    assert panel.n_pages(selection) == 1


def test_lasso_over_live_points_splits_them_from_the_map(store, current):
    """selectedData with a map point and live points (one twice: its trace and the end marker)
    gives the map's index and the live rows; hovering a live point names no map frame."""
    view = {"key": map_id(current), "kind": "points", "n": 6, "shown": 6, "dims": 2}
    live = [{"curveNumber": c, "pointNumber": 0, "customdata": [r, 40 + r], "id": f"live:s-1:{r}"}
            for c, r in ((1, 3), (3, 3), (1, 0))]
    selected = {"points": [{"curveNumber": 0, "pointNumber": 2, "x": 0, "y": 0}, *live],
                "lassoPoints": {"x": [0, 1, 1], "y": [0, 0, 1]}}
    selection = map_panel.selection_from(store, current, selected, view)
    assert selection == {"indices": [2], "how": "lasso", "live": {"session": "s-1", "rows": [0, 3]}}
    assert map_panel.count_line(view, selection) == "6 points · 1 selected + 2 live"
    assert map_panel.event_frame(store, current, {"points": live[:1]}, view) is None
    with pytest.raises(ValueError, match="2 live sessions"):
        map_panel.split_live([*live, {"id": "live:s-2:0"}])


def test_every_image_states_its_intensity_scale(store, current):
    """Mean (0–1), std (0 to its largest pixel), gallery and neighbours each carry a black-to-white
    scale with the values its PNGs were drawn with; the std's top is that of frames 1, 2, 4."""
    selection = {"indices": [4, 1, 2], "how": "lasso"}
    stats = scales(panel.stats_view(store, selection, current))
    assert [(lo, hi) for _, lo, hi in stats] == [(0.0, 1.0), (0.0, pytest.approx(np.std([0.1, 0.2, 0.4]), abs=5e-4))]
    assert "ms-mean-scale" in stats[0][0] and "ms-std-scale" in stats[1][0]
    assert [(lo, hi) for _, lo, hi in scales(panel.gallery_view(store, selection, current, 1))] == [(0.0, 1.0)]
    assert [(lo, hi) for _, lo, hi in scales(panel.neighbours_view(store, {"index": 2}, current, k=3))] == [(0.0, 1.0)]
    assert "normalised intensity" in words(panel.gallery_view(store, selection, current, 1))


def test_a_map_without_clustering_says_not_clustered(store, current):
    """No clustering run: the composition reads "not clustered" (not "noise") and captions carry
    no cluster."""
    unclustered = {**current, "clustering_id": None}
    view, _ = panel.summary_view(store, {"indices": [0, 1, 4]}, unclustered)
    assert "not clustered 3" in words(view) and "noise" not in words(view)
    gallery = words(panel.gallery_view(store, {"indices": [0, 1]}, unclustered, 1))
    assert gallery.startswith("#0 #1 ") and "noise" not in gallery and "c0" not in gallery
