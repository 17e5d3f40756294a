"""Sampled vs measured particle traces in the results view, on hand-made tables and stored nodes;
and the form's measured window and number of diffusion modes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from components import measured_views as mv
from components import variations_panel as panel
from core.variations.measured import compare_traces
from tests.test_inspect_panel import texts

UNITS = {"area": "nm²", "anisotropy": "", "tortuosity": ""}
# Sampled areas 100, 200, 300 nm²: mean 200, sd 100, SE 100/√3. Measured 80, 120: mean 100, sd √800, SE 20.
# Ratio 2, its SE 2·√((100/√3/200)² + (20/100)²) = 2·√(1/12 + 1/25).
RATIO_SE = 2 * math.sqrt(1 / 12 + 1 / 25)


def sampled() -> pd.DataFrame:
    """Three sampled traces; one is a one-pixel-wide line (infinite anisotropy)."""
    return pd.DataFrame({"reference": [0, 0, 1], "particle": [1, 2, 1], "area": [100.0, 200.0, 300.0],
                         "anisotropy": [1.0, 2.0, np.inf], "tortuosity": [1.0, 1.5, 2.0], "mode": [0, 0, 1]})


def measured() -> pd.DataFrame:
    return pd.DataFrame({"particle": [1, 2], "area": [80.0, 120.0], "anisotropy": [1.0, 3.0],
                         "tortuosity": [1.0, 1.0], "start": [0, 0]})


def test_area_sentence_gives_means_their_errors_and_the_ratio():
    """200 ± 57.74 nm² vs 100 ± 20 nm², ratio 2 ± 0.7024 (hand-computed), W = 2 frames of 0.5 s."""
    comparison = compare_traces(sampled(), measured())
    sentence = mv.area_sentence(comparison, UNITS, 2, 0.5)
    assert sentence.startswith(
        f"Mean diffusion area: sampled 200 ± {100 / math.sqrt(3):.4g} nm² vs 100 ± 20 nm² measured "
        "(mean ± standard error of 3 sampled and 2 measured traces over W = 2 frames (0.5 s)): "
        f"ratio 2 ± {RATIO_SE:.4g} (the paper: 1.02).")
    assert "includes its particle's own area" in sentence  # what the ratio does not separate
    assert f"{RATIO_SE:.4g}" == "0.7024"
    assert "over W = 2 frames): ratio" in mv.area_sentence(comparison, UNITS, 2, None)
    one = mv.area_sentence(compare_traces(sampled().iloc[:1], measured()), UNITS, 2, None)
    assert one.startswith("Mean diffusion area: sampled 100 nm² vs 100 ± 20 nm² measured")  # no SE of one trace
    assert "): ratio 1 (the paper" in one


def test_paired_boxes_per_descriptor_with_units():
    """Three panels titled with their units, a sampled and a measured box each; the infinite
    anisotropy is left out of the box (2 of 3 values drawn)."""
    fig = mv.comparison_figure(sampled(), measured(), UNITS)
    assert [a.text for a in fig.layout.annotations] == ["area (nm²)", "anisotropy", "tortuosity"]
    assert [t.name for t in fig.data] == ["sampled (3)", "measured (2)", "sampled (2)", "measured (2)",
                                          "sampled (3)", "measured (2)"]
    assert list(fig.data[0].y) == [100, 200, 300] and list(fig.data[1].y) == [80, 120]
    assert list(fig.data[2].y) == [1.0, 2.0]
    assert fig.data[0].marker.color != fig.data[1].marker.color


def test_table_of_medians_quartiles_and_ratios():
    """Area: sampled 200 [150 – 250], measured 100 [90 – 110]; the anisotropy median counts the
    infinite value (2), its ratio of means uses the finite ones (1.5 / 2)."""
    table = mv.comparison_table(compare_traces(sampled(), measured()), UNITS)
    rows = [[td.children for td in tr.children] for tr in table.children[1].children]
    assert rows[0] == ["area (nm²)", "200 [150 – 250]", "100 [90 – 110]", f"2 ± {RATIO_SE:.4g}"]
    assert rows[1][:2] == ["anisotropy", "2 [1.5 – inf]"] and rows[1][3].startswith("0.75 ± ")
    assert rows[2][0] == "tortuosity"


def test_without_a_measured_table_one_line_says_why_and_what_to_do():
    """No window asked, made before measured traces, no frame interval, no real trace; and no sampled trace."""
    assert mv.missing_reason({}, None) == mv.BEFORE_MEASURED
    assert mv.missing_reason({"measured_window": None}, 1.0) == mv.NO_WINDOW
    assert mv.missing_reason({"measured_window": 2}, None) == mv.NO_FRAME_INTERVAL
    assert "--frame-interval" in mv.NO_FRAME_INTERVAL
    assert mv.missing_reason({"measured_window": 2}, 0.5) == mv.NO_REAL_TRACE
    assert texts(mv.measured_view(sampled(), None, UNITS, window=2, frame_interval=None,
                                  reason=mv.NO_FRAME_INTERVAL)) == mv.NO_FRAME_INTERVAL
    assert "2 measured traces, but no sampled" in texts(
        mv.measured_view(sampled().iloc[:0], measured(), UNITS, window=2, frame_interval=0.5))
    sentence, graph, table = mv.measured_view(sampled(), measured(), UNITS, window=2, frame_interval=0.5)
    assert sentence.children.startswith("Mean diffusion area") and graph.className == "ms-var-measured-boxes"


def node(store, *, measured_table: pd.DataFrame | None, frame_interval: float | None) -> str:
    """A variations node (sampled traces, maybe measured ones) of a model trained on a dataset
    ingested with or without a frame interval, in the owner's layout."""
    dataset = store.put("datasets", metadata={"pixel_size": 2.0, "pixel_unit": "nm", "frame_interval": frame_interval})
    tables = {"particle_traces": sampled()}
    meta = {"model_id": "m-test", "dataset_id": dataset, "status": "completed", "complete": True,
            "trace_units": UNITS, "params": {"measured_window": 2}}
    if measured_table is not None:
        tables["measured_traces"] = measured_table
        meta["measured_window"] = 2
    return store.put("variations", tables=tables, metadata=meta)


def test_stored_nodes_side_by_side_or_why_not(store):
    """A node with measured traces shows the ratio 2 with the dataset's 0.5 s; one whose dataset
    has no frame interval says to ingest with --frame-interval."""
    view = mv.comparison_view(store, node(store, measured_table=measured(), frame_interval=0.5))
    assert "ratio 2 ± 0.7024" in view[0].children and "(0.5 s)" in view[0].children
    assert list(view[1].figure.data[1].y) == [80, 120]
    missing = mv.comparison_view(store, node(store, measured_table=None, frame_interval=None))
    assert texts(missing) == mv.NO_FRAME_INTERVAL


def test_form_offers_the_number_of_modes_and_the_measured_window():
    """Defaults 3 modes and W = 2 reach the parameters; a blank W is none, a blank number of modes
    is refused, W = 1 is refused with its range."""
    values = {f.name: f.default for f in panel.FIELDS}
    assert (values["n_modes"], values["measured_window"]) == (3, 2)
    current = {"model_id": "m-test", "latents_id": "lat-x"}
    params = panel.build_params({**values, "n_modes": 4}, {"indices": [1, 2]}, current)
    assert (params.n_modes, params.measured_window) == (4, 2)
    assert panel.build_params({**values, "measured_window": ""}, None, current).measured_window is None
    calls = []
    refused = panel.submit_variations({**values, "n_modes": "", "measured_window": 1}, None, current,
                                      lambda *a: calls.append(a))
    messages = [str(p) for p in refused.problems]
    assert not calls and len(messages) == 2
    assert messages == ["Measured window W [measured_window] must be a whole number between 2 and 1000 (you entered 1)",
                        "Diffusion modes [n_modes] is empty: enter a whole number between 1 and 50"]
