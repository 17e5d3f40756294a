"""Quality panel: the shown clustering's figures of merit and its model's training loss curve.

Reads the clustering's ``quality`` metadata (written by the cluster flow, see
``core.quality.latent_quality``) and the model's ``history`` (one dict per epoch).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from dash import MATCH, Input, Output, callback, dcc, html

from components import context
from components.ids import CURRENT
from components.errors import problem
from core.store import StoreError


@dataclass(frozen=True)
class QualityRow:
    label: str
    value: str
    hint: str  # what a good value looks like


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def quality_rows(clustering: dict) -> list[QualityRow]:
    """The figures of a clustering's metadata, each with a one-line hint."""
    q = clustering.get("quality") or {}
    on = "2-D/3-D map" if q.get("scored_on") == "embedding" else "latent vectors"
    n_clusters = q.get("n_clusters", clustering.get("n_clusters"))
    noise = q.get("noise_fraction", clustering.get("noise_fraction"))
    d, active = q.get("latent_dim"), q.get("active_units")
    return [
        QualityRow("Silhouette", _num(q.get("silhouette")),
                   f"−1…1 on the {on}, higher is better: > 0.5 well separated, < 0.25 weak structure"),
        QualityRow("Davies–Bouldin", _num(q.get("davies_bouldin")),
                   "≥ 0, lower is better: < 1 compact, well separated clusters"),
        QualityRow("Calinski–Harabasz", _num(q.get("calinski_harabasz")),
                   "higher is better; compare only between maps of the same data"),
        QualityRow("Participation ratio", _num(q.get("participation_ratio")),
                   f"effective number of latent dimensions used{f' (of {d})' if d else ''}"),
        QualityRow("Active units", f"{_num(active)} / {_num(d)}",
                   "dimensions with KL > 0.01; few active: a smaller latent dim would do, or lower β"),
        QualityRow("Clusters", _num(n_clusters), "HDBSCAN clusters, noise not counted"),
        QualityRow("Noise", "–" if noise is None else f"{100 * noise:.1f} %",
                   "share of frames in no cluster; above ~30 %: lower min cluster size / min samples"),
    ]


LOSS_TERMS = (("loss", "loss", "#1f77b4"), ("rec", "reconstruction", "#2ca02c"),
              ("kl", "KL", "#ff7f0e"), ("val_loss", "validation", "#d62728"))


def loss_figure(history: list[dict] | None) -> go.Figure:
    """Per-epoch loss terms of a training history (``[{epoch, loss, rec, kl, val_loss}, ...]``)."""
    fig = go.Figure()
    history = history or []
    epochs = [h.get("epoch") for h in history]
    positive = True
    for key, name, colour in LOSS_TERMS:
        values = [h.get(key) for h in history]
        if all(v is None for v in values):
            continue
        positive &= all(v is None or v > 0 for v in values)
        fig.add_trace(go.Scatter(
            x=epochs, y=values, name=name, mode="lines+markers", marker={"size": 4},
            line={"color": colour, "width": 1.5, "dash": "dash" if key == "val_loss" else "solid"},
        ))
    fig.update_layout(
        height=200, margin={"l": 40, "r": 5, "t": 25, "b": 30}, template="plotly_white",
        title={"text": "Training loss", "font": {"size": 12}},
        xaxis={"title": {"text": "epoch", "font": {"size": 10}}, **({"dtick": 1} if len(history) <= 10 else {})},
        # Reconstruction and KL differ by orders of magnitude: a log axis shows both.
        yaxis={"type": "log" if positive else "linear"},
        legend={"orientation": "h", "y": -0.3, "font": {"size": 9}},
    )
    return fig


class QualityAIO(html.Div):
    class ids:
        body = staticmethod(lambda aio_id: {"component": "QualityAIO", "subcomponent": "body", "aio_id": aio_id})
        graph = staticmethod(lambda aio_id: {"component": "QualityAIO", "subcomponent": "graph", "aio_id": aio_id})
        wrap = staticmethod(lambda aio_id: {"component": "QualityAIO", "subcomponent": "wrap", "aio_id": aio_id})

    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        super().__init__([
            html.Div("Quality", className="small fw-bold"),
            html.Div(id=self.ids.body(aio_id), className="small quality-body"),
            html.Div(dcc.Graph(id=self.ids.graph(aio_id), config={"displayModeBar": False},
                               style={"height": "200px"}),
                     id=self.ids.wrap(aio_id), style={"display": "none"}),
        ], className="quality-panel")


def _table(rows: list[QualityRow]) -> html.Table:
    return html.Table(html.Tbody([
        html.Tr([html.Td(r.label, className="pe-2 text-nowrap"), html.Td(html.Strong(r.value))], title=r.hint)
        for r in rows
    ]), className="quality-table")


def panel(current: dict | None, store: Any) -> tuple[Any, go.Figure | None, str]:
    """(body children, loss figure or None, note) for the map shown."""
    if not current or not current.get("clustering_id"):
        return html.Span("Choose a clustering to see its quality figures.", className="text-muted"), None, ""
    clustering = store.metadata("clusterings", current["clustering_id"])
    rows = quality_rows(clustering)
    body = [_table(rows), html.Ul([html.Li([html.B(r.label), ": ", r.hint]) for r in rows],
                                  className="text-muted ps-3 mb-1 quality-hints", style={"fontSize": "0.75em"})]
    model_id = current.get("model_id")
    history = store.metadata("models", model_id).get("history") if model_id else None
    if not history:
        return body, None, "No training history stored with this model."
    return body, loss_figure(history), ""


@callback(
    Output(QualityAIO.ids.body(MATCH), "children"),
    Output(QualityAIO.ids.graph(MATCH), "figure"),
    Output(QualityAIO.ids.wrap(MATCH), "style"),
    Input(CURRENT, "data"),
)
def _show(current):
    try:
        body, figure, note = panel(current, context.store())
    except StoreError as exc:
        return problem("read the quality figures", exc), go.Figure(), {"display": "none"}
    if note:
        body = [*body, html.Div(note, className="text-muted")]
    if figure is None:
        return body, go.Figure(), {"display": "none"}
    return body, figure, {"display": "block"}
