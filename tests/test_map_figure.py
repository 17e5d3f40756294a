"""The map panel without a browser: figure building, colourings, density view, selection parsing,
and the panel's plain functions on an in-memory store."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from dash import no_update
from dash._utils import to_json

from components import map_figure as mf
from components import map_data
from components import map_panel as mp
from components import sidebar


def blobs(n: int, seed: int = 0, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 5, size=n)
    xy = rng.normal(size=(n, dims)) + labels[:, None] * 3.0
    return xy.astype(np.float32), labels


def trace_json(fig) -> list[dict]:
    return fig.to_plotly_json()["data"]


def decode(spec: dict) -> np.ndarray:
    dtypes = {v: k for k, v in mf._TYPED.items()}
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtypes[spec["dtype"]])


# -- the figure --------------------------------------------------------------------------------
def test_2d_map_is_one_scattergl_trace_of_typed_arrays():
    """Below the limit a 2-D map is one Scattergl whose coordinates and colours travel as bdata."""
    xy, labels = blobs(5000)
    fig, view = mf.map_figure(xy, mf.colouring("cluster", labels), uirevision="cl-1")
    data = trace_json(fig)
    assert [t["type"] for t in data] == ["scattergl"]
    assert view == mf.MapView("points", 5000, 5000, 2)
    trace = data[0]
    assert trace["x"]["dtype"] == "f4" and trace["y"]["dtype"] == "f4"
    assert trace["marker"]["color"]["dtype"] == "u1"
    assert "customdata" not in trace  # dcc.Graph drops typed customdata: frames come from pointNumber
    np.testing.assert_array_equal(decode(trace["x"]), xy[:, 0])
    assert fig.layout.dragmode == "lasso" and fig.layout.uirevision == "cl-1"


def test_figure_json_is_compact():
    """~17 bytes a point (base64 of 4+4+1), a tenth of the anchor's None-padded lists."""
    xy, labels = blobs(20_000)
    fig, _ = mf.map_figure(xy, mf.colouring("cluster", labels), uirevision="x")
    ours = len(to_json(fig))
    assert ours < 20_000 * 14 + 20_000  # payload + layout, template and colour bar
    anchor = {"data": [{"type": "scattergl", "x": np.where(labels == c, xy[:, 0], None).tolist(),
                        "y": np.where(labels == c, xy[:, 1], None).tolist()} for c in np.unique(labels)]}
    assert len(to_json(anchor)) > 5 * ours


def test_3d_map_is_one_scatter3d_with_an_empty_highlight_overlay():
    """3-D: one Scatter3d of every point and an empty overlay that later marks a selection."""
    xyz, labels = blobs(800, dims=3)
    fig, view = mf.map_figure(xyz, mf.colouring("frame", labels), uirevision="x")
    data = trace_json(fig)
    assert [t["type"] for t in data] == ["scatter3d", "scatter3d"]
    assert data[0]["z"]["dtype"] == "f4" and data[0]["marker"]["color"]["dtype"] == "u1"
    assert data[1]["customdata"] == [] and view.kind == "points" and view.dims == 3
    assert "dragmode" not in fig.to_plotly_json()["layout"]


def test_3d_map_past_the_limit_draws_a_fixed_sample():
    """Past the limit a 3-D map draws the same sample every time, and events map back to frames."""
    xyz, labels = blobs(3000, dims=3)
    fig, view = mf.map_figure(xyz, mf.colouring("cluster", labels), uirevision="x", limit=1000)
    assert view == mf.MapView("sampled", 3000, 1000, 3)
    sample = mf.sample_indices(3000, 1000)
    np.testing.assert_array_equal(decode(trace_json(fig)[0]["x"]), xyz[sample, 0])
    drawn = mf.drawn_frames(xyz, {"kind": "sampled", "n": 3000, "shown": 1000})
    assert mf.event_frames([{"curveNumber": 0, "pointNumber": 7}], drawn) == [int(sample[7])]


@pytest.mark.parametrize("bad", [np.zeros((5, 4)), np.zeros(5)])
def test_map_figure_refuses_other_shapes(bad):
    """Only (N, 2) and (N, 3) embeddings are maps."""
    with pytest.raises(ValueError, match="not \\(N, 2\\) or \\(N, 3\\)"):
        mf.map_figure(bad, mf.colouring("cluster", np.zeros(5, int)), uirevision="x")


# -- colourings --------------------------------------------------------------------------------
def test_cluster_colouring_is_categorical_with_grey_noise():
    """Codes index the sorted labels; noise is grey and named in the colour bar."""
    labels = np.array([3, -1, 0, 3, 7])
    c = mf.cluster_colouring(labels)
    assert c.categorical and c.title == "cluster" and c.codes.dtype == np.uint8
    np.testing.assert_array_equal(c.codes, [2, 0, 1, 2, 3])
    assert c.ticktext == ["noise", "0", "3", "7"] and c.tickvals == [0, 1, 2, 3]
    assert (c.cmin, c.cmax) == (-0.5, 3.5)
    assert c.colorscale[0][1] == mf.NOISE_GREY and c.colorscale[1][1] == mf.NOISE_GREY
    assert c.colorscale[2][1] != mf.NOISE_GREY


def test_an_unclustered_map_says_not_clustered_not_noise():
    """No clustering run: one grey entry "not clustered", in the colour bar, the density view and
    the hover card; a clustering's -1 points stay "noise"."""
    current = {**CURRENT, "clustering_id": None}
    store = FakeStore()
    fig, _, _, view, _ = mp.draw(store, current, "cluster")
    bar = fig.data[0].marker.colorbar
    assert list(bar.ticktext) == ["not clustered"] and "noise" not in json.dumps(fig.to_plotly_json()["data"])
    assert "not clustered" in json.dumps([c.to_plotly_json() for c in mp.hover_card(store, current, 7)], default=str)
    density, _ = mf.map_figure(store.xy, mf.colouring("cluster", store.labels, clustered=False), uirevision="p",
                               limit=100, cap=100)
    assert list(density.data[1].colorbar.ticktext) == ["not clustered"]
    clustered, *_ = mp.draw(store, CURRENT, "cluster")
    assert list(clustered.data[0].marker.colorbar.ticktext)[0] == "noise"


def test_many_clusters_get_two_byte_codes_and_a_readable_colour_bar():
    """300 clusters: uint16 codes and at most ~30 ticks."""
    c = mf.cluster_colouring(np.arange(300))
    assert c.codes.dtype == np.uint16 and len(c.tickvals) <= 30


def test_continuous_colouring_quantises_to_bytes_with_real_tick_labels():
    """Frame index 0..199: codes 0..254, round ticks labelled in frames."""
    c = mf.continuous_colouring(np.arange(200), "frame index")
    assert c.codes.dtype == np.uint8 and c.codes.min() == 0 and c.codes.max() == 254
    assert c.ticktext == ["0", "50", "100", "150"]
    np.testing.assert_allclose(c.tickvals, [0, 50 / 199 * 254, 100 / 199 * 254, 150 / 199 * 254])
    assert not c.categorical and c.colorbar()["title"]["text"] == "frame index"


def test_missing_values_are_grey():
    """NaN gets code 255, a grey end of the scale and a "missing" tick."""
    c = mf.continuous_colouring(np.array([1.0, np.nan, 3.0]), "dose")
    assert c.codes.tolist() == [0, 255, 254]
    assert c.colorscale[-1][1] == mf.MISSING_GREY and c.ticktext[-1] == "missing" and c.cmax == 255


def test_colour_options_are_cluster_frame_and_numeric_columns():
    """Text columns and the index column are not offered; numbers and booleans are."""
    frames = pd.DataFrame({"index": [0, 1], "source": ["a", "b"], "time": [0.1, 0.2], "ok": [True, False]})
    values = [o["value"] for o in mf.colour_options(frames)]
    assert values == ["cluster", "frame", "column:time", "column:ok"]


def test_colouring_by_column_and_unknown_column():
    """A column colours by its values; an unknown one says which exist."""
    frames = pd.DataFrame({"time": [5.0, 6.0, 7.0]})
    c = mf.colouring("column:time", np.zeros(3, int), frames)
    assert c.title == "time" and c.codes.tolist() == [0, 127, 254]
    with pytest.raises(ValueError, match="no frames column 'dose'.*known: cluster, frame index, time"):
        mf.colouring("column:dose", np.zeros(3, int), frames)
    with pytest.raises(ValueError, match="colour='rainbow' must be"):
        mf.colouring("rainbow", np.zeros(3, int))


@pytest.mark.parametrize("lo,hi,expected", [(0, 199, [0, 50, 100, 150]), (0.013, 0.051, [0.02, 0.03, 0.04, 0.05]),
                                            (5, 5, [5])])
def test_nice_ticks(lo, hi, expected):
    """Ticks at 1, 2 or 5 × 10^k inside the range."""
    np.testing.assert_allclose(mf.nice_ticks(lo, hi), expected)


@pytest.mark.parametrize("dtype,code", [(np.float32, "f4"), (np.uint8, "u1"), (np.int32, "i4"), (np.uint16, "u2")])
def test_typed_array_round_trip(dtype, code):
    """What a Patch sends decodes to the same numbers."""
    a = np.arange(10).astype(dtype)
    spec = mf.typed_array(a)
    assert spec["dtype"] == code
    np.testing.assert_array_equal(decode(spec), a)
    assert mf.typed_array(np.zeros((2, 3), np.float32))["shape"] == "2, 3"
    with pytest.raises(ValueError, match="no plotly.js typed array"):
        mf.typed_array(np.zeros(2, np.int64))


# -- density view ------------------------------------------------------------------------------
def test_density_switch_at_the_limit():
    """N = limit: points; N = limit + 1: a heatmap (and the extent anchors), much lighter."""
    xy, labels = blobs(2001)
    colour = mf.colouring("cluster", labels)
    fig, view = mf.map_figure(xy[:2000], mf.colouring("cluster", labels[:2000]), uirevision="x",
                              limit=2000, cap=500)
    assert view.kind == "points" and [t["type"] for t in trace_json(fig)] == ["scattergl"]
    fig, view = mf.map_figure(xy, colour, uirevision="x", limit=2000, cap=500)
    assert view == mf.MapView("density", 2001, 0, 2)
    types = [t["type"] for t in trace_json(fig)]
    assert types == ["scatter", "heatmap"]
    heat = trace_json(fig)[1]
    assert heat["z"]["dtype"] == "f4" and heat["z"]["shape"] == f"{mf.BINS}, {mf.BINS}"
    assert heat["colorbar"]["title"]["text"] == "cluster"


def test_default_limits_come_from_the_module():
    """The limit and window cap are read when called (the bench changes them)."""
    assert mf.WINDOW_POINTS_CAP <= mf.POINTS_LIMIT * 10
    xy, labels = blobs(100)
    _, view = mf.map_figure(xy, mf.colouring("cluster", labels), uirevision="x")
    assert view.kind == "points"


def test_zooming_in_the_density_view_draws_the_window_points():
    """A window with few points: those points, and pointNumber maps back to their frames."""
    xy, labels = blobs(5000)
    colour = mf.colouring("cluster", labels)
    window = mf.Window((-0.5, 0.5), (-0.5, 0.5))
    traces, shown = mf.density_traces(xy, colour, window, cap=1000)
    assert [t.type for t in traces] == ["scatter", "scattergl"]
    frames = mf.window_points(xy, window, cap=1000)
    assert shown == len(frames) > 0
    assert mf.in_window(xy[frames], window, pad=0.5).all()
    view = {"kind": "density", "window": window.to_dict()}
    drawn = {1: mf.window_points(xy, window, cap=1000)}
    assert mf.event_frames([{"curveNumber": 1, "pointNumber": 3}], drawn) == [int(frames[3])]
    assert mf.event_frames([{"curveNumber": 0, "pointNumber": 1}], drawn) == []  # an anchor
    assert set(mf.drawn_frames(xy, view)) <= {1}


def test_binned_dominant_cluster_and_mean():
    """Each bin shows its most common cluster, or its mean code; empty bins are NaN."""
    xy = np.array([[0.1, 0.1], [0.2, 0.1], [0.15, 0.2], [0.9, 0.9]])
    codes = np.array([2, 2, 1, 0], dtype=np.uint8)
    z = mf.binned(xy, codes, (0, 1), (0, 1), 2, True, 3)
    assert z[0, 0] == 2 and z[1, 1] == 0 and np.isnan(z[0, 1]) and np.isnan(z[1, 0])
    z = mf.binned(xy, codes, (0, 1), (0, 1), 2, False, 256)
    assert z[0, 0] == pytest.approx(5 / 3)
    many = mf.binned(xy, codes.astype(np.uint16), (0, 1), (0, 1), 2000, True, 10_000)  # sparse path
    assert np.nansum(~np.isnan(many)) == 4


@pytest.mark.parametrize("relayout,expected", [
    ({"xaxis.range[0]": 1, "xaxis.range[1]": 2, "yaxis.range[0]": 3, "yaxis.range[1]": 4}, ((1, 2), (3, 4))),
    ({"xaxis.range": [1, 2]}, ((1, 2), (7, 8))),
    ({"xaxis.autorange": True, "yaxis.autorange": True}, (None, None)),
    ({"selections": [{"type": "path"}]}, "unchanged"),
    ({"autosize": True}, "unchanged"),
    (None, "unchanged"),
])
def test_window_from_relayout(relayout, expected):
    """Zoom, pan and autoscale move the window; drawing a selection or resizing does not."""
    got = mf.window_from_relayout(relayout, mf.Window((5, 6), (7, 8)))
    if expected == "unchanged":
        assert got is None
    else:
        assert (got.x, got.y) == expected


# -- selection ---------------------------------------------------------------------------------
def test_selection_of_drawn_points_uses_point_numbers():
    """All-points view: pointNumber is the frame; the lasso names how."""
    selected = {"points": [{"curveNumber": 0, "pointNumber": 9}, {"curveNumber": 0, "pointNumber": 2},
                           {"curveNumber": 0, "pointNumber": 9}],
                "lassoPoints": {"x": [0, 1, 1], "y": [0, 0, 1]}}
    assert mf.parse_selection(selected, {0: None}) == {"indices": [2, 9], "how": "lasso"}
    box = {"points": [{"curveNumber": 0, "pointNumber": 4}], "range": {"x": [0, 1], "y": [0, 1]}}
    assert mf.parse_selection(box, {0: None}) == {"indices": [4], "how": "box"}
    assert mf.parse_selection(None, {0: None}) is None
    assert mf.parse_selection({"points": [{"customdata": [12, "x"]}]}, {}) == {"indices": [12], "how": "click"}


def test_density_selection_uses_the_shape_on_every_point():
    """Density view: the lasso or box applies to all points, drawn or not."""
    xy, _ = blobs(3000)
    lasso = {"points": [], "lassoPoints": {"x": [-1, 1, 1, -1], "y": [-1, -1, 1, 1]}}
    got = mf.parse_selection(lasso, {}, embedding=xy)
    expected = np.flatnonzero((np.abs(xy) <= 1).all(axis=1)).tolist()
    assert got == {"indices": expected, "how": "lasso"} and len(expected) > 10
    box = {"points": [], "range": {"x": [1, -1], "y": [-1, 1]}}
    assert mf.parse_selection(box, {}, embedding=xy)["indices"] == expected


def test_points_in_polygon_matches_a_plain_ray_cast():
    """A concave polygon, against a point-by-point even-odd test."""
    rng = np.random.default_rng(1)
    xy = rng.uniform(-1, 2, size=(4000, 2))
    poly = np.array([[0, 0], [1, 0], [1, 1], [0.5, 0.3], [0, 1]])

    def inside(x, y):
        result, j = False, len(poly) - 1
        for i in range(len(poly)):
            (xi, yi), (xj, yj) = poly[i], poly[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                result = not result
            j = i
        return result

    expected = np.array([inside(x, y) for x, y in xy])
    np.testing.assert_array_equal(mf.points_in_polygon(xy, poly), expected)
    assert not mf.points_in_polygon(xy, poly[:2]).any()


def test_parse_svg_path():
    """A plotly selection path as vertices."""
    np.testing.assert_array_equal(mf.parse_svg_path("M1,2L3.5,-4L5,6Z"), [[1, 2], [3.5, -4], [5, 6]])


# -- the panel's plain functions on an in-memory store -----------------------------------------
class FakeStore:
    """Just what the map panel reads from core.data.store.Store (through the result owners)."""

    project = "fake"

    def __init__(self, n=300, dims=2, fail=None):
        self.xy, self.labels = blobs(n, dims=dims)
        self.mu = np.random.default_rng(2).normal(size=(n, 4)).astype(np.float32)
        self.frames_table = pd.DataFrame({"index": np.arange(n), "source": [f"/data/f{i}.tif" for i in range(n)],
                                          "time": np.arange(n) * 0.5})
        self.fail = fail
        self.projector = None  # the projection's "projector" metadata, None: not recorded

    def array(self, kind, id, name, index=slice(None)):
        if self.fail:
            raise RuntimeError(self.fail)
        if name == "images":  # a frame of the dataset
            return np.random.default_rng(index).random((1, 40, 40), dtype=np.float32)
        return {"embedding": self.xy, "labels": self.labels, "mu": self.mu}[name][index]

    def table(self, kind, id, name):
        assert (kind, name) == ("datasets", "frames")
        return self.frames_table

    def metadata(self, kind, id):
        if kind == "projections" and self.projector is not None:
            return {"projector": self.projector}
        return {"name": "fake frames"}


CURRENT = {"clustering_id": "cl-1", "projection_id": "proj-1", "latents_id": "lat-1",
           "dataset_id": "ds-1", "model_id": "m-1", "n_components": 2}


@pytest.fixture(autouse=True)
def _fresh_caches():
    map_data.clear()
    yield


def test_draw_builds_the_map_options_and_view():
    """A new map: one trace, the numeric columns as colour options, a points view."""
    fig, options, colour, view, error = mp.draw(FakeStore(), CURRENT, "column:gone")
    assert colour == "cluster" and error is None  # a column the new map lacks falls back
    assert [o["value"] for o in options] == ["cluster", "frame", "column:time"]
    assert view["kind"] == "points" and view["n"] == 300 and view["key"] == "cl-1"
    assert len(fig.data) == 1 and fig.layout.uirevision == "cl-1"


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_map_axes_are_named_by_method_and_component(method):
    """Axes read "UMAP 1"/"UMAP 2", or "PC k (share %)" from the variance the fit recorded
    (latent variances 9 : 4 : 1 give PC 1 64 % and PC 2 29 %); 3-D names its z axis too."""
    from core.maps.projection import Projector

    a = np.random.default_rng(0).normal(size=(2000, 3))
    q, _ = np.linalg.qr(a - a.mean(axis=0))  # orthogonal, zero-mean columns of equal variance
    latents = q * [3.0, 2.0, 1.0]
    _, params = Projector(method, n_neighbors=5).fit(latents[:300] if method == "umap" else latents).to_arrays()
    store = FakeStore()
    store.projector = params
    fig, *_ = mp.draw(store, CURRENT, "cluster")
    titles = fig.layout.xaxis.title.text, fig.layout.yaxis.title.text
    assert titles == (("PC 1 (64 %)", "PC 2 (29 %)") if method == "pca" else ("UMAP 1", "UMAP 2"))
    fig3, _ = mf.map_figure(store.xy[:, [0, 1, 0]], mf.colouring("frame", store.labels), uirevision="x",
                            axes=mf.axis_titles({"method": method}, 3))
    assert fig3.layout.scene.zaxis.title.text == ("PC 3" if method == "pca" else "UMAP 3")


def test_older_projections_without_recorded_variance_get_plain_axes():
    """A PCA projection without explained variance: "PC 2"; no projector record at all: "axis 2"."""
    assert mf.axis_titles({"method": "pca"}, 2) == ["PC 1", "PC 2"]
    assert mf.axis_titles(None, 2) == ["axis 1", "axis 2"]
    fig, *_ = mp.draw(FakeStore(), CURRENT, "cluster")
    assert fig.layout.yaxis.title.text == "axis 2"
    assert mf.axis_titles({"method": "pca", "explained_variance_ratio": [0.9, 0.004]}, 2) == ["PC 1 (90 %)",
                                                                                             "PC 2 (0.4 %)"]


def test_a_projection_without_clustering_is_a_map():
    """No clustering yet: every point is noise, the map is keyed by the projection, and a note says so."""
    current = {**CURRENT, "clustering_id": None}
    fig, _, _, view, note = mp.draw(FakeStore(), current, "cluster")
    assert view["key"] == "proj-1" and view["n"] == 300
    assert (map_data.load_map(FakeStore(), current).labels == -1).all()
    assert "no clustering yet" in str(note.children)


class ListingStore:
    """Just ``list`` of core.data.store.Store, newest first."""

    def __init__(self, **kinds):
        self.kinds = kinds

    def list(self, kind):
        return [{"complete": True, **item} for item in self.kinds.get(kind, [])]


def test_sidebar_prefers_the_newest_clustered_map():
    """A newer projection without clusters is offered but a clustered one is shown by default."""
    store = ListingStore(
        datasets=[{"id": "ds"}],
        models=[{"id": "m", "dataset_id": "ds"}],
        projections=[{"id": "p-new", "dataset_id": "ds", "model_id": "m"},
                     {"id": "p-old", "dataset_id": "ds", "model_id": "m"}],
        clusterings=[{"id": "c", "projection_id": "p-old", "model_id": "m", "dataset_id": "ds"}])
    options, chosen = sidebar.resolve(store, dict.fromkeys(sidebar.LEVELS))
    assert chosen == {"datasets": "ds", "models": "m", "projections": "p-old", "clusterings": "c"}
    assert [o["value"] for o in options["projections"]] == ["p-new", "p-old"]
    options, chosen = sidebar.resolve(store, {**chosen, "projections": "p-new"})  # the user's choice stays
    assert chosen["projections"] == "p-new" and chosen["clusterings"] is None and options["clusterings"] == []


def test_sidebar_offers_the_generator_that_mapped_a_generated_dataset():
    """A GAN map's dataset was generated, not trained on: its model is offered through its projection."""
    store = ListingStore(
        datasets=[{"id": "ds-gan"}, {"id": "ds-real"}],
        models=[{"id": "m-gan", "dataset_id": "ds-real"}, {"id": "m-vae", "dataset_id": "ds-real"}],
        projections=[{"id": "p-gan", "dataset_id": "ds-gan", "model_id": "m-gan"}])
    options, chosen = sidebar.resolve(store, {**dict.fromkeys(sidebar.LEVELS), "datasets": "ds-gan"})
    assert [o["value"] for o in options["models"]] == ["m-gan"] and chosen["projections"] == "p-gan"
    options, _ = sidebar.resolve(store, {**dict.fromkeys(sidebar.LEVELS), "datasets": "ds-real"})
    assert [o["value"] for o in options["models"]] == ["m-gan", "m-vae"]


def test_a_missing_frames_table_is_said_not_fatal():
    """No frames table: the map shows, with a warning, and colours by cluster or frame only."""
    store = FakeStore()
    store.table = lambda kind, id, name: (_ for _ in ()).throw(KeyError("frames"))
    fig, options, _, view, note = mp.draw(store, CURRENT, "cluster")
    assert view["n"] == 300 and [o["value"] for o in options] == ["cluster", "frame"]
    assert note.color == "warning" and "No frames table for dataset ds-1" in note.children


def test_update_map_shows_an_alert_when_loading_fails():
    """A store error gives an empty map and a readable alert, never an exception."""
    out = mp.update_map(lambda: FakeStore(fail="Tiled said no"), {"current"}, CURRENT, "cluster", None, None)
    figure, _, _, view, error, selection = out
    assert view is None and selection is None
    assert "Tiled said no" in json.dumps(error.to_plotly_json(), default=str)
    assert error.color == "danger"


def test_recolour_patches_only_the_marker():
    """A colouring change is a Patch of marker colours (typed), not a new figure."""
    store = FakeStore()
    *_, view, _ = mp.draw(store, CURRENT, "cluster")
    out = mp.update_map(lambda: store, {"colour"}, CURRENT, "frame", None, view)
    patch = out[0].to_plotly_json()
    [operation] = patch["operations"]
    assert operation["location"] == ["data", 0, "marker"]
    assert operation["params"]["value"]["color"]["dtype"] == "u1"
    assert operation["params"]["value"]["colorbar"]["title"]["text"] == "frame index"
    assert out[1] is no_update and out[5] is no_update
    assert mp.update_map(lambda: store, {"colour"}, CURRENT, "cluster", None, view) is None  # unchanged
    assert mp.update_map(lambda: store, {"current"}, CURRENT, "cluster", None, view) is None  # same map again


def test_zoom_redraws_only_the_density_view():
    """Zoom in the points view: nothing; in the density view: a Patch of the data."""
    store = FakeStore(n=3000)
    *_, view, _ = mp.draw(store, CURRENT, "cluster")
    zoom = {"xaxis.range[0]": -0.5, "xaxis.range[1]": 0.5, "yaxis.range[0]": -0.5, "yaxis.range[1]": 0.5}
    assert mp.update_map(lambda: store, {"graph"}, CURRENT, "cluster", zoom, view) is None
    density = {**view, "kind": "density"}
    out = mp.update_map(lambda: store, {"graph"}, CURRENT, "cluster", zoom, density)
    ops = out[0].to_plotly_json()["operations"]
    assert ops[0]["location"] == ["data"] and ops[0]["params"]["value"][1]["type"] == "scattergl"
    assert mp.update_map(lambda: store, {"graph"}, CURRENT, "cluster", {"autosize": True}, density) is None
    # the map arriving together with the first resize is drawn, not dropped
    out = mp.update_map(lambda: store, {"current", "graph"}, CURRENT, "cluster", {"autosize": True}, None)
    assert out[3]["kind"] == "points"
    # a resize alone, while the map is on its way (its answer is dropped by the browser): drawn too
    out = mp.update_map(lambda: store, {"graph"}, CURRENT, "cluster", {"autosize": True}, None)
    assert out[3]["kind"] == "points" and out[3]["key"] == CURRENT["clustering_id"]


def test_selection_and_click_map_points_to_frames():
    """selectedData and clickData become SELECTION and a frame index."""
    store = FakeStore()
    *_, view, _ = mp.draw(store, CURRENT, "cluster")
    selected = {"points": [{"curveNumber": 0, "pointNumber": 5}], "range": {"x": [0, 1], "y": [0, 1]}}
    assert mp.selection_from(store, CURRENT, selected, view) == {"indices": [5], "how": "box"}
    assert mp.event_frame(store, CURRENT, {"points": [{"curveNumber": 0, "pointNumber": 17}]}, view) == 17
    assert mp.event_frame(store, CURRENT, {"points": []}, view) is None
    stale = {**view, "key": "another map"}
    assert mp.event_frame(store, CURRENT, {"points": [{"curveNumber": 0, "pointNumber": 17}]}, stale) is None


def test_nearest_neighbours_in_latent_space():
    """k frames nearest the clicked one in mu, itself first, matching a brute-force search."""
    store = FakeStore()
    selection, message = mp.neighbour_selection(store, CURRENT, {"index": 10}, 6)
    distances = np.linalg.norm(store.mu - store.mu[10], axis=1)
    assert selection["how"] == "neighbours" and selection["indices"][0] == 10
    assert set(selection["indices"]) == set(np.argsort(distances)[:6].tolist())
    assert "6 frames nearest to frame 10" in message


@pytest.mark.parametrize("k,message", [
    (0, r"k=0 must be a whole number between 1 and 5000"),
    (5001, r"k=5001 must be a whole number between 1 and 5000"),
    (2.5, r"k=2.5 must be"),
    (None, r"k=None must be"),
    (301, r"k=301 is more than the 300 frames of this map"),
])
def test_k_out_of_range_is_refused_clearly(k, message):
    """k outside 1..5000 (or past N) is refused with the allowed range."""
    with pytest.raises(ValueError, match=message):
        mp.neighbour_selection(FakeStore(), CURRENT, {"index": 0}, k)


def test_neighbours_need_a_clicked_frame():
    """Without a click the message says what to do (after naming a bad k, if any)."""
    with pytest.raises(ValueError, match="Click a frame on the map first"):
        mp.neighbour_selection(FakeStore(), CURRENT, None, 5)
    with pytest.raises(ValueError, match="k=0 must be"):
        mp.neighbour_selection(FakeStore(), CURRENT, None, 0)


def test_highlight_marks_neighbours_but_not_lassos():
    """2-D: selectedpoints for a neighbour selection; nothing for a lasso (Plotly shows it)."""
    store = FakeStore()
    *_, view, _ = mp.draw(store, CURRENT, "cluster")
    fig, new_view = mp.highlight(store, CURRENT, {"indices": [3, 4], "how": "neighbours"}, view)
    assert fig.to_plotly_json()["operations"][0]["params"]["value"] == [3, 4]
    assert mp.highlight(store, CURRENT, {"indices": [3], "how": "lasso"}, view) is None
    assert mp.highlight(store, CURRENT, None, view) is None  # nothing marked, nothing to clear
    cleared, _ = mp.highlight(store, CURRENT, None, {**view, "highlight": True})
    assert cleared.to_plotly_json()["operations"][0]["params"]["value"] is None


def test_highlight_in_3d_fills_the_overlay():
    """3-D: the overlay trace gets the selected points and their frame indices."""
    store = FakeStore(dims=3)
    *_, view, _ = mp.draw(store, {**CURRENT, "n_components": 3}, "cluster")
    fig, _ = mp.highlight(store, CURRENT, {"indices": [1, 2], "how": "neighbours"}, view)
    ops = {tuple(o["location"]): o["params"]["value"] for o in fig.to_plotly_json()["operations"]}
    assert ops[("data", 1, "customdata")] == [1, 2]
    np.testing.assert_array_equal(decode(ops[("data", 1, "x")]), store.xy[[1, 2], 0])


def test_hover_card_has_thumbnail_cluster_and_metadata():
    """Thumbnail, frame, cluster and the frame's metadata."""
    store = FakeStore()
    text = json.dumps([c.to_plotly_json() for c in mp.hover_card(store, CURRENT, 7)], default=str)
    label = int(store.labels[7])
    assert "frame 7" in text and ("noise" if label < 0 else f"cluster {label}") in text
    assert "/data/f7.tif" in text and "time: 3.5" in text
    assert re.search(r"data:image/png;base64,", text)


def test_count_line():
    """N points · M selected, and a note when not every point is drawn."""
    view = {"n": 1_000_000, "kind": "density", "shown": 0}
    assert mp.count_line(view, {"indices": [1, 2, 3]}).startswith("1,000,000 points · 3 selected · density view")
    assert mp.count_line({"n": 200, "kind": "points", "shown": 200}, None) == "200 points · 0 selected"
    assert mp.count_line(None, None) == ""
