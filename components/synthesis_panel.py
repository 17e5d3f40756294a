"""Synthesis panel: ask for the image at any point of a 2-D map, or for a sequence along a path.

Modes: *inspect* (the map selects measured frames, as always), *click* (a click anywhere on the
map, empty space included, asks the chosen sampler for ``n`` latents at that coordinate) and
*path* (a path drawn on the map is resampled to evenly spaced points, one image each, played as a
hypothetical trajectory). The latents are decoded with the map's own model and projected back with
the map's stored projection; ``assets/synthesis.js`` draws where they landed (open diamonds, a
dotted line from the asked cross) and the panel says how far, beside how far the asked point is
from the nearest measured frame.

The map's clicks and drawn paths reach this panel through the page stores ``MAP_POINT`` and
``DRAWN_PATH`` (forwarded in the browser by ``callbacks.synthesis``).

The sampler list is what exists for the shown map: UMAP-guided PCA (no training) and every flow
matching or latent diffusion model trained on it (``core.synthesis.catalog.trained_for``; trained
by their flows). Sampling a click's or a path's few points, and decoding them, runs in the web
process on its CPU: milliseconds for UMAP-guided PCA, about a second for a study-sized flow
matching sampler or for decoding 16 images (README, measured on one core).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

import dash_bootstrap_components as dbc
import numpy as np
from dash import MATCH, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pydantic import ValidationError

from components.errors import with_store
from components.ids import CURRENT, DRAWN_PATH, MAP_POINT, RESULTS_VERSION, part_ids
from components.intensity import intensity_scale
from components.job_forms import FormField, field_of
from components.map_data import LRUCache, cache_key, latent_means, load_map, map_id
from components.pictures import hint, thumbnail
from components.player import Frames, player, register_player
from components.records import DrawnPath, MapPoint, MapRef
from components.services import Callbacks, Services
from components.words import plural
from core.data.reader import ResultStore
from core.data.results.clusterings import read_clustering
from core.data.results.projections import read_projector
from core.maps.selection import to_png_data_uri
from core.models.checkpoint import load_model
from core.models.generator import decode_batches
from core.synthesis import export
from core.synthesis.base import Sampler
from core.synthesis.catalog import load_sampler, trained_for
from core.synthesis.generate import Generated, generate
from core.synthesis.paths import parse_svg_path, path_length, resample
from core.synthesis.umap_pca import UMAPGuidedPCA
from flows import params as fp

log = logging.getLogger(__name__)

Mode = Literal["inspect", "click", "path"]
MODES: dict[str, str] = {"inspect": "Inspect frames", "click": "Click → image", "path": "Path → sequence"}
SAMPLER_NAMES = {"umap_pca": "UMAP-guided PCA", "flow_matching": "Flow matching",
                 "latent_diffusion": "Latent diffusion"}
IMAGE_PX = 128  # generated images and the player are shrunk to at most this
NEAR = 0.05  # a draw "landed where asked" within this fraction of the map's diagonal
MODE_HINTS = {
    "inspect": "The map selects and shows measured frames. Choose Click or Path to ask a sampler for "
               "images anywhere on the map, empty space included.",
    "click": "Click anywhere on the map, empty space included: the sampler draws latents for that point, "
             "the map's model decodes them, and diamonds mark where they land when projected back.",
    "path": "Drag on the map to draw a path: one image per step along it, played below as a hypothetical "
            "trajectory (the map's axes are not time).",
}

_P = fp.SynthesizeParams
FIELDS: tuple[FormField, ...] = (
    field_of(_P, "n", "Images per click"),
    field_of(_P, "steps", "Steps along a path"),
    field_of(_P, "seed", "Seed"),
    field_of(_P, "temperature", "T (temperature)"),
    field_of(_P, "k_nearest", "k nearest clusters"),
    field_of(_P, "noise_scale", "Noise scale"),
    field_of(_P, "guidance", "Guidance s (trained)"),
    field_of(_P, "sampling_steps", "Sampling steps (trained)"),
)
UMAP_PCA_FIELDS = ("temperature", "k_nearest", "noise_scale")  # UMAP-guided PCA's own parameters
TRAINED_FIELDS = {"guidance": "guidance", "sampling_steps": "steps"}  # form field -> trained sampler's parameter


class SynthesisRequest(TypedDict):
    """The request store: what was asked, enough to generate the same images again (exports)."""

    mode: Literal["click", "path"]
    points: list[list[float]]  # (M, 2) map coordinates asked for
    params: dict  # SynthesizeParams as JSON
    map: str  # map_id of the map it was asked on
    length: float | None  # a path's length in map units


class Marks(TypedDict):
    """The marks store, drawn on the map by assets/synthesis.js."""

    asked: list[list[float]]
    landed: list[list[float]]
    pairs: list[int]  # for each landed point, the asked point it was drawn for
    asked_text: list[str]
    landed_text: list[str]
    path: bool


# -- what the shown map offers -----------------------------------------------------------------
def sampler_options(store: ResultStore, current: MapRef | None) -> tuple[list[dict], str | None]:
    """(sampler options, why there are none) for the shown map."""
    if not current:
        return [], "No map shown: choose one in the sidebar."
    if current.get("n_components", 2) != 2:
        return [], "Synthesis asks for 2-D map coordinates: choose a 2-D projection of this model."
    if not current.get("clustering_id"):
        return [], "UMAP-guided PCA draws from the map's clusters: cluster this map first (Jobs panel)."
    trained = [{"label": f"{SAMPLER_NAMES.get(m['family'], m['family'])} · {m.get('name') or m['id']}",
                "value": m["id"]} for m in trained_for(store, current["clustering_id"])]
    return [{"label": f"{SAMPLER_NAMES['umap_pca']} (no training)", "value": "umap_pca"}, *trained], None


# -- the computation ---------------------------------------------------------------------------
samplers, models, projectors = LRUCache(4), LRUCache(2), LRUCache(2)


def fitted_sampler(store: ResultStore, current: MapRef, params: fp.SynthesizeParams) -> Sampler:
    """The chosen sampler for the shown map: UMAP-guided PCA fitted on it, or a stored sampler
    model trained on it (cached per map, sampler and parameters)."""
    if not current.get("clustering_id"):
        raise ValueError("Synthesis draws from the map's clusters: cluster this map first (Jobs panel).")
    if params.sampler != "umap_pca":
        trained = {m["id"] for m in trained_for(store, current["clustering_id"])}
        if params.sampler not in trained:
            raise ValueError(f"sampler {params.sampler!r} was not trained on map {map_id(current)}; choose "
                             "UMAP-guided PCA or a sampler listed for this map")
        given = {TRAINED_FIELDS[k]: getattr(params, k) for k in TRAINED_FIELDS if getattr(params, k) is not None}
        return samplers.get(cache_key(store, params.sampler, *sorted(given.items())),
                            lambda: load_sampler(store, params.sampler, device="cpu", **given))
    own = {name: getattr(params, name) for name in UMAP_PCA_FIELDS}

    def fit() -> Sampler:
        clustering = read_clustering(store, current["clustering_id"])
        embedding = load_map(store, current).embedding
        return UMAPGuidedPCA(**own).fit(latent_means(store, current["latents_id"]), embedding,
                                        clustering.labels, clustering.probabilities)

    return samplers.get(cache_key(store, current["clustering_id"], params.sampler, *own.values()), fit)


def decoder(store: ResultStore, model_id: str):
    """latents (B, d) -> images (B, C, H, W) with the map's model, on the web process's CPU (cached)."""
    model = models.get(cache_key(store, model_id), lambda: load_model(store, model_id, device="cpu"))
    return lambda z: np.concatenate(list(decode_batches(model, z, batch_size=64, device="cpu")))


def projector(store: ResultStore, projection_id: str):
    """latents (B, d) -> map coordinates (B, 2) with the map's stored projection (cached, no refit)."""
    return projectors.get(cache_key(store, projection_id), lambda: read_projector(store, projection_id)).transform


def build_params(values: Mapping[str, Any], sampler: str | None) -> fp.SynthesizeParams:
    """The request's parameters from the form; raises pydantic's ValidationError."""
    given = {k: v for k, v in values.items() if not (v is None or (isinstance(v, str) and not v.strip()))}
    return fp.SynthesizeParams(sampler=sampler or "umap_pca", **given)


def request_for(mode: str, point: MapPoint | None, drawn: DrawnPath | None, params: fp.SynthesizeParams,
                current: MapRef) -> SynthesisRequest:
    """The points to ask for: the clicked point, or the drawn path resampled to ``steps`` points."""
    if mode == "click":
        if not point or point.get("x") is None:
            raise ValueError("Click on the map first.")
        points, length = np.array([[float(point["x"]), float(point["y"])]]), None
    else:
        vertices = parse_svg_path((drawn or {}).get("path", ""))
        points, length = resample(vertices, params.steps), path_length(vertices)
    return {"mode": mode, "points": points.tolist(), "params": params.model_dump(), "map": map_id(current),
            "length": length}


def synthesize(store: ResultStore, current: MapRef, request: SynthesisRequest) -> tuple[Generated, Sampler]:
    """Sample, decode and project back what ``request`` asks for on the shown map; and the sampler."""
    if request["map"] != map_id(current):
        raise ValueError("That request was made on another map: ask again on this one.")
    params = fp.SynthesizeParams(**request["params"])
    sampler = fitted_sampler(store, current, params)
    n = params.n if request["mode"] == "click" else 1
    return generate(sampler, np.asarray(request["points"]), n=n, seed=params.seed,
                    decode=decoder(store, current["model_id"]), project=projector(store, current["projection_id"]),
                    embedding=load_map(store, current).embedding), sampler


# -- what the page shows -----------------------------------------------------------------------
def provenance(request: SynthesisRequest, current: MapRef, sampler: Sampler) -> dict:
    """What made the images: sampler, its parameters, the seed and the map's ids."""
    return {"sampler": sampler.name, "params": sampler.params, "seed": request["params"]["seed"],
            "mode": request["mode"], "model_id": current["model_id"], "projection_id": current["projection_id"],
            "clustering_id": current.get("clustering_id"), "latents_id": current["latents_id"]}


def made_by(sampler: Sampler, seed: int) -> html.Div:
    """"UMAP-guided PCA · temperature=0.1, k_nearest=2, … · seed 0": the line under every result."""
    own = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sampler.params.items())
    return html.Div([html.B(SAMPLER_NAMES.get(sampler.name, sampler.name)), f" · {own} · seed {seed}"],
                    className="small ms-synth-made-by")


def diagonal(embedding: np.ndarray) -> float:
    """The map's diagonal (range of x and y), the scale a landing distance is read against."""
    span = embedding[:, :2].max(0) - embedding[:, :2].min(0)
    return float(np.hypot(*span)) or 1.0


def landing_sentence(g: Generated, scale: float) -> str:
    """How far the draws landed from where they were asked, honestly, against the map's scale."""
    d, near, many = g.distances, float(g.nearest_measured.mean()), len(g.asked) > 1
    text = (f"Projected back, the {plural(d.size, 'draw')} landed {d.mean():.3g} map units from "
            f"{'their asked points' if many else 'the asked point'} on average (max {d.max():.3g}; "
            f"{100 * d.mean() / scale:.1f} % of the map's diagonal); the nearest measured frame is "
            f"{near:.3g} away{' on average' if many else ''}.")
    if d.mean() <= NEAR * scale:
        return text + " They landed where they were asked."
    if near > NEAR * scale:
        return text + (f" {'The asked points lie' if many else 'The asked point lies'} in empty space and the "
                       "draws landed away, near measured states: this sampler only draws inside the map's clusters.")
    return text + " They landed away from where they were asked."


def marks_of(g: Generated, path: bool) -> Marks:
    n = g.distances.shape[1]
    return {"asked": g.asked.tolist(), "landed": g.landed.reshape(-1, 2).tolist(),
            "pairs": np.repeat(np.arange(len(g.asked)), n).tolist(),
            "asked_text": [f"asked ({x:.3g}, {y:.3g})" for x, y in g.asked],
            "landed_text": [f"draw {j + 1} for ({g.asked[i, 0]:.3g}, {g.asked[i, 1]:.3g}) landed {d:.3g} away"
                            for i, row in enumerate(g.distances) for j, d in enumerate(row)],
            "path": path}


def result_view(store: ResultStore, current: MapRef, request: SynthesisRequest) -> tuple[Any, Marks, Frames]:
    """(the panel's result, the marks for the map, the player's frames) of one request."""
    g, sampler = synthesize(store, current, request)
    scale = diagonal(load_map(store, current).embedding)
    images = g.images.reshape(-1, *g.images.shape[2:])  # (M·n, C, H, W)
    distances = g.distances.reshape(-1)
    if request["mode"] == "click":
        x, y = g.asked[0]
        gallery = html.Div([thumbnail(im, f"draw {j + 1} · {d:.2g} away",
                                      title=f"draw {j + 1}: landed {d:.4g} map units from ({x:.4g}, {y:.4g})")
                            for j, (im, d) in enumerate(zip(images, distances))], className="ms-gallery ms-synth-gallery")
        frames: Frames = {"src": [], "caption": []}
        head = f"{plural(len(images), 'image')} asked at ({x:.3g}, {y:.3g})"
    else:
        gallery = None
        frames = {"src": [to_png_data_uri(im, max_size=IMAGE_PX) for im in images],
                  "caption": [f"step {i + 1} of {len(images)} · ({px:.3g}, {py:.3g}) · landed {d:.2g} away"
                              for i, ((px, py), d) in enumerate(zip(g.asked, distances))]}
        head = f"{plural(len(images), 'image')} along a path of length {request['length']:.3g} (map units)"
    view = [html.Div(head, className="small fw-bold"), made_by(sampler, request["params"]["seed"]),
            html.Div(landing_sentence(g, scale), className="small ms-synth-landing"),
            gallery, intensity_scale(0.0, 1.0, class_name="ms-synth-scale")]
    return view, marks_of(g, request["mode"] == "path"), frames


def export_file(store: ResultStore, current: MapRef | None, request: SynthesisRequest | None, what: str) -> dict:
    """``dcc.send_bytes`` payload of the last request's images, generated again from its seed."""
    if not current or not request:
        raise ValueError("Nothing generated yet: click or draw a path on the map first.")
    g, sampler = synthesize(store, current, request)
    n = g.distances.shape[1]
    args = (g.images.reshape(-1, *g.images.shape[2:]), np.repeat(g.asked, n, axis=0), g.landed.reshape(-1, 2),
            provenance(request, current, sampler))
    stem = f"synthesis-{request['map']}-{request['mode']}-seed{request['params']['seed']}"
    if what == "npz":
        return dcc.send_bytes(export.to_npz(*args), f"{stem}.npz", type="application/octet-stream")
    return dcc.send_bytes(export.to_tiff(*args), f"{stem}.tif", type="image/tiff")


# -- the component -----------------------------------------------------------------------------
_id = part_ids("SynthesisAIO")


class SynthesisAIO(html.Div):
    """Mode switch, sampler and its parameters, the generated images, a path player and exports."""

    class ids:
        mode = _id("mode")
        sampler = _id("sampler")
        field = staticmethod(lambda aio_id, name: {"component": "SynthesisAIO", "subcomponent": f"field-{name}",
                                                   "aio_id": aio_id})
        note = _id("note")
        result = _id("result")
        message = _id("message")
        marks = _id("marks")
        shown = _id("shown")
        request = _id("request")
        sequence = _id("sequence")
        player = _id("player")
        caption = _id("caption")
        slider = _id("slider")
        play = _id("play")
        tick = _id("tick")
        frames = _id("frames")
        export_npz = _id("export-npz")
        export_tiff = _id("export-tiff")
        download = _id("download")

    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        ids = self.ids
        fields = dbc.Row([dbc.Col(dbc.InputGroup([
            dbc.InputGroupText(html.Span(f.label, title=f.hint)),
            dbc.Input(id=ids.field(aio_id, f.name), type="number", value=f.default, step="any",
                      className=f"ms-synth-{f.name}", debounce=True),
        ], size="sm"), width=6) for f in FIELDS], className="g-1")
        super().__init__([
            html.H6("Synthesis from the map", className="mb-1"),
            dbc.RadioItems(id=ids.mode(aio_id), options=[{"label": v, "value": k} for k, v in MODES.items()],
                           value="inspect", inline=True, className="small ms-synth-mode"),
            html.Div(hint(MODE_HINTS["inspect"]), id=ids.note(aio_id), className="ms-synth-note"),
            dbc.Select(id=ids.sampler(aio_id), size="sm", options=[], placeholder="no sampler for this map",
                       className="mb-1 ms-synth-sampler"),
            fields,
            html.Div(id=ids.message(aio_id), className="ms-synth-message"),
            dcc.Loading(html.Div(id=ids.result(aio_id), className="mt-1 ms-synth-result"), type="dot"),
            html.Div(player(ids, aio_id, "ms-synth"), id=ids.sequence(aio_id), className="ms-synth-sequence",
                     style={"maxWidth": f"{IMAGE_PX * 2}px", "display": "none"}),
            html.Div([
                dbc.Button("Images NPZ", id=ids.export_npz(aio_id), size="sm", color="secondary", outline=True,
                           className="me-2", title="images, asked and landed map points, sampler, parameters, seed"),
                dbc.Button("Images TIFF", id=ids.export_tiff(aio_id), size="sm", color="secondary", outline=True,
                           title="one page per image, in order; provenance in the description"),
                dcc.Download(id=ids.download(aio_id)),
            ], className="my-1"),
            dcc.Store(id=ids.marks(aio_id)), dcc.Store(id=ids.shown(aio_id)), dcc.Store(id=ids.request(aio_id)),
        ], className="my-2 ms-synthesis")


# -- callbacks ---------------------------------------------------------------------------------
callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)
register_player(callbacks, SynthesisAIO.ids)


@callbacks.callback(
    Output(SynthesisAIO.ids.sampler(MATCH), "options"),
    Output(SynthesisAIO.ids.sampler(MATCH), "value"),
    Output(SynthesisAIO.ids.note(MATCH), "children"),
    Output(SynthesisAIO.ids.marks(MATCH), "data", allow_duplicate=True),
    Input(CURRENT, "data"),
    Input(RESULTS_VERSION, "data"),
    Input(SynthesisAIO.ids.mode(MATCH), "value"),
    State(SynthesisAIO.ids.sampler(MATCH), "value"),
    prevent_initial_call="initial_duplicate",
)
def _samplers(services: Services, current: MapRef | None, _version, mode: Mode, chosen):
    found, error = with_store(services, "list the samplers", sampler_options, current)
    if error is not None:
        return [], None, error, no_update
    options, why = found
    values = [o["value"] for o in options]
    note = hint(why) if why and mode != "inspect" else hint(MODE_HINTS[mode or "inspect"])
    marks = None if ctx.triggered_id == CURRENT else no_update  # another map: the old marks mean nothing
    return options, chosen if chosen in values else (values or [None])[0], note, marks


@callbacks.callback(
    Output(SynthesisAIO.ids.result(MATCH), "children"),
    Output(SynthesisAIO.ids.marks(MATCH), "data"),
    Output(SynthesisAIO.ids.frames(MATCH), "data"),
    Output(SynthesisAIO.ids.slider(MATCH), "max"),
    Output(SynthesisAIO.ids.slider(MATCH), "value"),
    Output(SynthesisAIO.ids.request(MATCH), "data"),
    Output(SynthesisAIO.ids.message(MATCH), "children"),
    Input(MAP_POINT, "data"),
    Input(DRAWN_PATH, "data"),
    State(SynthesisAIO.ids.mode(MATCH), "value"),
    State(CURRENT, "data"),
    State(SynthesisAIO.ids.sampler(MATCH), "value"),
    [State(SynthesisAIO.ids.field(MATCH, f.name), "value") for f in FIELDS],
    prevent_initial_call=True,
)
def _generate(services: Services, point: MapPoint | None, drawn: DrawnPath | None, mode: Mode,
              current: MapRef | None, sampler, *values):
    return generate_outputs(services, ctx.triggered_id, point, drawn, mode, current, sampler,
                            dict(zip([f.name for f in FIELDS], values)))


def generate_outputs(services: Services, trigger: str | None, point: MapPoint | None, drawn: DrawnPath | None,
                     mode: Mode, current: MapRef | None, sampler: str | None, values: Mapping[str, Any]):
    """The generate callback's outputs; a click in another mode, or a path outside path mode, does nothing."""
    if (mode, trigger) not in (("click", MAP_POINT), ("path", DRAWN_PATH)) or not current:
        raise PreventUpdate
    if current.get("n_components", 2) != 2:  # a click on a 3-D map: the sampler list says why not
        raise PreventUpdate
    keep = (no_update,) * 6
    try:
        params = build_params(values, sampler)
        request = request_for(mode, point, drawn, params, current)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return (*keep, dbc.Alert(f"Check the form: {problems}", color="warning", className="small py-1 my-1"))
    except ValueError as exc:
        return (*keep, dbc.Alert(str(exc), color="warning", className="small py-1 my-1"))
    found, error = with_store(services, "generate images here", result_view, current, request)
    if error is not None:
        return (*keep, error)
    view, marks, frames = found
    return view, marks, frames, max(len(frames["src"]) - 1, 0), 0, request, None


callbacks.clientside(
    "function(mode, marks) { return window.morphoSynth ? window.morphoSynth.show(mode, marks) : mode; }",
    Output(SynthesisAIO.ids.shown(MATCH), "data"),
    Input(SynthesisAIO.ids.mode(MATCH), "value"),
    Input(SynthesisAIO.ids.marks(MATCH), "data"),
)


callbacks.clientside(  # the player only when there is a sequence to play
    f"""function(frames) {{
        return {{maxWidth: "{IMAGE_PX * 2}px", display: frames && frames.src.length ? "block" : "none"}};
    }}""",
    Output(SynthesisAIO.ids.sequence(MATCH), "style"),
    Input(SynthesisAIO.ids.frames(MATCH), "data"),
)


@callbacks.callback(
    Output(SynthesisAIO.ids.download(MATCH), "data"),
    Output(SynthesisAIO.ids.message(MATCH), "children", allow_duplicate=True),
    Input(SynthesisAIO.ids.export_npz(MATCH), "n_clicks"),
    Input(SynthesisAIO.ids.export_tiff(MATCH), "n_clicks"),
    State(CURRENT, "data"),
    State(SynthesisAIO.ids.request(MATCH), "data"),
    prevent_initial_call=True,
)
def _export(services: Services, _npz, _tiff, current: MapRef | None, request: SynthesisRequest | None):
    what = ctx.triggered_id["subcomponent"].removeprefix("export-")
    payload, error = with_store(services, f"export the images as {what.upper()}", export_file, current, request, what)
    return (no_update, error) if error is not None else (payload, None)
