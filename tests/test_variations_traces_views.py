"""The per-particle trace views on hand-made tables: modes' dendrogram, area histogram with its mean,
box plots per mode, one mode's traces highlighted on a reference, and the CSV of every trace."""

from __future__ import annotations

import base64
import io
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from components import trace_views as tv
from core.variations.clusters import hac

UNITS = {"area": "nm²", "anisotropy": "", "tortuosity": ""}


def traces() -> pd.DataFrame:
    """Six traces of two references in three modes; areas 100 … 600 nm² (mean 350; squared deviations 2·(50² + 150² + 250²) = 175000, sd √(175000/5))."""
    return pd.DataFrame({
        "reference": [0, 0, 0, 1, 1, 1], "particle": [1, 2, 3, 1, 2, 3],
        "area": [100.0, 200.0, 300.0, 400.0, 500.0, 600.0],
        "anisotropy": [1.0, 1.1, 3.0, 3.2, 1.5, 1.4], "tortuosity": [1.0, 1.05, 1.1, 1.0, 2.0, 2.1],
        "centroid_y": [2.0, 5.0, 8.0, 2.0, 5.0, 8.0], "centroid_x": [1.0] * 6, "n_pixels": [9, 12, 15, 9, 12, 15],
        "mode": [0, 0, 1, 1, 2, 2],
    })


def test_area_histogram_shows_the_mean_with_its_unit():
    """The dashed line sits at the mean area, 350 nm²; the title gives mean ± sd and the count."""
    fig = tv.area_histogram(traces(), UNITS)
    [line] = fig.layout.shapes
    assert line.x0 == line.x1 == pytest.approx(350.0)
    assert fig.layout.title.text == f"Diffusion area: mean 350 ± {np.sqrt(35000):.4g} nm² over 6 traces"
    assert fig.layout.xaxis.title.text == "area (nm²)" and list(fig.data[0].x) == [100, 200, 300, 400, 500, 600]


def test_box_plots_one_box_per_mode_and_descriptor():
    """Three panels (area, anisotropy, tortuosity), three modes each; mode 2's areas are 500 and 600."""
    fig = tv.mode_boxes(traces(), UNITS)
    assert [a.text for a in fig.layout.annotations] == ["area", "anisotropy", "tortuosity"]
    assert [fig.layout[k].title.text for k in ("yaxis", "yaxis2", "yaxis3")] == ["nm²", "ratio", "ratio"]
    assert len(fig.data) == 9 and [t.name for t in fig.data[:3]] == ["mode 0", "mode 1", "mode 2"]
    assert list(fig.data[2].y) == [500.0, 600.0] and list(fig.data[5].y) == [1.5, 1.4]


def test_dendrogram_has_a_leaf_per_trace_coloured_by_mode():
    """Six leaves; each leaf's colour is its trace's mode's, its hover names reference and particle."""
    table = traces()
    _, linkage = hac(table[["anisotropy", "tortuosity"]].to_numpy(), n_clusters=3)
    fig = tv.modes_dendrogram(table, linkage)
    leaves = fig.data[1]
    assert len(leaves.x) == 6
    for name, colour in zip(leaves.customdata, leaves.marker.color):
        reference, particle = int(name.split()[0][1:]), int(name.split()[3])
        mode = table.set_index(["reference", "particle"]).loc[(reference, particle), "mode"]
        assert colour == tv.mode_colour(mode) and name.endswith(f"mode {mode}")


def test_one_modes_traces_are_tinted_and_outlined_on_the_reference():
    """A 3 × 3 trace (particle 1) highlighted: its 8 border pixels in the mode's colour, its centre
    0.55 · grey + 0.45 · colour; particle 2's trace and the background stay grey."""
    reference = np.full((1, 7, 7), 0.5)
    labels = np.zeros((7, 7), np.int32)
    labels[1:4, 1:4] = 1
    labels[5:7, 5:7] = 2
    rgb = tv.mode_overlay(reference, labels, [1], "#ff0000")
    assert rgb.shape == (3, 7, 7)
    border = np.zeros((7, 7), bool)
    border[1:4, 1:4] = True
    border[2, 2] = False
    assert (rgb[:, border] == np.array([[1.0], [0.0], [0.0]])).all()
    np.testing.assert_allclose(rgb[:, 2, 2], [0.55 * 0.5 + 0.45, 0.55 * 0.5, 0.55 * 0.5])
    assert (rgb[:, labels == 2] == 0.5).all() and (rgb[:, 0, :] == 0.5).all()
    with pytest.raises(ValueError, match="must have the same shape"):
        tv.mode_overlay(reference, labels[:5], [1], "#ff0000")


def test_csv_has_a_row_per_trace_and_units_in_its_header():
    """Reference, particle, mode and every descriptor; area headed with nm², unitless ratios bare;
    the link carries the same CSV."""
    link = tv.csv_link(traces(), UNITS, "var-1")
    assert link.download == "var-1-traces.csv" and link.children == "Traces CSV (6 rows)"
    assert unquote(link.href.removeprefix("data:text/csv;charset=utf-8,")) == tv.traces_csv(traces(), UNITS)
    table = pd.read_csv(io.StringIO(tv.traces_csv(traces(), UNITS)))
    assert list(table.columns) == ["reference", "particle", "mode", "area (nm²)", "anisotropy", "tortuosity",
                                   "centroid_y", "centroid_x", "n_pixels"]
    assert len(table) == 6 and table["area (nm²)"].tolist() == [100, 200, 300, 400, 500, 600]


def test_modes_view_and_options_and_pictures():
    """Three graphs and the link for six traces; one option per mode with its count and mean area;
    a picture per reference given, captioned with its traces of the mode; a hint without traces."""
    table = traces()
    _, linkage = hac(table[["anisotropy", "tortuosity"]].to_numpy(), n_clusters=3)
    graphs, link = tv.modes_view(table, linkage, UNITS, "var-1")
    assert [c.children.className for c in graphs.children] == [
        "ms-var-modes-dendrogram", "ms-var-area-histogram", "ms-var-mode-boxes"]
    assert "6 rows" in link.children.children
    assert tv.mode_options(table, UNITS) == [
        {"label": "mode 0 · 2 traces · mean area 150 nm²", "value": 0},
        {"label": "mode 1 · 2 traces · mean area 350 nm²", "value": 1},
        {"label": "mode 2 · 2 traces · mean area 550 nm²", "value": 2}]
    labels = np.zeros((8, 8), np.int32)
    labels[1:3, 1:3], labels[4:6, 4:6], labels[6:8, 0:2] = 1, 2, 3
    pictures = tv.mode_pictures([(0, np.full((8, 8), 0.5), labels), (1, np.full((8, 8), 0.5), labels)], table, 1)
    assert [p.children[1].children for p in pictures] == ["#0: 1 trace of mode 1", "#1: 1 trace of mode 1"]
    assert pictures[0].children[0].src.startswith("data:image/png;base64,")
    assert "No particle traces" in str(tv.modes_view(table.iloc[:0], None, UNITS, "var-1"))


def traced_node(store, traces_table: pd.DataFrame | None) -> str:
    """A complete variations node of one 16 px reference with two still particles (its trace is
    the reference itself, so the traces are the particles), in the owner's layout."""
    reference = np.random.default_rng(0).normal(0.1, 0.01, (1, 1, 16, 16)).astype(np.float32)
    reference[0, 0, 2:5, 2:5] = reference[0, 0, 10:13, 9:12] = 1.0
    samples = pd.DataFrame({"reference": [0], "sample": [0], "magnitude": [0.5], "kept": [False], "image": [-1]})
    descriptors = pd.DataFrame({"reference": [0], "n_kept": [0], "image_start": [0]})
    tables = {"samples": samples, "descriptors": descriptors}
    if traces_table is not None:
        tables["particle_traces"] = traces_table
    return store.put("variations", arrays={"references": np.zeros((1, 2), np.float32), "reference_images": reference,
                                           "traces": reference.copy()},
                     tables=tables, metadata={"model_id": "m-test", "status": "completed", "trace_units": UNITS,
                                              "core_params": {"foreground_k": 4.0}})


def test_stored_traces_are_drawn_and_one_mode_highlighted(store):
    """Read back through the owner: options per mode, the first mode chosen; mode 1 (particle 2)
    is tinted on the reference, particle 1 is not; a node without traces says so."""
    from PIL import Image

    from components import variations_views as views

    table = traces().iloc[:2].assign(particle=[1, 2], mode=[0, 1])
    node = traced_node(store, table)
    (graphs, link), options, first = views.traces_view(store, node)
    assert [o["value"] for o in options] == [0, 1] and first == 0 and "2 rows" in link.children.children
    [picture] = views.mode_view(store, node, 1)
    assert picture.children[1].children == "#0: 1 trace of mode 1"
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(picture.children[0].src.split(",", 1)[1]))))
    colour = [int(tv.mode_colour(1)[i : i + 2], 16) for i in (1, 3, 5)]
    assert list(rgb[10, 9, :3]) == colour  # particle 2's outline
    assert rgb[3, 3, 0] == rgb[3, 3, 1] == rgb[3, 3, 2] == 255  # particle 1: grey (white), not tinted
    view, options, first = views.traces_view(store, traced_node(store, None))
    assert options == [] and first is None and "No particle traces" in str(view)
