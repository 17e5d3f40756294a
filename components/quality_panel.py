"""Quality panel: the shown clustering's figures of merit and its model's training loss curve.

Reads the clustering's ``quality`` metadata (written by the cluster flow, see
``core.maps.quality.latent_quality``), the model's ``history`` (one dict per epoch) and its
``reconstruction`` (held-out MSE, PSNR, SSIM for clean and corrupted inputs, see
``core.models.reconstruction``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from dash import MATCH, Input, Output, dcc, html
from plotly.subplots import make_subplots

from components.ids import CURRENT
from components.errors import problem
from components.records import MapRef
from components.services import Callbacks, Services
from core.data.reader import ResultStore
from core.data.store import StoreError


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


RECONSTRUCTION_HINTS = {
    "mse": "held-out mean squared error per pixel, images in [0, 1]; lower is better",
    "psnr": "10 log10(1 / MSE) in dB; higher is better: > 30 dB hard to tell apart by eye",
    "ssim": "structural similarity, 0…1; higher is better: 1 is identical structure",
}


def reconstruction_rows(model: dict) -> list[QualityRow]:
    """Held-out reconstruction figures of a model, for clean inputs and (a denoising VAE, trained on
    corrupted inputs) for corrupted ones, both scored against the clean frame; [] when not stored."""
    rows = []
    for kind, figures in (model.get("reconstruction") or {}).items():
        for name, hint in RECONSTRUCTION_HINTS.items():
            value = figures.get(name)
            shown = "–" if value is None else f"{value:.3g} dB" if name == "psnr" else _num(value)
            rows.append(QualityRow(f"{name.upper()} ({kind} input)", shown, hint))
    return rows


@dataclass(frozen=True)
class LossPanel:
    """One row of the loss figure: a quantity, its unit, and the history keys drawn in it."""

    title: str
    unit: str
    curves: tuple[tuple[str, str], ...]  # (history key, legend name)


NATS = "nats / image"  # core.models.vae.vae_loss: summed over pixels and latent dims, mean over images
CRITIC = "critic score"  # WGAN-GP: differences of the critic's outputs, no physical unit
# VAE: the total (what is minimised, train and held-out) above its two terms, each on its own axis,
# because reconstruction is ~10x the KL and a shared axis flattens the smaller one.
VAE_PANELS = (
    LossPanel("loss: −ELBO = rec. + β·KL", NATS, (("loss", "train"), ("val_loss", "held-out"))),
    LossPanel("reconstruction (BCE)", NATS, (("rec", "train"),)),
    LossPanel("KL divergence to the prior", NATS, (("kl", "train"),)),
)
GAN_PANELS = (
    LossPanel("Wasserstein estimate", CRITIC, (("wdist", "train"), ("val_wdist", "held-out"))),
    LossPanel("critic / generator loss", CRITIC, (("critic_loss", "critic"), ("generator_loss", "generator"))),
)
CURVE_STYLE = {"train": ("#1f77b4", "solid"), "held-out": ("#d62728", "dash"),
               "critic": ("#1f77b4", "solid"), "generator": ("#2ca02c", "solid")}
ROW_PX = 150  # height of one loss panel: readable in the narrow sidebar column
LOSS_FONT = 11


def epoch_step(n_epochs: int) -> int:
    """Whole-epoch tick spacing (1, 2, 5, 10, 20, …) giving at most ~6 ticks."""
    k, step = 0, 1
    while n_epochs / step > 6:
        k += 1
        step = (1, 2, 5)[k % 3] * 10 ** (k // 3)
    return step


def loss_figure(history: list[dict] | None) -> go.Figure:
    """Per-epoch losses of a training history, one panel per quantity, shared epoch axis.

    A VAE history (``{epoch, loss, rec, kl, val_loss}``, see ``core.models.train``) shows the total
    loss (train and held-out) above reconstruction and KL; a GAN history (``core.models.train_gan``) the
    Wasserstein estimate above the critic and generator losses. Linear axes fitted to each curve,
    so the descent shows; units on every y axis.
    """
    history = history or []
    panels = [p for p in (GAN_PANELS if any("wdist" in h for h in history) else VAE_PANELS)
              if any(h.get(key) is not None for key, _ in p.curves for h in history)]
    if not panels:
        return go.Figure()
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.3 / len(panels),
                        subplot_titles=[p.title for p in panels])
    epochs = [h.get("epoch") for h in history]
    shown: set[str] = set()
    for row, panel in enumerate(panels, start=1):
        for key, name in panel.curves:
            values = [h.get(key) for h in history]
            if all(v is None for v in values):
                continue
            colour, dash = CURVE_STYLE[name]
            fig.add_trace(go.Scatter(
                x=epochs, y=values, name=name, legendgroup=name, showlegend=name not in shown,
                mode="lines+markers", marker={"size": 5}, line={"color": colour, "width": 2, "dash": dash},
                hovertemplate=f"epoch %{{x}}: {name} %{{y:.4g}} {panel.unit}<extra></extra>",
            ), row=row, col=1)
            shown.add(name)
        fig.update_yaxes(title_text=panel.unit, row=row, col=1)
    n = max((e for e in epochs if e is not None), default=1)
    fig.update_xaxes(dtick=epoch_step(n), tick0=0, tickformat="d", showgrid=True)
    fig.update_xaxes(title_text="epoch", row=len(panels), col=1)
    fig.update_yaxes(nticks=4, tickformat="~g", showgrid=True, title_font_size=LOSS_FONT - 1)
    height = ROW_PX * len(panels) + 105
    fig.update_layout(
        height=height, template="plotly_white", font={"size": LOSS_FONT},
        margin={"l": 55, "r": 8, "t": 65, "b": 40},  # the figure's title, then the first panel's
        title={"text": "Training loss per epoch", "font": {"size": LOSS_FONT + 1}, "x": 0, "xref": "container",
               "y": 1 - 6 / height, "yanchor": "top"},
        # Inside the top panel's upper right, which a falling loss leaves empty: a horizontal
        # legend wraps in the ~200 px sidebar and runs into the panel titles.
        legend={"x": 1, "xanchor": "right", "y": 1, "yanchor": "top", "font": {"size": LOSS_FONT - 1},
                "bgcolor": "rgba(255,255,255,0.8)"},
    )
    fig.update_annotations(font_size=LOSS_FONT - 1)
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
            html.Div(dcc.Graph(id=self.ids.graph(aio_id), config={"displayModeBar": False}),
                     id=self.ids.wrap(aio_id), style={"display": "none"}),
        ], className="quality-panel")


def _table(rows: list[QualityRow]) -> html.Table:
    return html.Table(html.Tbody([
        html.Tr([html.Td(r.label, className="pe-2 text-nowrap"), html.Td(html.Strong(r.value))], title=r.hint)
        for r in rows
    ]), className="quality-table")


def panel(current: MapRef | None, store: ResultStore) -> tuple[Any, go.Figure | None, str]:
    """(body children, loss figure or None, note) for the map shown."""
    if not current or not current.get("clustering_id"):
        return html.Span("Choose a clustering to see its quality figures.", className="text-muted"), None, ""
    clustering = store.metadata("clusterings", current["clustering_id"])
    rows = quality_rows(clustering)
    body = [_table(rows), html.Ul([html.Li([html.B(r.label), ": ", r.hint]) for r in rows],
                                  className="text-muted ps-3 mb-1 quality-hints", style={"fontSize": "0.75em"})]
    model_id = current.get("model_id")
    model = store.metadata("models", model_id) if model_id else {}
    recon = reconstruction_rows(model)
    if recon:
        body.insert(1, _table(recon))
    history = model.get("history")
    if not history:
        return body, None, "No training history stored with this model."
    return body, loss_figure(history), ""



callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)


@callbacks.callback(
    Output(QualityAIO.ids.body(MATCH), "children"),
    Output(QualityAIO.ids.graph(MATCH), "figure"),
    Output(QualityAIO.ids.wrap(MATCH), "style"),
    Input(CURRENT, "data"),
)
def _show(services: Services, current: MapRef | None):
    try:
        body, figure, note = panel(current, services.store())
    except StoreError as exc:
        return problem("read the quality figures", exc), go.Figure(), {"display": "none"}
    if note:
        body = [*body, html.Div(note, className="text-muted")]
    if figure is None:
        return body, go.Figure(), {"display": "none"}
    return body, figure, {"display": "block"}
