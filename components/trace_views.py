"""Per-particle traces of a variations result, as a scientist reads them (Dao et al. 2025, DESIGN §1).

Every particle of every reference leaves its own diffusion trace in the variation's trace image
(``core.variations.traces``); the traces are clustered into diffusion modes (HAC, average linkage
on range-scaled anisotropy and tortuosity). This module draws, from the stored table of traces
(one row per trace: reference, particle, area, anisotropy, tortuosity, centroid_y, centroid_x,
n_pixels, mode), the modes' dendrogram, the area histogram with its mean, box plots of area,
anisotropy and tortuosity per mode, the traces of one mode highlighted on a reference image,
and a CSV of every trace with the units in its header.

Plain functions of tables and arrays (unit-tested without a browser); the panel's callbacks
read the stored result and route it here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html
from plotly.subplots import make_subplots
from scipy import ndimage as ndi

from components.map_figure import CLUSTER_PALETTE
from components.pictures import hint
from core.maps.selection import to_png_data_uri
from core.variations.clusters import dendrogram_data

MODE_COLUMNS = ("area", "anisotropy", "tortuosity")  # the descriptors shown per mode
CSV_COLUMNS = ("reference", "particle", "mode", "area", "anisotropy", "tortuosity", "centroid_y", "centroid_x",
               "n_pixels")
IMAGE_PX = 160  # a highlighted reference is shrunk to at most this (as the other images of the panel)
TINT = 0.45  # weight of the mode's colour over the reference inside a highlighted trace


def mode_colour(mode: int) -> str:
    return CLUSTER_PALETTE[int(mode) % len(CLUSTER_PALETTE)]


def with_unit(name: str, units: Mapping[str, str]) -> str:
    """'area (nm²)', or the bare name for a unitless ratio."""
    unit = units.get(name) or ""
    return f"{name} ({unit})" if unit else name


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(template="simple_white", height=height, margin=dict(l=45, r=10, t=35, b=35),
                      title=dict(text=title, font_size=11), font_size=10)
    return fig


def modes_dendrogram(traces: pd.DataFrame, linkage: np.ndarray) -> go.Figure:
    """The average-linkage tree of the traces (one leaf per row of ``traces``), leaves coloured by mode."""
    d = dendrogram_data(linkage)
    leaves = np.asarray(d["leaves"])
    rows = traces.iloc[leaves]
    names = [f"#{int(r)} · particle {int(p)} · mode {int(m)}"
             for r, p, m in zip(rows["reference"], rows["particle"], rows["mode"])]
    fig = go.Figure([
        go.Scatter(x=[x for seg in d["icoord"] for x in (*seg, None)],
                   y=[y for seg in d["dcoord"] for y in (*seg, None)],
                   mode="lines", line=dict(color="#495057", width=1), hoverinfo="skip", showlegend=False),
        go.Scatter(x=5 + 10 * np.arange(len(leaves)), y=np.zeros(len(leaves)), mode="markers", showlegend=False,
                   marker=dict(color=[mode_colour(m) for m in rows["mode"]], size=6),
                   customdata=names, hovertemplate="%{customdata}<extra></extra>"),
    ])
    fig.update_xaxes(visible=False)
    fig.update_yaxes(title_text="distance (range-scaled anisotropy, tortuosity)", title_font_size=9)
    return _layout(fig, f"Diffusion modes: {len(leaves)} particle traces", 280)


def area_histogram(traces: pd.DataFrame, units: Mapping[str, str]) -> go.Figure:
    """Histogram of the traces' diffusion areas with their mean (dashed) and its unit."""
    area = traces["area"].to_numpy(dtype=np.float64)
    area = area[np.isfinite(area)]
    unit = units.get("area") or ""
    mean = float(area.mean()) if len(area) else math.nan
    sd = float(area.std(ddof=1)) if len(area) > 1 else math.nan
    fig = go.Figure(go.Histogram(x=area, marker_color="#0d6efd", opacity=0.75, name="traces",
                                 hovertemplate=f"%{{x}} {unit}: %{{y}} traces<extra></extra>"))
    if len(area):
        fig.add_vline(x=mean, line_dash="dash", line_color="#dc3545", line_width=2)
    fig.update_xaxes(title_text=with_unit("area", units))
    fig.update_yaxes(title_text="traces")
    spread = f" ± {sd:.4g}" if np.isfinite(sd) else ""
    return _layout(fig, f"Diffusion area: mean {mean:.4g}{spread} {unit} over {len(area)} traces".replace("  ", " "),
                   280)


def mode_boxes(traces: pd.DataFrame, units: Mapping[str, str]) -> go.Figure:
    """One panel per descriptor (area, anisotropy, tortuosity), one box per mode, y axes in their units."""
    fig = make_subplots(rows=1, cols=len(MODE_COLUMNS), subplot_titles=MODE_COLUMNS, horizontal_spacing=0.12)
    for k, column in enumerate(MODE_COLUMNS):
        fig.update_yaxes(title_text=units.get(column) or "ratio", title_font_size=9, title_standoff=2, row=1, col=k + 1)
        for mode in sorted(traces["mode"].unique()):
            values = traces.loc[traces["mode"] == mode, column].to_numpy(dtype=np.float64)
            fig.add_trace(go.Box(y=values, name=f"mode {int(mode)}", marker_color=mode_colour(mode), boxpoints="all",
                                 jitter=0.4, pointpos=0, marker_size=3, line_width=1, showlegend=False),
                          row=1, col=k + 1)
    fig.update_annotations(font_size=10)
    return _layout(fig, "Descriptors per diffusion mode", 280)


def mode_overlay(reference: np.ndarray, labels: np.ndarray, particles: list[int] | np.ndarray,
                 colour: str) -> np.ndarray:
    """RGB (3, H, W) in [0, 1]: the reference in grey, the traces labelled ``particles`` in ``labels``
    (H, W; label j = the trace of particle j) tinted with ``colour`` and outlined in it."""
    grey = np.asarray(reference, dtype=np.float64)
    grey = np.clip(grey.mean(axis=0) if grey.ndim == 3 else grey, 0.0, 1.0)  # (H, W)
    labels = np.asarray(labels)
    if labels.shape != grey.shape:
        raise ValueError(f"labels {labels.shape} and reference {grey.shape} must have the same shape")
    rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])[:, None, None]  # (3, 1, 1)
    inside = np.isin(labels, np.asarray(particles, dtype=labels.dtype)) & (labels > 0)  # (H, W)
    edge = inside & ~ndi.binary_erosion(inside)
    out = np.repeat(grey[None], 3, axis=0)  # (3, H, W)
    out = np.where(inside, (1 - TINT) * out + TINT * rgb, out)
    return np.where(edge, rgb, out)


def traces_csv(traces: pd.DataFrame, units: Mapping[str, str]) -> str:
    """One row per trace (reference, particle, mode, every descriptor), each column headed by its
    name and unit, e.g. ``area (nm²)``."""
    columns = [c for c in CSV_COLUMNS if c in traces.columns]
    columns += [c for c in traces.columns if c not in columns]
    return traces[columns].rename(columns={c: with_unit(c, units) for c in columns}).to_csv(index=False)


def csv_link(traces: pd.DataFrame, units: Mapping[str, str], name: str) -> html.A:
    """A download link holding the CSV itself (a data URI: no callback, readable by a test)."""
    return html.A(f"Traces CSV ({len(traces):,} rows)", download=f"{name}-traces.csv",
                  href="data:text/csv;charset=utf-8," + quote(traces_csv(traces, units)),
                  className="btn btn-sm btn-outline-secondary ms-var-traces-csv")


def mode_options(traces: pd.DataFrame, units: Mapping[str, str]) -> list[dict]:
    """One option per mode: its number, how many traces and their mean area with its unit."""
    unit = units.get("area") or ""
    return [{"label": f"{'not clustered' if m < 0 else f'mode {int(m)}'} · {len(g)} trace{'s' if len(g) != 1 else ''}"
                      f" · mean area {g['area'].mean():.4g} {unit}".rstrip(), "value": int(m)}
            for m, g in traces.groupby("mode")]


def modes_view(traces: pd.DataFrame, linkage: np.ndarray | None, units: Mapping[str, str], name: str) -> Any:
    """Dendrogram of the modes, area histogram, box plots per mode and the CSV link; a hint without traces."""
    if traces.empty:
        return hint("No particle traces in this result: no particle was found in the references, or no sample "
                    "was kept (loosen the filters or lower γ).")
    config = {"displayModeBar": False}
    graphs = [dcc.Graph(figure=area_histogram(traces, units), config=config, className="ms-var-area-histogram"),
              dcc.Graph(figure=mode_boxes(traces, units), config=config, className="ms-var-mode-boxes")]
    if linkage is not None and len(traces) >= 2:
        graphs.insert(0, dcc.Graph(figure=modes_dendrogram(traces, linkage), config=config,
                                   className="ms-var-modes-dendrogram"))
    return [dbc.Row([dbc.Col(g, md=12 // len(graphs)) for g in graphs], className="g-2"),
            html.Div(csv_link(traces, units, name), className="my-1")]


def mode_pictures(references: Sequence[tuple[int, np.ndarray, np.ndarray]], traces: pd.DataFrame,
                  mode: int) -> Any:
    """Each (reference index, reference image, trace labels) with its traces of ``mode`` highlighted."""
    chosen = traces[traces["mode"] == mode]
    pictures = []
    for i, image, labels in references:
        particles = chosen.loc[chosen["reference"] == i, "particle"].to_numpy()
        rgb = mode_overlay(image, labels, particles, mode_colour(mode))
        pictures.append(html.Figure([
            html.Img(src=to_png_data_uri(rgb, max_size=IMAGE_PX), className="w-100 ms-var-mode-image",
                     style={"imageRendering": "pixelated", "background": "#000"}),
            html.Figcaption(f"#{i}: {len(particles)} trace{'s' if len(particles) != 1 else ''} of mode {mode}",
                            className="small text-center text-muted"),
        ], className="m-0", style={"width": f"{IMAGE_PX}px"}))
    return pictures or hint(f"No trace of mode {mode}.")
