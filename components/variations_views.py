"""The material variations panel's views: γ calibration, results, reference states, clusters, exports.

Beside γ, the newest γ calibration of the map's model (``calibrations`` in Tiled), so γ is chosen
against how much real frames change from one to the next. Below the form, the results: one
complete variations node of the map's model, its summary, and per reference state the reference,
its trace and its kept samples ordered by ‖ε‖ (a gallery, and the frames of a player that steps
through them in the browser); the variations' embedding coloured by HAC cluster, the dendrogram
with its cut, descriptor box plots per cluster (the cut is re-applied to the stored linkage, never
re-clustered), exports; the particle traces and their diffusion modes (drawn by
``components.trace_views``), one mode's traces highlighted on the references.

The views are plain functions of ``(store, ...)`` returning Dash components or file payloads, so
they are unit-tested without a browser; ``components.variations_panel`` holds the form, the layout
and the callbacks, which only route values to these functions.
"""

from __future__ import annotations

import io
import math
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html
from plotly.subplots import make_subplots

from components import trace_views
from components.pictures import hint, thumbnail
from components.intensity import intensity_scale
from components.map_data import LRUCache, cache_key
from components.map_figure import CLUSTER_PALETTE
from components.records import MapRef
from core.data.reader import ResultStore
from core.data.results import calibrations
from core.data.results import variations as stored
from core.data.results.variations import Variations
from core.variations.calibration import BOUND_METRIC
from core.variations.descriptors import FOREGROUND_K, METRIC_UNITS, descriptor_unit
from core.variations.filters import CUSTOM, FilterParams
from core.maps.selection import to_png_data_uri
from core.variations.clusters import cut, cut_height, dendrogram_data
from core.variations.traces import extract_traces, reference_particles

LEAF_LABELS = 40  # at most this many dendrogram leaves are labelled (every k-th past that)
GALLERY_SIZE = 24  # kept samples shown (and played) per reference, smallest ‖ε‖ first
IMAGE_PX = 160  # reference, trace and player images are shrunk to at most this
NO_MAP = "No map shown: choose one in the sidebar; its model generates the variations."
NO_CALIBRATION = ("No γ calibration of this model yet: run the γ sweep from the Jobs panel's "
                  "“Calibrate γ” tab, then choose γ here where the generated change matches the real one.")
KEEP_TEXT = {"entropy_max": "|ΔH| ≤ {:g} bits", "iou_min": "IoU ≥ {:g}", "intensity_max": "|ΔΣI|/ΣI ≤ {:g}",
             "area_max": "area Δ ≤ {:g}"}
FILTER_TEXT = {"entropy_max": "|ΔH| > {:g} bits", "iou_min": "IoU < {:g}", "intensity_max": "intensity dev. > {:g}",
               "area_max": "area Δ > {:g}"}


# -- γ calibration beside γ --------------------------------------------------------------------
def calibration_figure(sweep: pd.DataFrame, bands: pd.DataFrame | None, suggested: float | None) -> go.Figure:
    """Each metric's median against γ with its 10–90 % band; the real frames' band shaded; for
    |ΔH| also the generated mean and the real upper bound (red), the method's rule."""
    metrics = list(dict.fromkeys(sweep["metric"]))
    rows = math.ceil(len(metrics) / 2)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=metrics, shared_xaxes=True,
                        vertical_spacing=0.16, horizontal_spacing=0.14)
    real = {} if bands is None else {row["metric"]: row for _, row in bands.iterrows()}
    for k, metric in enumerate(metrics):
        at = dict(row=k // 2 + 1, col=k % 2 + 1)
        s = sweep[sweep["metric"] == metric].sort_values("gamma")
        fig.add_trace(go.Scatter(x=s["gamma"], y=s["q90"], mode="lines", line_width=0, hoverinfo="skip",
                                 showlegend=False), **at)
        fig.add_trace(go.Scatter(x=s["gamma"], y=s["q10"], mode="lines", line_width=0, fill="tonexty",
                                 fillcolor="rgba(13,110,253,0.2)", name="generated q10–q90", showlegend=k == 0,
                                 hoverinfo="skip"), **at)
        fig.add_trace(go.Scatter(x=s["gamma"], y=s["median"], mode="lines+markers", line_color="#0d6efd",
                                 marker_size=4, name="generated median", showlegend=k == 0,
                                 hovertemplate="γ=%{x:g}: median %{y:.3g}<extra></extra>"), **at)
        fig.update_yaxes(title_text=METRIC_UNITS.get(metric), title_font_size=9, **at)
        band = real.get(metric)
        if band is not None and np.isfinite([band["q10"], band["q90"]]).all():
            fig.add_hrect(y0=band["q10"], y1=band["q90"], fillcolor="#fd7e14", opacity=0.2, line_width=0, **at)
            fig.add_hline(y=band["median"], line_dash="dash", line_color="#fd7e14", line_width=1, **at)
        if metric == BOUND_METRIC and band is not None and np.isfinite(band.get("max", np.nan)):
            # the method's rule: the mean generated |ΔH| reaches the largest real one
            fig.add_trace(go.Scatter(x=s["gamma"], y=s["mean"], mode="lines", line=dict(color="#6f42c1", width=1),
                                     name="generated mean", hovertemplate="γ=%{x:g}: mean %{y:.3g}<extra></extra>"),
                          **at)
            fig.add_hline(y=band["max"], line_color="#dc3545", line_width=1, **at)
    if suggested is not None:
        fig.add_vline(x=suggested, line_dash="dot", line_color="#198754", row="all", col="all")
    fig.update_layout(template="simple_white", height=150 * rows + 70, margin=dict(l=30, r=10, t=30, b=30),
                      font_size=10, legend=dict(orientation="h", y=-0.12, font_size=9))
    fig.update_annotations(font_size=10)
    fig.update_xaxes(title_text="γ", row=rows)
    return fig


def calibration_view(store: ResultStore, current: MapRef | None) -> tuple[Any, float | None]:
    """The newest complete calibration of the map's model as a figure, and its suggested γ."""
    if not current:
        return hint(NO_MAP), None
    found = calibrations.newest_for_model(store, current.get("model_id"))
    if found is None:
        return hint(NO_CALIBRATION), None
    if found.result.sweep.empty:
        return hint(f"Calibration {found.id} holds no finished γ: run the sweep again."), None
    sweep, bands = found.result.sweep, (None if found.result.bands.empty else found.result.bands)
    suggested = found.result.suggested_gamma
    reason = found.result.reason  # which rule chose γ and why; older results had the median-in-band rule only
    if suggested is None:
        note = reason or "No real frames were compared, so no γ is suggested."
    else:
        note = (f"Suggested (dotted): {reason}" if reason else
                f"Suggested γ = {suggested:g} (dotted): its medians fall best inside the real frames' bands (orange).")
    if found.result.status == "stopped":
        note += " The sweep was stopped: only the γ it finished are shown."
    return [
        dcc.Graph(figure=calibration_figure(sweep, bands, suggested), config={"displayModeBar": False}),
        html.Div([note, f" · {found.id}"], className="small text-muted"),
    ], suggested


# -- a variations node, read once (complete results never change) ------------------------------
_loaded = LRUCache(4)


def load_variations(store: ResultStore, variations_id: str) -> Variations:
    """The node's metadata and tables (cached: complete results never change); refuses a node
    that is not complete."""
    return _loaded.get(cache_key(store, variations_id), lambda: stored.read_variations(store, variations_id))


def variations_options(store: ResultStore, current: MapRef | None) -> list[dict]:
    """Complete variations of the map's model, newest first (stopped runs are never complete)."""
    if not current:
        return []
    return [{"label": f"{v.get('name') or v['id']} · {v.get('n_kept', 0):,} kept · {v['id']}", "value": v["id"]}
            for v in store.list(stored.KIND) if v.get("complete") and v.get("model_id") == current.get("model_id")]


def chosen_variations(options: list[dict], before: list[dict] | None, value: str | None) -> str | None:
    """A result that just appeared (a run of this page completed) first, else the choice kept,
    else the newest."""
    offered = [o["value"] for o in options]
    new = [v for v in offered if v not in {o["value"] for o in before or []}]
    if new and before is not None:
        return new[0]
    return value if value in offered else (offered[0] if offered else None)


def _rule(name: str, threshold: float | None) -> str:
    """'IoU < 0.5': what a filter rejects."""
    return FILTER_TEXT[name].format(threshold) if name in FILTER_TEXT and threshold is not None else name


def filters_line(meta: dict) -> str:
    """'Filters: the particles preset, keep |ΔH| ≤ 0.2 bits.' from a result's metadata (a result
    stored before presets were recorded is named by its thresholds)."""
    thresholds = (meta.get("core_params") or {}).get("filters") or {}
    filters = FilterParams(**{k: v for k, v in thresholds.items() if k in FilterParams.RULES})
    preset = meta.get("filter_preset") or filters.preset
    kept = ", ".join(KEEP_TEXT[name].format(value) for name, value in filters.active.items()) or "every sample"
    return f"Filters: {'custom' if preset == CUSTOM else f'the {preset} preset'}, keep {kept}."


def summary_view(store: ResultStore, variations_id: str) -> tuple[Any, list[dict], int | None]:
    """The summary line, the reference selector's options and the cut the run made."""
    v = load_variations(store, variations_id)
    s = v.meta.get("summary") or {}
    thresholds = (v.meta.get("core_params") or {}).get("filters") or {}
    drawn, kept = s.get("n_drawn", 0), s.get("n_kept", 0)
    rejected = "; ".join(f"{_rule(name, thresholds.get(name))}: {count:,}"
                         for name, count in (s.get("rejected") or {}).items()) or "no filter on"
    lines = [
        html.Div([html.B(f"{kept:,}"), f" of {drawn:,} samples kept ({kept / max(drawn, 1):.0%}) around "
                  f"{v.n} reference state{'s' if v.n != 1 else ''}, γ = {s.get('gamma', float('nan')):g}."]),
        html.Div(filters_line(v.meta), className="ms-var-filters"),
        html.Div(f"Rejected (a sample can fail several filters): {rejected}."),
        html.Div(f"Distance per dimension mean‖ε‖/d = {s.get('distance_per_dim', float('nan')):.3g} "
                 f"(expected γ/√(3d) = {s.get('expected_distance_per_dim', float('nan')):.3g}, "
                 f"d = {s.get('latent_dim', '?')})."),
    ]
    options = []
    for _, row in v.descriptors.iterrows():
        i = int(row["reference"])
        frame = v.frame(i)
        options.append({"label": f"#{i}" + (f" · frame {frame}" if frame is not None else " · prior draw")
                        + f" · {int(row['n_kept'])} kept", "value": i})
    n_clusters = (v.meta.get("params") or {}).get("n_clusters")
    cut_value = min(n_clusters, v.n - 1) if v.linkage is not None and n_clusters else None
    return html.Div(lines, className="small ms-var-summary"), options, cut_value


# -- one reference: its images, in ‖ε‖ order ------------------------------------------------------
def reference_images(store: ResultStore, v: Variations, i: int, limit: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(reference (C, H, W), trace (C, H, W), kept (k, C, H, W), magnitudes (k,)) of reference i.

    Kept images are stored reference after reference, each by ‖ε‖, so they are one slice.
    """
    if i not in set(v.descriptors[stored.REFERENCE].astype(int)):
        raise ValueError(f"reference {i!r} is not one of the {v.n} of variations {v.id}")
    rows = v.kept[v.kept[stored.REFERENCE] == i].iloc[:limit]
    reference, trace = stored.read_reference(store, v.id, i)
    if rows.empty:
        return reference, trace, np.zeros((0, *reference.shape), np.float32), np.zeros(0)
    first, last = int(rows[stored.IMAGE].iloc[0]), int(rows[stored.IMAGE].iloc[-1])
    kept = stored.read_images(store, v.id, slice(first, last + 1))
    return reference, trace, kept, rows[stored.MAGNITUDE].to_numpy()


def _picture(src: str, caption: str, class_name: str) -> html.Figure:
    """An image drawn 0 = black, 1 = white (to_png_data_uri's default), its caption and that scale."""
    return html.Figure([
        html.Img(src=src, className=f"w-100 {class_name}", style={"imageRendering": "pixelated", "background": "#000"}),
        html.Figcaption(caption, className="small text-center text-muted"),
        intensity_scale(0.0, 1.0, class_name=f"{class_name}-scale"),
    ], className="m-0", style={"width": f"{IMAGE_PX}px"})


def reference_view(store: ResultStore, variations_id: str, i: int) -> tuple[Any, Any, dict]:
    """Reference and trace images, the gallery of the first kept samples, and the player's frames
    (the reference first, then the kept samples by ‖ε‖: PNG data URIs played in the browser)."""
    v = load_variations(store, variations_id)
    reference, trace, kept, magnitudes = reference_images(store, v, i, GALLERY_SIZE)
    n_kept = int(v.descriptors.loc[v.descriptors["reference"] == i, "n_kept"].iloc[0])
    frame = v.frame(i)
    sources = [to_png_data_uri(x, max_size=IMAGE_PX) for x in (reference, *kept)]
    images = [
        _picture(sources[0], "reference" + (f" (frame {frame})" if frame is not None else ""), "ms-var-ref"),
        _picture(to_png_data_uri(trace, max_size=IMAGE_PX), f"trace: mean of the reference and {n_kept} kept",
                 "ms-var-trace"),
    ]
    captions = ["reference, ‖ε‖ = 0"] + [f"{j + 1} of {n_kept}, ‖ε‖ = {m:.3g}" for j, m in enumerate(magnitudes)]
    if not len(kept):
        gallery = hint("No sample of this reference passed the filters: loosen them or lower γ.")
    else:
        more = f" (the first {len(kept)} of {n_kept})" if n_kept > len(kept) else ""
        gallery = [html.Div(f"Kept samples by transformation magnitude ‖ε‖{more}", className="small text-muted"),
                   html.Div([thumbnail(x, f"‖ε‖ {m:.2f}", title=f"sample {j + 1}, ‖ε‖ = {m:.4g}")
                             for j, (x, m) in enumerate(zip(kept, magnitudes))], className="ms-gallery ms-var-gallery"),
                   intensity_scale(0.0, 1.0, class_name="ms-var-gallery-scale")]
    return images, gallery, {"src": sources, "caption": captions}


# -- clusters of the variations -----------------------------------------------------------------
def _colour(label: int) -> str:
    return CLUSTER_PALETTE[int(label) % len(CLUSTER_PALETTE)]


def embedding_figure(v: Variations, labels: np.ndarray) -> go.Figure:
    """The variations' 2-D layout, one trace per HAC cluster; each point carries its reference.

    ``customdata`` goes as a list: plotly.js leaves typed-array customdata out of click events.
    """
    fig = go.Figure()
    references = v.descriptors["reference"].astype(int).to_numpy()
    for label in np.unique(labels):
        at = labels == label
        fig.add_trace(go.Scatter(
            x=v.embedding[at, 0], y=v.embedding[at, 1], mode="markers", name=f"c{label}",
            marker=dict(color=_colour(label), size=8, line=dict(width=0.5, color="#fff")),
            customdata=references[at].tolist(), hovertemplate="reference #%{customdata}<extra>cluster " + f"{label}</extra>"))
    method = str(v.meta.get("embedding_method") or "embedding").upper()
    fig.update_layout(template="simple_white", height=300, margin=dict(l=30, r=10, t=30, b=30),
                      title=dict(text=f"{method} of the variations (click: show a reference)", font_size=11),
                      xaxis_title=f"{method} 1", yaxis_title=f"{method} 2", legend_title_text="HAC")
    return fig


def dendrogram_figure(v: Variations, labels: np.ndarray, n_clusters: int) -> go.Figure:
    """Average-linkage tree as line segments, leaves coloured by cluster, the cut drawn."""
    d = dendrogram_data(v.linkage)
    xs = [x for seg in d["icoord"] for x in (*seg, None)]
    ys = [y for seg in d["dcoord"] for y in (*seg, None)]
    leaves = np.asarray(d["leaves"])
    height = cut_height(v.linkage, n_clusters)
    references = v.descriptors["reference"].to_numpy()[leaves]
    names = [leaf_name(v, int(i)) for i in references]
    fig = go.Figure([
        go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#495057", width=1), hoverinfo="skip", showlegend=False),
        go.Scatter(x=5 + 10 * np.arange(len(leaves)), y=np.zeros(len(leaves)), mode="markers", showlegend=False,
                   marker=dict(color=[_colour(label) for label in labels[leaves]], size=6),
                   customdata=names, hovertemplate="reference %{customdata}<extra></extra>"),
        # The cut as a trace, not a shape, so that it has a hover text.
        go.Scatter(x=[0, 10 * len(leaves)], y=[height, height], mode="lines", name="cut", showlegend=False,
                   line=dict(color="#dc3545", dash="dash", width=1.5),
                   hovertemplate=f"cut at {height:.3g}: {n_clusters} clusters<extra></extra>"),
    ])
    step = max(1, math.ceil(len(leaves) / LEAF_LABELS))
    fig.update_layout(template="simple_white", height=300 + 50, margin=dict(l=45, r=10, t=30, b=90),
                      title=dict(text=f"Dendrogram (average linkage), cut at {height:.3g} into {n_clusters} clusters",
                                 font_size=11),
                      xaxis=dict(title=dict(text="reference state (#, map frame or prior draw)", font_size=10),
                                 tickmode="array", tickvals=(5 + 10 * np.arange(len(leaves)))[::step].tolist(),
                                 ticktext=names[::step], tickangle=-90, tickfont_size=9, showline=False,
                                 ticks=""),
                      yaxis=dict(title=dict(text="distance (standardised descriptors)", font_size=10)))
    return fig


def leaf_name(v: Variations, i: int) -> str:
    """A dendrogram leaf's label: ``#3 · f14`` (frame 14 of the map) or ``#3 · prior``."""
    frame = v.frame(i)
    return f"#{i} · f{frame}" if frame is not None else f"#{i} · prior"


def boxes_figure(v: Variations, labels: np.ndarray) -> go.Figure:
    """One panel per descriptor, one box per cluster."""
    columns = v.columns
    cols = 3
    rows = math.ceil(len(columns) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=columns, vertical_spacing=0.5 / max(rows, 1),
                        horizontal_spacing=0.12)  # room for each panel's unit
    for k, column in enumerate(columns):
        fig.update_yaxes(title_text=descriptor_unit(column) or "value", title_font_size=9, title_standoff=2,
                         row=k // cols + 1, col=k % cols + 1)
        values = v.descriptors[column].to_numpy(dtype=np.float64)
        for label in np.unique(labels):
            fig.add_trace(go.Box(y=values[labels == label], name=f"c{label}", marker_color=_colour(label),
                                 boxpoints="all", jitter=0.4, pointpos=0, marker_size=3, line_width=1,
                                 showlegend=False), row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(template="simple_white", height=130 * rows + 50, margin=dict(l=40, r=10, t=40, b=20),
                      title=dict(text="Descriptors per HAC cluster", font_size=11), font_size=9)
    fig.update_annotations(font_size=9)
    return fig


def clusters_view(store: ResultStore, variations_id: str, n_clusters: int | None, embedding_id: dict) -> Any:
    """Embedding, dendrogram and box plots at the chosen cut; a note when there are no clusters.

    ``embedding_id`` names the embedding graph, whose clicks pick a reference state.
    """
    v = load_variations(store, variations_id)
    if v.linkage is None:
        return hint(v.meta.get("clusters_note") or f"{v.n} reference state(s): clustering needs at least 3.")
    if n_clusters is None:
        return hint(f"Enter a number of clusters between 1 and {v.n} to cut the dendrogram.")
    labels = cut(v.linkage, n_clusters)
    config = {"displayModeBar": False}
    return dbc.Row([
        dbc.Col(dcc.Graph(id=embedding_id, figure=embedding_figure(v, labels), config=config,
                          className="ms-var-embedding"), md=4),
        dbc.Col(dcc.Graph(figure=dendrogram_figure(v, labels, n_clusters), config=config,
                          className="ms-var-dendrogram"), md=4),
        dbc.Col(dcc.Graph(figure=boxes_figure(v, labels), config=config, className="ms-var-boxes"), md=4),
    ], className="g-2")


# -- exports ------------------------------------------------------------------------------------
def export_file(store: ResultStore, variations_id: str | None, what: str, reference: int | None,
                n_clusters: int | None) -> dict:
    """``dcc.send_*`` payload: the descriptors as CSV (with clusters at the cut and the embedding),
    or one reference's images (reference, trace, every kept sample, their ‖ε‖) as NPZ or TIFF."""
    if not variations_id:
        raise ValueError("No variations chosen: pick a result first.")
    v = load_variations(store, variations_id)
    if what == "csv":
        table = v.descriptors.copy()
        table.insert(1, "frame", [v.frame(int(i)) for i in table["reference"]])
        if v.linkage is not None and n_clusters:
            table["hac_cluster"] = cut(v.linkage, n_clusters)
            table[["embedding_x", "embedding_y"]] = v.embedding
        return dcc.send_string(table.to_csv(index=False), f"{v.id}-descriptors.csv", type="text/csv")
    if reference is None:
        raise ValueError("No reference state chosen: pick one first.")
    ref, trace, kept, magnitudes = reference_images(store, v, int(reference))
    stem = f"{v.id}-reference{int(reference)}"
    buffer = io.BytesIO()
    if what == "npz":
        np.savez_compressed(buffer, reference=ref, trace=trace, kept=kept, magnitudes=magnitudes)
        return dcc.send_bytes(buffer.getvalue(), f"{stem}.npz", type="application/octet-stream")
    import tifffile

    pages = np.concatenate([ref[None], trace[None], kept]).astype(np.float32)  # (2 + k, C, H, W)
    pages = pages[:, 0] if pages.shape[1] == 1 else pages
    tifffile.imwrite(buffer, pages, photometric="minisblack", metadata={
        "axes": "IYX" if pages.ndim == 3 else "ICYX",
        "pages": "reference, trace, then the kept samples by transformation magnitude",
        "magnitudes": [float(m) for m in magnitudes]})
    return dcc.send_bytes(buffer.getvalue(), f"{stem}.tif", type="image/tiff")


# -- particle traces and their diffusion modes ---------------------------------------------------
MODE_REFERENCES = 6  # references shown with one mode's traces highlighted, at most


_traces = LRUCache(4)


def load_traces(store: Any, variations_id: str) -> stored.ParticleTraces:
    """The node's particle traces (cached like the node: complete results never change)."""
    return _traces.get(cache_key(store, variations_id), lambda: stored.read_traces(store, variations_id))


def traces_view(store: Any, variations_id: str) -> tuple[Any, list[dict], int | None]:
    """The modes section (dendrogram, area histogram, box plots per mode, CSV link), the mode
    selector's options and the mode highlighted first."""
    t = load_traces(store, variations_id)
    options = trace_views.mode_options(t.table, t.units) if len(t.table) else []
    view = trace_views.modes_view(t.table, t.linkage, t.units, variations_id)
    return view, options, options[0]["value"] if options else None


def mode_view(store: Any, variations_id: str, mode: int) -> Any:
    """The first references holding traces of ``mode``, those traces highlighted; the trace labels
    are extracted again from the stored reference and trace images, as the run extracted them."""
    v, traces = load_variations(store, variations_id), load_traces(store, variations_id).table
    chosen = sorted(set(traces.loc[traces["mode"] == mode, "reference"].astype(int)))[:MODE_REFERENCES]
    k = (v.meta.get("core_params") or {}).get("foreground_k", FOREGROUND_K)
    references = []
    for i in chosen:
        reference, trace = stored.read_reference(store, v.id, i)
        references.append((i, reference, extract_traces(trace, reference_particles(reference, k=k), k=k)))
    return trace_views.mode_pictures(references, traces, mode)
