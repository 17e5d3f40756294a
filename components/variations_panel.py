"""Material variations panel: sample variations around the map's selection, then explore them.

Left, the "Sample variations" form: the reference states are the frames selected on the map
(``SELECTION``; at most :data:`REFERENCE_CAP`, evenly spaced) or, with nothing selected, M draws
from the prior; γ, N, seed, a filter preset by kind of data that fills the three plausibility
filters (each still editable: editing one makes the preset ``custom``), the dendrogram cut, the
number of diffusion modes and the measured window W (frames of real motion set beside). It builds the
flow's own parameter model (``flows.params.SampleVariationsParams``) so a bad value is refused
here with the field, the value and the range, then submits a ``sample-variations`` run and hands
its record to the jobs panel (``SUBMITTED``), which shows its progress and lets it be cancelled.
Beside γ, the newest γ calibration of the map's model; right and below, the results (reloaded on
``RESULTS_VERSION``): a variations node's summary, reference states, clusters, exports, and its
particle traces: diffusion modes, area histogram, box plots per mode, the traces of one mode
highlighted on the reference images and a CSV per trace; then the sampled traces beside real motion
(``components.measured_views``: paired box plots and the ratio of mean areas, the method's check).

What those show is in ``components.variations_views``, plain functions of ``(store, ...)``; this
module holds the form helpers, the component and the callbacks. Callbacks only route, and every
failure becomes a message in the panel (``components.errors``) while the page keeps working.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
from dash import MATCH, Input, Output, State, ctx, dcc, html, no_update
from pydantic import BaseModel, ValidationError

from components.errors import with_store
from components.ids import CURRENT, RESULTS_VERSION, SELECTION, part_ids
from components.pictures import hint
from components.player import player as player_view, register_player
from components.records import MapRef, Selection, selected_indices
from components.services import Callbacks, Services
from components.words import plural
from components.measured_views import comparison_view
from components.job_forms import FormField, Submitted, field_of, form_problems, problems_alert, run_record
from components.variations_views import (NO_CALIBRATION, NO_MAP, calibration_view, chosen_variations,
                                         clusters_view, export_file, load_variations, mode_view, reference_view,
                                         summary_view, traces_view, variations_options)
from core.data.reader import ResultStore
from core.variations.filters import CUSTOM, DEFAULT_PRESET, PRESETS, FilterParams
from flows import params as fp


FLOW = "sample-variations"
REFERENCE_CAP = 200  # lassoed frames used as references at most: M × N decodes, and a readable dendrogram

_P = fp.SampleVariationsParams
FIELDS: tuple[FormField, ...] = (
    field_of(_P, "gamma", "γ", hint="Each latent component moves by U[−γ, γ]."),
    field_of(_P, "n_per_reference", "N per reference"),
    field_of(_P, "seed", "Seed"),
    field_of(fp.VariationFilters, "preset", "Filter preset",
             hint="particles: |ΔH| only (diffusion); clumps: mass and IoU. Editing a filter makes it custom."),
    field_of(fp.VariationFilters, "entropy_max", "Max |ΔH| (bits)", hint="Filters: blank = off."),
    field_of(fp.VariationFilters, "iou_min", "Min IoU", hint=""),
    field_of(fp.VariationFilters, "intensity_max", "Max intensity dev.", hint=""),
    field_of(_P, "n_clusters", "Clusters (cut)", hint="The results can be re-cut without a new run."),
    field_of(_P, "n_modes", "Diffusion modes", hint="Where the particle traces' dendrogram is cut (the paper: 3)."),
    field_of(_P, "measured_window", "Measured window W (frames)",
             hint="Real traces over W consecutive frames beside the sampled ones (2 = one frame interval; "
                  "the dataset needs a frame interval). Blank: none."),
    field_of(fp.ReferenceStates, "n_prior", "Prior draws M", default=20,
             hint="Used only when nothing is selected on the map."),
)
FILTER_FIELDS = fp.THRESHOLDS


# -- the form: reference states, parameters, their problems -----------------------------------
def capped(indices: list[int], cap: int = REFERENCE_CAP) -> list[int]:
    """At most ``cap`` of the sorted indices, evenly spaced, so a large lasso is represented over
    its whole extent rather than by its first frames."""
    if len(indices) <= cap:
        return indices
    return [indices[i] for i in np.linspace(0, len(indices) - 1, cap).round().astype(int)]


def references_note(selection: Selection | None, current: MapRef | None) -> Any:
    """What the run will use as reference states, in words."""
    if not current:
        return hint(NO_MAP)
    n = len(set(selected_indices(selection)))
    if not n:
        return html.Span("Nothing selected on the map: the reference states are M draws from the prior "
                         "N(0, I). Lasso frames on the map to use them instead.")
    if n <= REFERENCE_CAP:
        return html.Span([html.B(plural(n, "frame")), f" selected on the map → {plural(n, 'reference state')}."])
    return html.Span([html.B(f"{n:,}"), f" frames selected: {REFERENCE_CAP} of them, evenly spaced, are the "
                      f"reference states (cap {REFERENCE_CAP})."])


def build_params(values: Mapping[str, Any], selection: Selection | None, current: MapRef) -> fp.SampleVariationsParams:
    """The flow's parameters from the form; raises pydantic's ValidationError.

    A blank filter or measured window is None (off); a blank γ, N, seed, cut or number of modes
    stays None and is reported as empty rather than silently replaced by its default.
    """
    values = {k: None if v is None or (isinstance(v, str) and not v.strip()) else v for k, v in values.items()}
    indices = capped(sorted(set(selected_indices(selection))))
    references = ({"latents_id": current.get("latents_id"), "indices": indices} if indices
                  else {"n_prior": values.get("n_prior")})
    return fp.SampleVariationsParams(
        model_id=current.get("model_id"), references=references,
        filters={"preset": values.get("preset") or DEFAULT_PRESET, **{name: values.get(name) for name in FILTER_FIELDS}},
        **{name: values.get(name)
           for name in ("gamma", "n_per_reference", "seed", "n_clusters", "n_modes", "measured_window")},
    )


def preset_form(changed: str | None, preset: str | None, thresholds: Mapping[str, Any]) -> tuple[str, dict]:
    """(preset, thresholds) the form shows once ``changed`` ('preset' or a threshold's name) changed.

    A preset chosen fills its thresholds (``custom`` keeps those shown); an edited threshold
    selects the preset the thresholds now are, else ``custom``.
    """
    if changed == "preset":
        values = PRESETS.get(preset)
        return preset or CUSTOM, dict(thresholds) if values is None else {n: values[n] for n in thresholds}
    try:
        numbers = {n: None if v is None or (isinstance(v, str) and not v.strip()) else float(v)
                   for n, v in thresholds.items()}
    except (TypeError, ValueError):  # text in a number box: not any preset
        return CUSTOM, dict(thresholds)
    return FilterParams(**numbers).preset, dict(thresholds)


def summarize(params: fp.SampleVariationsParams) -> str:
    """One line for the runs table."""
    refs = params.references
    source = f"{len(refs.indices)} lassoed frames" if refs.indices else f"{refs.n_prior} prior draws"
    return f"variations γ={params.gamma:g}, {params.n_per_reference} per reference of {source} on {params.model_id}"


def submit_variations(values: Mapping[str, Any], selection: Selection | None, current: MapRef | None,
                      submit: Callable[[str, BaseModel], str]) -> Submitted:
    """Validate the form, then submit; nothing reaches Prefect when a value is out of range."""
    if not current or not current.get("model_id"):
        return Submitted(error=NO_MAP)
    try:
        params = build_params(values, selection, current)
    except ValidationError as exc:
        return Submitted(problems=form_problems(exc, fp.SampleVariationsParams, FIELDS))
    try:
        run_id = submit(FLOW, params)
    except Exception as exc:  # SubmitError says what to do; anything else still gets shown
        return Submitted(error=str(exc) or type(exc).__name__)
    return Submitted(record=run_record(run_id, "variations", FLOW, "variations", summarize(params)))


def submitted_message(done: Submitted) -> Any:
    if done.problems:
        return problems_alert(done.problems)
    if done.error:
        return dbc.Alert(done.error, color="danger", className="py-1 px-2 mb-0 small")
    return html.Span(f"Submitted {FLOW} run {done.record['id'][:8]}…: its progress is in the Jobs panel; "
                     "the result appears below when it completes.", className="text-success small")


# -- the component ---------------------------------------------------------------------------------
_id = part_ids("VariationsAIO")


class VariationsAIO(html.Div):
    """The "Material variations" panel, collapsed until opened; its body (123 components, about
    1.4 s of the browser's CPU on each page load: bench/page_load.py) is made when it is first
    opened, and its callbacks run then, on the page's selection and map at that moment."""

    class ids:
        accordion = _id("accordion")
        body = _id("body")
        field = staticmethod(lambda aio_id, name: {"component": "VariationsAIO", "subcomponent": f"field-{name}",
                                                   "aio_id": aio_id})
        references = _id("references")
        submit = _id("submit")
        message = _id("message")
        submitted = _id("submitted")  # the last run record, forwarded to the page's SUBMITTED
        calibration = _id("calibration")
        suggested = _id("suggested")
        use_suggested = _id("use-suggested")
        results = _id("results")
        results_message = _id("results-message")
        summary = _id("summary")
        reference = _id("reference")
        images = _id("images")
        gallery = _id("gallery")
        frames = _id("frames")
        player = _id("player")
        caption = _id("caption")
        slider = _id("slider")
        play = _id("play")
        tick = _id("tick")
        cut = _id("cut")
        clusters = _id("clusters")
        embedding = _id("embedding")
        export_csv = _id("export-csv")
        export_npz = _id("export-npz")
        export_tiff = _id("export-tiff")
        download = _id("download")
        export_message = _id("export-message")
        modes = _id("modes")
        mode = _id("mode")
        mode_images = _id("mode-images")
        measured = _id("measured")

    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        super().__init__(dbc.Accordion(dbc.AccordionItem(html.Div(id=self.ids.body(aio_id)),
                                                         title="Material variations: Monte Carlo samples "
                                                         "around the selected states", item_id="variations"),
                                       id=self.ids.accordion(aio_id), start_collapsed=True),
                         className="my-2 ms-variations")

    @classmethod
    def body(cls, aio_id: str) -> list:
        ids = cls.ids
        form = html.Div([
            html.Div(hint(NO_MAP), id=ids.references(aio_id), className="small mb-2 ms-var-refs"),
            *[cls._input(aio_id, f) for f in FIELDS],
            dbc.Button("Sample variations", id=ids.submit(aio_id), size="sm", color="primary",
                       className="mt-1 variations-submit"),
            html.Div(id=ids.message(aio_id), className="mt-2 variations-message"),
            dcc.Store(id=ids.submitted(aio_id)),
        ])
        calibration = html.Div([
            html.Div("γ calibration", className="fw-bold small"),
            dcc.Loading(html.Div(hint(NO_CALIBRATION), id=ids.calibration(aio_id), className="ms-var-calibration"),
                        type="dot"),
            dbc.Button("Use the suggested γ", id=ids.use_suggested(aio_id), size="sm", color="link",
                       disabled=True, className="p-0"),
            dcc.Store(id=ids.suggested(aio_id)),
        ])
        player = player_view(ids, aio_id, "ms-var")
        exports = html.Div([
            dbc.Button("Descriptors CSV", id=ids.export_csv(aio_id), size="sm", color="secondary", outline=True,
                       className="me-2", title="one row per reference: descriptors, HAC cluster at the cut, embedding"),
            dbc.Button("Reference NPZ", id=ids.export_npz(aio_id), size="sm", color="secondary", outline=True,
                       className="me-2", title="reference, trace, every kept sample and its ‖ε‖"),
            dbc.Button("Reference TIFF", id=ids.export_tiff(aio_id), size="sm", color="secondary", outline=True,
                       title="multi-page: reference, trace, then the kept samples by ‖ε‖"),
            dcc.Download(id=ids.download(aio_id)),
            html.Div(id=ids.export_message(aio_id)),
        ], className="my-2")
        results = html.Div([
            dbc.Select(id=ids.results(aio_id), size="sm", options=[], placeholder="no variations of this model yet",
                       className="ms-var-results"),
            html.Div(id=ids.results_message(aio_id)),
            dcc.Loading(html.Div(id=ids.summary(aio_id), className="my-2"), type="dot"),
            dbc.Row([
                dbc.Col(dbc.Label("Reference state", className="small mb-0"), width="auto"),
                dbc.Col(dcc.Dropdown(id=ids.reference(aio_id), clearable=False, className="ms-var-reference")),
            ], align="center", className="g-2"),
            dbc.Row([
                dbc.Col(dcc.Loading(html.Div(id=ids.images(aio_id), className="d-flex gap-2"), type="dot"), md=8),
                dbc.Col(player, md=4),
            ], className="g-2 mt-1"),
            dcc.Loading(html.Div(id=ids.gallery(aio_id), className="mt-1"), type="dot"),
            exports,
        ])
        body = [
            dbc.Row([
                dbc.Col([html.H6("Sample variations"), form], md=3),
                dbc.Col(calibration, md=3),
                dbc.Col([html.H6("Results"), results], md=6),
            ]),
            dbc.Row([
                dbc.Col(dbc.Label("HAC clusters (cut)", className="small mb-0"), width="auto"),
                dbc.Col(dbc.Input(id=ids.cut(aio_id), type="number", min=1, step=1, size="sm", debounce=True,
                                  className="variations-cut"), width=2),
            ], align="center", className="g-2 mt-2"),
            dcc.Loading(html.Div(id=ids.clusters(aio_id), className="mt-1"), type="circle"),
            html.H6("Particle traces and diffusion modes", className="mt-3"),
            dcc.Loading(html.Div(id=ids.modes(aio_id), className="mt-1 ms-var-modes"), type="circle"),
            dbc.Row([
                dbc.Col(dbc.Label("Highlight the traces of", className="small mb-0"), width="auto"),
                dbc.Col(dcc.Dropdown(id=ids.mode(aio_id), clearable=False, className="ms-var-mode"), md=4),
            ], align="center", className="g-2 mt-1"),
            dcc.Loading(html.Div(id=ids.mode_images(aio_id), className="d-flex flex-wrap gap-2 mt-1"), type="dot"),
            html.H6("Sampled vs measured traces", className="mt-3"),
            dcc.Loading(html.Div(id=ids.measured(aio_id), className="mt-1 ms-var-measured"), type="circle"),
        ]
        return body

    @classmethod
    def _input(cls, aio_id: str, f: FormField) -> dbc.Row:
        id_, name_class = cls.ids.field(aio_id, f.name), f"variations-{f.name}"
        control = (dbc.Select(id=id_, value=f.default, size="sm", className=name_class,
                              options=[{"label": o, "value": o} for o in f.options]) if f.kind == "select"
                   else dbc.Input(id=id_, type="number", value=f.default, step="any", size="sm", className=name_class))
        return dbc.Row([
            dbc.Label(f.label, width=6, className="small py-1"),
            dbc.Col([control, dbc.FormText(f.hint) if f.hint else None], width=6),
        ], className="mb-1")


# -- what a result opens on --------------------------------------------------------------------
def opening_reference(store: ResultStore, variations_id: str) -> int | None:
    """The first reference that kept samples (one that kept none has nothing to play), else the first."""
    descriptors = load_variations(store, variations_id).descriptors
    kept = descriptors.loc[descriptors["n_kept"] > 0, "reference"]
    references = (kept if len(kept) else descriptors["reference"]).astype(int)
    return int(references.iloc[0]) if len(references) else None


def opened_summary(store: ResultStore, variations_id: str) -> tuple[Any, list[dict], int | None, int | None]:
    """(summary, reference options, the reference shown first, the cut) of a variations result."""
    view, options, cut_value = summary_view(store, variations_id)
    return view, options, opening_reference(store, variations_id), cut_value


# -- callbacks: route, call a view, show failures in the panel -----------------------------------

callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)


@callbacks.callback(Output(VariationsAIO.ids.body(MATCH), "children"),
                    Input(VariationsAIO.ids.accordion(MATCH), "active_item"),
                    State(VariationsAIO.ids.body(MATCH), "children"), prevent_initial_call=True)
def _mount(active: str | None, mounted: Any):
    """The body, the first time the panel is opened (then kept, closed or not)."""
    if not active or mounted:
        return no_update
    return VariationsAIO.body(ctx.triggered_id["aio_id"])


@callbacks.callback(
    Output(VariationsAIO.ids.references(MATCH), "children"),
    Output(VariationsAIO.ids.field(MATCH, "n_prior"), "disabled"),
    Input(SELECTION, "data"),
    Input(CURRENT, "data"),
)
def _references(selection: Selection | None, current: MapRef | None):
    return references_note(selection, current), bool(selected_indices(selection))


@callbacks.callback(
    Output(VariationsAIO.ids.field(MATCH, "preset"), "value"),
    *[Output(VariationsAIO.ids.field(MATCH, name), "value") for name in FILTER_FIELDS],
    Input(VariationsAIO.ids.field(MATCH, "preset"), "value"),
    *[Input(VariationsAIO.ids.field(MATCH, name), "value") for name in FILTER_FIELDS],
    prevent_initial_call=True,
)
def _preset(preset, *values):
    """A preset fills the filters; editing a filter shows the preset it now is (or custom)."""
    changed = ctx.triggered_id["subcomponent"].removeprefix("field-")
    shown, thresholds = preset_form(changed, preset, dict(zip(FILTER_FIELDS, values)))
    fills = [thresholds[n] for n in FILTER_FIELDS] if changed == "preset" else [no_update] * len(FILTER_FIELDS)
    return (no_update if shown == preset else shown), *fills


@callbacks.callback(
    Output(VariationsAIO.ids.message(MATCH), "children"),
    Output(VariationsAIO.ids.submitted(MATCH), "data"),
    Input(VariationsAIO.ids.submit(MATCH), "n_clicks"),
    [State(VariationsAIO.ids.field(MATCH, f.name), "value") for f in FIELDS],
    State(SELECTION, "data"),
    State(CURRENT, "data"),
    prevent_initial_call=True,
)
def _submit(n_clicks, *args):
    if not n_clicks:
        return no_update, no_update
    *values, selection, current = args
    from flows.submit import submit  # Prefect loads on first use

    done = submit_variations(dict(zip([f.name for f in FIELDS], values)), selection, current, submit)
    return submitted_message(done), done.record or no_update


@callbacks.callback(
    Output(VariationsAIO.ids.calibration(MATCH), "children"),
    Output(VariationsAIO.ids.suggested(MATCH), "data"),
    Output(VariationsAIO.ids.use_suggested(MATCH), "disabled"),
    Input(CURRENT, "data"),
    Input(RESULTS_VERSION, "data"),
)
def _calibration(services: Services, current: MapRef | None, _version):
    result, error = with_store(services, "read the γ calibration", calibration_view, current)
    view, suggested = result or (error, None)
    return view, suggested, suggested is None


callbacks.clientside(
    "function(n, gamma) { return (n && gamma !== null && gamma !== undefined) ? gamma : dash_clientside.no_update; }",
    Output(VariationsAIO.ids.field(MATCH, "gamma"), "value"),
    Input(VariationsAIO.ids.use_suggested(MATCH), "n_clicks"),
    State(VariationsAIO.ids.suggested(MATCH), "data"),
    prevent_initial_call=True,
)


@callbacks.callback(
    Output(VariationsAIO.ids.results(MATCH), "options"),
    Output(VariationsAIO.ids.results(MATCH), "value"),
    Output(VariationsAIO.ids.results_message(MATCH), "children"),
    Input(CURRENT, "data"),
    Input(RESULTS_VERSION, "data"),
    State(VariationsAIO.ids.results(MATCH), "options"),
    State(VariationsAIO.ids.results(MATCH), "value"),
)
def _results(services: Services, current: MapRef | None, _version, before, value):
    options, error = with_store(services, "list the variations", variations_options, current)
    if error is not None:
        return [], None, error
    if not options:
        text = NO_MAP if not current else "No variations of this model yet: sample some with the form."
        return [], None, hint(text)
    same_map = ctx.triggered_id == RESULTS_VERSION  # a new map's results are not "new"
    return options, chosen_variations(options, before if same_map else None, value), None


@callbacks.callback(
    Output(VariationsAIO.ids.summary(MATCH), "children"),
    Output(VariationsAIO.ids.reference(MATCH), "options"),
    Output(VariationsAIO.ids.reference(MATCH), "value"),
    Output(VariationsAIO.ids.cut(MATCH), "value"),
    Output(VariationsAIO.ids.cut(MATCH), "disabled"),
    Input(VariationsAIO.ids.results(MATCH), "value"),
)
def _summary(services: Services, variations_id):
    if not variations_id:
        return None, [], None, None, True
    result, error = with_store(services, "read the variations", opened_summary, variations_id)
    if error is not None:
        return error, [], None, None, True
    view, options, reference, cut_value = result
    return view, options, reference, cut_value, cut_value is None


@callbacks.callback(
    Output(VariationsAIO.ids.images(MATCH), "children"),
    Output(VariationsAIO.ids.gallery(MATCH), "children"),
    Output(VariationsAIO.ids.frames(MATCH), "data"),
    Output(VariationsAIO.ids.slider(MATCH), "max"),
    Output(VariationsAIO.ids.slider(MATCH), "value"),
    Input(VariationsAIO.ids.results(MATCH), "value"),
    Input(VariationsAIO.ids.reference(MATCH), "value"),
)
def _reference(services: Services, variations_id, reference):
    if not variations_id or reference is None:
        return None, None, None, 0, 0
    result, error = with_store(services, "show the reference state", reference_view, variations_id, int(reference))
    if error is not None:
        return error, None, None, 0, 0
    images, gallery, frames = result
    return images, gallery, frames, len(frames["src"]) - 1, 0


register_player(callbacks, VariationsAIO.ids)  # the player runs in the browser (components.player)


@callbacks.callback(
    Output(VariationsAIO.ids.clusters(MATCH), "children"),
    Input(VariationsAIO.ids.results(MATCH), "value"),
    Input(VariationsAIO.ids.cut(MATCH), "value"),
    State(VariationsAIO.ids.clusters(MATCH), "id"),
)
def _clusters(services: Services, variations_id, n_clusters, own_id):
    if not variations_id:
        return None
    view, error = with_store(services, "cluster the variations", clusters_view, variations_id,
                             None if n_clusters is None else int(n_clusters),
                             VariationsAIO.ids.embedding(own_id["aio_id"]))
    return error or view


@callbacks.callback(
    Output(VariationsAIO.ids.modes(MATCH), "children"),
    Output(VariationsAIO.ids.mode(MATCH), "options"),
    Output(VariationsAIO.ids.mode(MATCH), "value"),
    Input(VariationsAIO.ids.results(MATCH), "value"),
)
def _modes(services: Services, variations_id):
    if not variations_id:
        return None, [], None
    result, error = with_store(services, "read the particle traces", traces_view, variations_id)
    return (error, [], None) if error is not None else result


@callbacks.callback(
    Output(VariationsAIO.ids.mode_images(MATCH), "children"),
    Input(VariationsAIO.ids.mode(MATCH), "value"),
    State(VariationsAIO.ids.results(MATCH), "value"),
)
def _mode_images(services: Services, mode, variations_id):
    if not variations_id or mode is None:
        return None
    view, error = with_store(services, "highlight the traces of a mode", mode_view, variations_id, int(mode))
    return error or view


@callbacks.callback(
    Output(VariationsAIO.ids.measured(MATCH), "children"),
    Input(VariationsAIO.ids.results(MATCH), "value"),
)
def _measured(services: Services, variations_id):
    if not variations_id:
        return None
    view, error = with_store(services, "compare sampled and measured traces", comparison_view, variations_id)
    return error or view


@callbacks.callback(
    Output(VariationsAIO.ids.reference(MATCH), "value", allow_duplicate=True),
    Input(VariationsAIO.ids.embedding(MATCH), "clickData"),
    prevent_initial_call=True,
)
def _pick_reference(click):
    """A click on a variation in the embedding shows its reference state."""
    found = [p["customdata"] for p in (click or {}).get("points") or [] if "customdata" in p]
    return int(found[0]) if found else no_update


@callbacks.callback(
    Output(VariationsAIO.ids.download(MATCH), "data"),
    Output(VariationsAIO.ids.export_message(MATCH), "children"),
    Input(VariationsAIO.ids.export_csv(MATCH), "n_clicks"),
    Input(VariationsAIO.ids.export_npz(MATCH), "n_clicks"),
    Input(VariationsAIO.ids.export_tiff(MATCH), "n_clicks"),
    State(VariationsAIO.ids.results(MATCH), "value"),
    State(VariationsAIO.ids.reference(MATCH), "value"),
    State(VariationsAIO.ids.cut(MATCH), "value"),
    prevent_initial_call=True,
)
def _export(services: Services, _csv, _npz, _tiff, variations_id, reference, n_clusters):
    what = ctx.triggered_id["subcomponent"].removeprefix("export-")
    payload, error = with_store(services, f"export the variations as {what.upper()}", export_file, variations_id, what,
                                reference, None if n_clusters is None else int(n_clusters))
    return (no_update, error) if error is not None else (payload, None)
