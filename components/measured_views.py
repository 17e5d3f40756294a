"""Sampled vs measured particle traces, side by side (DESIGN §1 "Measured side by side").

The method's own check (Dao et al. 2025): the diffusion areas of the sampled traces should match
those of real motion over the same time step (theirs: 7712 ± 2862 nm² sampled vs 7550 ± 850 nm²
measured, ratio 1.02). A variations node stores both tables (``particle_traces`` and, when the
model's dataset is a time series, ``measured_traces``: ``core.variations.measured``); this module
draws their area, anisotropy and tortuosity as paired box plots in their units, a table of
medians and quartiles, the ratio of mean areas with its standard error in one sentence, and, when
there is no measured table, one line saying why and what to do.

Plain functions of tables (unit-tested on hand-made ones), and :func:`comparison_view`, which
reads a node and routes it here; the panel's callback only calls that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html
from plotly.subplots import make_subplots

from components.pictures import hint
from components.trace_views import with_unit
from components.variations_views import load_traces
from core.data.results import datasets
from core.data.results import variations as stored
from core.variations.measured import COMPARED, compare_traces

SIDES = {"sampled": "#0d6efd", "measured": "#fd7e14"}  # box colour of each side
NO_WINDOW = ("No measured traces: this run was asked for none (measured window W blank). Sample again "
             "with W = 2 (one frame interval) to set real motion beside the sampled traces.")
BEFORE_MEASURED = ("No measured traces: these variations were sampled before measured traces existed. "
                   "Sample again to set real motion beside them.")
NO_FRAME_INTERVAL = ("No measured traces: the model's dataset has no frame interval, so its frames are not a "
                     "time series. Ingest the frames again with --frame-interval SECONDS (or the Ingest form's "
                     "“Frame interval”), train on them and sample again.")
NO_REAL_TRACE = ("No measured traces: the dataset has fewer than W frames in order, or no particle was found "
                 "in its frames over W frames. Lower W (at least 2) or check the frames.")


def missing_reason(params: Mapping[str, Any], frame_interval: float | None) -> str:
    """Why a node has no measured table, from its run's parameters and its dataset's frame interval."""
    if "measured_window" not in params:
        return BEFORE_MEASURED
    if not params["measured_window"]:
        return NO_WINDOW
    return NO_FRAME_INTERVAL if frame_interval is None else NO_REAL_TRACE


def _finite(table: pd.DataFrame, column: str) -> np.ndarray:
    """The finite values of a column (a one-pixel-wide trace's anisotropy is infinite: not drawable)."""
    v = table[column].to_numpy(dtype=np.float64)
    return v[np.isfinite(v)]


def comparison_figure(sampled: pd.DataFrame, measured: pd.DataFrame, units: Mapping[str, str]) -> go.Figure:
    """One panel per descriptor (area, anisotropy, tortuosity), a sampled and a measured box in each,
    titled with the descriptor's unit; infinite values are left out of the boxes (not of the medians)."""
    fig = make_subplots(rows=1, cols=len(COMPARED), subplot_titles=[with_unit(c, units) for c in COMPARED],
                        horizontal_spacing=0.1)
    for k, column in enumerate(COMPARED):
        for side, table in (("sampled", sampled), ("measured", measured)):
            values = _finite(table, column)
            fig.add_trace(go.Box(y=values, name=f"{side} ({len(values)})", marker_color=SIDES[side],
                                 legendgroup=side, showlegend=False, boxpoints="outliers", marker_size=3,
                                 line_width=1), row=1, col=k + 1)
    fig.update_annotations(font_size=10)
    fig.update_layout(template="simple_white", height=300, margin=dict(l=45, r=10, t=50, b=35), font_size=10,
                      title=dict(text="Sampled vs measured particle traces", font_size=11))
    return fig


def _number(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _pm(value: float, se: float) -> str:
    """'value ± se', or the value alone when its error is unknown (fewer than two finite values)."""
    return _number(value) + (f" ± {_number(se)}" if np.isfinite(se) else "")


def area_sentence(comparison: pd.DataFrame, units: Mapping[str, str], window: int | None,
                  frame_interval: float | None) -> str:
    """The method's check in one sentence: mean areas ± standard error, how many traces, the ratio ± its SE."""
    a = comparison.loc["area"]
    unit = units.get("area") or ""
    over = f" over W = {window} frames" if window else ""
    if window and frame_interval:
        over += f" ({(window - 1) * frame_interval:.4g} s)"
    return (f"Mean diffusion area: sampled {_pm(a['sampled_mean'], a['sampled_se'])} {unit} "
            f"vs {_pm(a['measured_mean'], a['measured_se'])} {unit} measured (mean ± standard "
            f"error of {int(a['sampled_n'])} sampled and {int(a['measured_n'])} measured traces{over}): "
            f"ratio {_pm(a['ratio'], a['ratio_se'])} (the paper: 1.02). Read it with care: a trace's area "
            "includes its particle's own area, so while particles move less than their size over the window "
            "the ratio mostly compares the decoded particles' size with the real ones' (bench/traces.py: "
            "sampled areas hardly change with γ); the anisotropy and tortuosity rows, and a change of γ or W, "
            "tell more about motion.")


def comparison_table(comparison: pd.DataFrame, units: Mapping[str, str]) -> html.Table:
    """Median [first – third quartile] of each side and the ratio of means ± its SE, per descriptor."""
    def spread(row: pd.Series, side: str) -> str:
        return f"{_number(row[f'{side}_median'])} [{_number(row[f'{side}_q1'])} – {_number(row[f'{side}_q3'])}]"

    head = html.Tr([html.Th(t) for t in ("", "sampled: median [IQR]", "measured: median [IQR]", "ratio of means")])
    rows = [html.Tr([html.Td(with_unit(name, units)), html.Td(spread(row, "sampled")),
                     html.Td(spread(row, "measured")),
                     html.Td(_pm(row["ratio"], row["ratio_se"]))])
            for name, row in comparison.iterrows()]
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table table-sm small ms-var-measured-table")


def measured_view(sampled: pd.DataFrame, measured: pd.DataFrame | None, units: Mapping[str, str], *,
                  window: int | None, frame_interval: float | None, reason: str = NO_REAL_TRACE) -> Any:
    """The side-by-side section: the ratio sentence, the paired box plots and the table; or one line
    saying why there is nothing to compare (``reason`` when there is no measured table)."""
    if measured is None or measured.empty:
        return hint(reason)
    if sampled.empty:
        return hint(f"{len(measured)} measured traces, but no sampled particle trace to compare them with: "
                    "no particle was found in the references, or no sample was kept (loosen the filters or "
                    "lower γ).")
    comparison = compare_traces(sampled, measured)
    return [html.P(area_sentence(comparison, units, window, frame_interval), className="small mb-1 ms-var-ratio"),
            dcc.Graph(figure=comparison_figure(sampled, measured, units), config={"displayModeBar": False},
                      className="ms-var-measured-boxes"),
            comparison_table(comparison, units)]


def _frame_interval(store: Any, dataset_id: str | None) -> float | None:
    """The frame interval of the model's dataset (None when unknown or the dataset is gone)."""
    if not dataset_id or not store.exists("datasets", dataset_id):
        return None
    return datasets.read_scale(store, dataset_id).frame_interval


def comparison_view(store: Any, variations_id: str) -> Any:
    """The stored sampled and measured traces of a node, side by side (or why not)."""
    t = load_traces(store, variations_id)
    meta = store.metadata(stored.KIND, variations_id)
    measured = stored.read_measured_traces(store, variations_id)
    frame_interval = _frame_interval(store, meta.get("dataset_id"))
    return measured_view(t.table, measured, t.units, window=meta.get("measured_window"),
                         frame_interval=frame_interval,
                         reason=missing_reason(meta.get("params") or {}, frame_interval))
