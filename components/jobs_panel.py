"""Jobs panel: forms that submit Prefect flow runs, and a table that follows them.

Every heavy step (ingest, train, encode, project, cluster) is a flow run on a worker; this
panel only builds the flow's parameter model (so bad input is refused here, with the field,
the value and the allowed range), submits it, and polls the runs it submitted. When a run
completes it bumps the page's ``RESULTS_VERSION`` so the selectors reload what Tiled holds.

The logic is in plain functions (:func:`build_params`, :func:`explain`, :func:`submit_job`,
:func:`status_row`, :func:`refresh`) that unit tests call without a browser; the callbacks
below the class only move values between the page and those functions.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

import dash_bootstrap_components as dbc
from annotated_types import Ge, Gt, Le, Lt
from dash import ALL, MATCH, Input, Output, State, callback, ctx, dcc, html, no_update
from pydantic import BaseModel, ValidationError

from components import context
from components.ids import RESULTS_VERSION
from components.sidebar import describe
from core.preprocess import PreprocessParams
from core.store import StoreError
from flows import params as fp

log = logging.getLogger(__name__)

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")  # as flows.submit.FINAL, without importing Prefect
STATE_COLOURS = {
    "SCHEDULED": "secondary", "PENDING": "secondary", "RUNNING": "primary", "COMPLETED": "success",
    "FAILED": "danger", "CRASHED": "danger", "CANCELLING": "warning", "CANCELLED": "dark",
    "PAUSED": "info", "UNKNOWN": "light",
}


# -- the forms, as data ----------------------------------------------------------------------
@dataclass(frozen=True)
class FormField:
    """One input of a job form; ``name`` is the parameter it fills."""

    name: str
    label: str
    kind: Literal["number", "text", "textarea", "select", "radio", "switch", "result"]
    default: Any = None
    options: tuple = ()  # select / radio: the values offered
    result_kind: str | None = None  # "result": which kind of Tiled result the options list
    hint: str = ""


@dataclass(frozen=True)
class Job:
    flow: str  # the Prefect flow (deployment) name
    title: str
    model: type[BaseModel]
    result_kind: str  # what a completed run leaves in Tiled
    fields: tuple[FormField, ...] = field(default_factory=tuple)


def _default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].default


_PRE = PreprocessParams()
JOBS: dict[str, Job] = {
    "ingest": Job("ingest", "Ingest", fp.IngestParams, "datasets", (
        FormField("source", "Source", "textarea",
                  hint="A folder, a glob (/data/run7/*.tif), a file (file.h5::/entry/data) or "
                       "tiled+http://…; one per line. It must lie under the worker's data roots."),
        FormField("name", "Name", "text"),
        FormField("size", "Size (px)", "number", _PRE.size, hint="Square side after resizing."),
        FormField("patch_size", "Patch size", "number", _PRE.patch_size,
                  hint="Cut each frame into square windows first; empty for whole frames."),
        FormField("clip_lo", "Clip low %", "number", _PRE.clip_percentiles[0],
                  hint="Percentile clipping; empty both for none."),
        FormField("clip_hi", "Clip high %", "number", _PRE.clip_percentiles[1]),
        FormField("log", "log1p (scattering)", "switch", _PRE.log),
        FormField("mask_nonpositive", "Mask pixels ≤ 0 (detector gaps)", "switch", _PRE.mask_nonpositive),
    )),
    "train": Job("train-vae", "Train VAE", fp.TrainParams, "models", (
        FormField("dataset_id", "Dataset", "result", result_kind="datasets"),
        FormField("latent_dim", "Latent dim", "number", _default(fp.TrainParams, "latent_dim")),
        FormField("beta", "β (KL weight)", "number", _default(fp.TrainParams, "beta")),
        FormField("epochs", "Epochs", "number", _default(fp.TrainParams, "epochs")),
        FormField("batch_size", "Batch size", "number", _default(fp.TrainParams, "batch_size")),
        FormField("lr", "Learning rate", "number", _default(fp.TrainParams, "lr")),
        FormField("name", "Name", "text"),
    )),
    "encode": Job("encode", "Encode", fp.EncodeParams, "latents", (
        FormField("dataset_id", "Dataset", "result", result_kind="datasets"),
        FormField("model_id", "Model", "result", result_kind="models"),
        FormField("batch_size", "Batch size", "number", _default(fp.EncodeParams, "batch_size")),
    )),
    "project": Job("project", "Project", fp.ProjectParams, "projections", (
        FormField("latents_id", "Latents", "result", result_kind="latents"),
        FormField("method", "Method", "radio", _default(fp.ProjectParams, "method"), ("pca", "umap")),
        FormField("n_components", "Dimensions", "radio", _default(fp.ProjectParams, "n_components"), (2, 3)),
        FormField("n_neighbors", "Neighbours (UMAP)", "number", _default(fp.ProjectParams, "n_neighbors"),
                  hint="Small: local detail; large: global layout."),
        FormField("min_dist", "Min dist (UMAP)", "number", _default(fp.ProjectParams, "min_dist")),
        FormField("metric", "Metric (UMAP)", "select", _default(fp.ProjectParams, "metric"),
                  get_args(fp.ProjectParams.model_fields["metric"].annotation)),
    )),
    "cluster": Job("cluster", "Cluster", fp.ClusterParams, "clusterings", (
        FormField("projection_id", "Projection", "result", result_kind="projections"),
        FormField("space", "Space", "radio", _default(fp.ClusterParams, "space"), ("projection", "latent"),
                  hint="Cluster the map's coordinates or the full latent vectors."),
        FormField("min_cluster_size", "Min cluster size", "number", _default(fp.ClusterParams, "min_cluster_size")),
        FormField("min_samples", "Min samples", "number", _default(fp.ClusterParams, "min_samples"),
                  hint="Empty: same as min cluster size. Larger: more points called noise."),
    )),
}
RESULT_FIELDS = [(job, f) for job, spec in JOBS.items() for f in spec.fields if f.kind == "result"]


# -- parameters and their problems -----------------------------------------------------------
def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def build_params(job: str, values: Mapping[str, Any]) -> BaseModel:
    """The flow's parameter model from a form's values; raises pydantic's ValidationError.

    Empty text becomes None; an empty number stays None, so a required number is reported as
    empty rather than silently replaced by its default.
    """
    spec = JOBS[job]
    values = {k: (None if _blank(v) else v) for k, v in values.items()}
    if job == "ingest":
        sources = [s.strip() for s in (values.get("source") or "").splitlines() if s.strip()]
        lo, hi = values.get("clip_lo"), values.get("clip_hi")
        return fp.IngestParams(
            source=sources[0] if len(sources) == 1 else (sources or None),
            name=values.get("name"),
            preprocess={
                "size": values.get("size"),
                "patch_size": values.get("patch_size"),
                "clip_percentiles": None if lo is None and hi is None else (lo, hi),
                "log": bool(values.get("log")),
                "mask_nonpositive": bool(values.get("mask_nonpositive")),
            },
        )
    names = {f.name for f in spec.fields}
    data = {k: v for k, v in values.items() if k in names}
    if job == "project" and data.get("n_components") is not None:
        data["n_components"] = int(data["n_components"])  # radio values come back as sent, but be sure
    return spec.model(**data)


def _bounds(model: type[BaseModel], name: str) -> str:
    """'between 2 and 200', '> 0 and ≤ 1', "one of 'pca', 'umap'" or '' for a model field."""
    info = model.model_fields.get(name)
    if info is None:
        return ""
    if get_origin(info.annotation) is Literal:
        return "one of " + ", ".join(repr(v) for v in get_args(info.annotation))
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, Ge):
            lo = f"≥ {m.ge}"
        elif isinstance(m, Gt):
            lo = f"> {m.gt}"
        elif isinstance(m, Le):
            hi = f"≤ {m.le}"
        elif isinstance(m, Lt):
            hi = f"< {m.lt}"
    if lo and hi and lo.startswith("≥") and hi.startswith("≤"):
        return f"between {lo[2:]} and {hi[2:]}"
    return " and ".join(b for b in (lo, hi) if b)


def _label(job: str, name: str) -> str:
    """'Neighbours [n_neighbors]': the form's label and the parameter it fills."""
    for f in JOBS[job].fields:
        if f.name == name:
            short = f.label.split(" (")[0]
            return short if short.lower() == name.replace("_", " ") else f"{short} [{name}]"
    return name


@dataclass(frozen=True)
class Problem:
    field: str  # the form's label, with the parameter name
    value: Any
    text: str  # what is wrong and what is allowed

    def __str__(self) -> str:
        if self.field == "form":
            return self.text
        if self.value is None:
            return f"{self.field} is empty: {self.text}"
        return f"{self.field} = {self.value!r}: {self.text}"


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


CLIP_HINT = "enter both percentiles (0 ≤ low < high ≤ 100), or leave both empty for no clipping"
_PRE_FIELDS = {"size": "size", "patch_size": "patch_size", "log": "log", "mask_nonpositive": "mask_nonpositive",
               "clip_percentiles": "clip_lo"}  # the validator's message names the pair


def explain(job: str, exc: ValidationError) -> list[Problem]:
    """One readable problem per bad field: its label, the value given, the allowed range."""
    model = JOBS[job].model
    problems: dict[str, Problem] = {}
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, str)]
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        if loc[:2] == ["preprocess", "clip_percentiles"]:
            index = next((p for p in err["loc"] if isinstance(p, int)), 0)
            name = ("clip_lo", "clip_hi")[index]
            problems.setdefault(name, Problem(_label(job, name), value, CLIP_HINT))
            continue
        if loc and loc[0] == "preprocess":  # nested: preprocess.size
            name = _PRE_FIELDS.get(loc[1], loc[1]) if len(loc) > 1 else "preprocess"
            bounds = ""
        elif not loc:  # a model validator: "size=4 must be None or an integer between 8 and 1024"
            found = re.match(r"(\w+)=(.*?) (must .*)", msg)
            if found:
                name = _PRE_FIELDS.get(found.group(1), found.group(1))
                problems.setdefault(name, Problem(_label(job, name), _literal(found.group(2)), found.group(3)))
            else:
                problems.setdefault("form", Problem("form", None, msg))
            continue
        else:
            name = loc[0]  # unions add the member's type to loc ('source', 'str'): keep the field
            bounds = _bounds(model, name)
        if name in problems:
            continue
        if value is None:
            text = f"enter a value {bounds}" if bounds else "required"
        elif bounds:
            text = f"must be {bounds}"
        else:
            text = msg[:1].lower() + msg[1:]
        problems[name] = Problem(_label(job, name), value, text)
    return list(problems.values())


def summarize(job: str, params: BaseModel) -> str:
    """One line saying what a run does, for the runs table."""
    p = params
    if job == "ingest":
        source = p.source if isinstance(p.source, str) else f"{p.source[0]} (+{len(p.source) - 1})"
        return f"ingest {source} at {p.preprocess.size} px"
    if job == "train":
        return f"VAE d={p.latent_dim}, β={p.beta:g}, {p.epochs} epochs on {p.dataset_id}"
    if job == "encode":
        return f"encode {p.dataset_id} with {p.model_id}"
    if job == "project":
        extra = f", k={p.n_neighbors}, min_dist={p.min_dist:g}, {p.metric}" if p.method == "umap" else ""
        return f"{p.method.upper()} {p.n_components}-D{extra} of {p.latents_id}"
    min_samples = "" if p.min_samples is None else f", min samples {p.min_samples}"
    return f"HDBSCAN on {p.space}, min size {p.min_cluster_size}{min_samples} of {p.projection_id}"


@dataclass
class Submitted:
    """What :func:`submit_job` did: a run record to keep, or the problems that stopped it."""

    record: dict | None = None
    problems: list[Problem] = field(default_factory=list)
    error: str = ""


def submit_job(job: str, values: Mapping[str, Any], submit: Callable[[str, BaseModel], str]) -> Submitted:
    """Validate the form, then submit; nothing reaches Prefect when a value is out of range."""
    try:
        params = build_params(job, values)
    except ValidationError as exc:
        return Submitted(problems=explain(job, exc))
    try:
        run_id = submit(JOBS[job].flow, params)
    except Exception as exc:  # SubmitError says what to do; anything else still gets shown
        return Submitted(error=str(exc) or type(exc).__name__)
    return Submitted(record={
        "id": run_id, "job": job, "flow": JOBS[job].flow, "label": summarize(job, params),
        "submitted": dt.datetime.now().strftime("%H:%M:%S"),
    })


# -- following runs --------------------------------------------------------------------------
def format_elapsed(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def status_row(status: Any) -> dict:
    """A RunStatus (or anything with its fields) as a JSON-able row for the table."""
    state = status.state
    done = state in FINAL
    progress = 100.0 if state == "COMPLETED" else status.progress
    return {
        "state": state,
        "name": status.name,
        "colour": STATE_COLOURS.get(state, "light"),
        "progress": None if progress is None else float(progress),
        "description": status.description,
        "elapsed": format_elapsed(status.elapsed),
        "error": status.message if state in ("FAILED", "CRASHED") else "",
        "note": status.message if state in ("CANCELLED", "CANCELLING") else "",
        "done": done,
        "cancellable": not done and state != "CANCELLING",
    }


def unfinished(records: list[dict], rows: Mapping[str, dict]) -> bool:
    return any(not rows.get(r["id"], {}).get("done") for r in records)


def refresh(
    records: list[dict],
    rows: Mapping[str, dict],
    *,
    read_status: Callable[[str], Any],
    find_result: Callable[[str, str], str | None],
) -> tuple[dict[str, dict], int, str]:
    """Poll the runs not yet finished.

    Returns the rows by run id, how many runs completed since ``rows``, and a problem to show
    ('' when Prefect answered). A completed row gets ``result``: the id of what it stored.
    """
    rows = dict(rows)
    completed, problem = 0, ""
    for record in records:
        run_id = record["id"]
        if rows.get(run_id, {}).get("done"):
            continue
        try:
            row = status_row(read_status(run_id))
        except Exception as exc:
            problem = f"Cannot read run states from Prefect ({type(exc).__name__}: {exc})."
            break
        if row["state"] == "COMPLETED":
            completed += 1
            try:
                row["result"] = find_result(JOBS[record["job"]].result_kind, run_id)
            except Exception as exc:
                log.warning("could not find the result of run %s: %s", run_id, exc)
        rows[run_id] = row
    return rows, completed, problem


def find_result(kind: str, run_id: str) -> str | None:
    """The id of the result a run stored (every result records its flow_run_id)."""
    made = [item["id"] for item in context.store().list(kind) if item.get("flow_run_id") == run_id]
    return made[0] if made else None


def result_options(kind: str, items: list[dict]) -> list[dict]:
    """Dropdown options for complete results of a kind, newest first."""
    options = []
    for item in items:
        if not item.get("complete"):
            continue
        if kind == "latents":
            label = f"{item.get('n', '?')} × d={item.get('latent_dim', '?')} from {item.get('model_id')} · {item['id']}"
        else:
            label = describe(kind, item)
        options.append({"label": label, "value": item["id"]})
    return options


# -- layout ----------------------------------------------------------------------------------
def _sid(sub: str, aio_id: Any) -> dict:
    return {"component": "JobsAIO", "subcomponent": sub, "aio_id": aio_id}


class JobsAIO(html.Div):
    """Forms for the five steps, and the runs submitted from this page (kept per browser tab)."""

    class ids:
        field = staticmethod(lambda aio_id, job, name: _sid(f"{job}-{name}", aio_id))
        submit = staticmethod(lambda aio_id, job: _sid(f"{job}-submit", aio_id))
        message = staticmethod(lambda aio_id, job: _sid(f"{job}-message", aio_id))
        runs = staticmethod(lambda aio_id: _sid("runs", aio_id))  # session: submitted run records
        rows = staticmethod(lambda aio_id: _sid("rows", aio_id))  # session: run id → row
        completed = staticmethod(lambda aio_id: _sid("completed", aio_id))  # count of completions seen
        poll = staticmethod(lambda aio_id: _sid("poll", aio_id))
        table = staticmethod(lambda aio_id: _sid("table", aio_id))
        runs_message = staticmethod(lambda aio_id: _sid("runs-message", aio_id))
        options_message = staticmethod(lambda aio_id: _sid("options-message", aio_id))
        clear = staticmethod(lambda aio_id: _sid("clear", aio_id))
        cancel = staticmethod(lambda aio_id, run_id: {**_sid("cancel", aio_id), "run": run_id})

    def __init__(self, aio_id: str | None = None, poll_ms: int = 1000):
        aio_id = aio_id or str(uuid.uuid4())
        tabs = dbc.Tabs([
            dbc.Tab(self._form(aio_id, job), label=spec.title, tab_id=job,
                    tab_class_name=f"jobs-tab-{job}")
            for job, spec in JOBS.items()
        ], active_tab="project", className="mb-2")
        runs = html.Div([
            html.Div([
                html.Span("Runs from this page", className="fw-bold small"),
                dbc.Button("Clear finished", id=self.ids.clear(aio_id), size="sm", color="link",
                           className="py-0"),
            ], className="d-flex justify-content-between align-items-center"),
            html.Div(id=self.ids.runs_message(aio_id), className="small text-danger jobs-runs-message"),
            html.Div(id=self.ids.table(aio_id), className="jobs-runs"),
        ])
        super().__init__([
            dcc.Store(id=self.ids.runs(aio_id), storage_type="session", data=[]),
            dcc.Store(id=self.ids.rows(aio_id), storage_type="session", data={}),
            dcc.Store(id=self.ids.completed(aio_id), storage_type="session", data=0),
            dcc.Interval(id=self.ids.poll(aio_id), interval=poll_ms, disabled=True),
            dbc.Card([
                dbc.CardHeader("Jobs", className="py-1 fw-bold"),
                dbc.CardBody(dbc.Row([
                    dbc.Col([tabs, html.Div(id=self.ids.options_message(aio_id), className="small text-danger")],
                            md=5),
                    dbc.Col(runs, md=7),
                ])),
            ], className="my-2"),
        ], className="jobs-panel")

    @classmethod
    def _form(cls, aio_id: str, job: str) -> html.Div:
        rows = [cls._input(aio_id, job, f) for f in JOBS[job].fields]
        return html.Div([
            *rows,
            dbc.Button(f"Submit {JOBS[job].title.lower()}", id=cls.ids.submit(aio_id, job), size="sm",
                       color="primary", className=f"mt-2 jobs-submit-{job}"),
            html.Div(id=cls.ids.message(aio_id, job), className=f"mt-2 small jobs-message-{job}"),
        ], className=f"p-2 jobs-form-{job}")

    @classmethod
    def _input(cls, aio_id: str, job: str, f: FormField) -> dbc.Row:
        id_ = cls.ids.field(aio_id, job, f.name)
        name_class = f"jobs-{job}-{f.name}"
        if f.kind == "number":
            control = dbc.Input(id=id_, type="number", value=f.default, size="sm", className=name_class)
        elif f.kind == "text":
            control = dbc.Input(id=id_, type="text", value=f.default or "", size="sm", className=name_class)
        elif f.kind == "textarea":
            control = dbc.Textarea(id=id_, value=f.default or "", rows=2, size="sm", className=name_class)
        elif f.kind == "select":
            control = dbc.Select(id=id_, value=f.default, size="sm", className=name_class,
                                 options=[{"label": str(o), "value": o} for o in f.options])
        elif f.kind == "radio":
            control = dbc.RadioItems(id=id_, value=f.default, inline=True, className=name_class,
                                     options=[{"label": str(o).upper() if isinstance(o, str) and len(o) <= 4
                                               else f"{o}-D" if isinstance(o, int) else str(o), "value": o}
                                              for o in f.options])
        elif f.kind == "switch":
            control = dbc.Switch(id=id_, value=bool(f.default), className=name_class)
        else:  # result: options come from Tiled
            control = dbc.Select(id=id_, size="sm", className=name_class, options=[],
                                 placeholder=f"no {f.result_kind} yet")
        hint = dbc.FormText(f.hint) if f.hint else None
        return dbc.Row([
            dbc.Label(f.label, width=4, className="small py-1"),
            dbc.Col([control, hint], width=8),
        ], className="mb-1")


def _problems_alert(problems: list[Problem]) -> dbc.Alert:
    return dbc.Alert([
        html.Div("Not submitted; fix:", className="fw-bold"),
        html.Ul([html.Li(str(p)) for p in problems], className="mb-0"),
    ], color="danger", className="py-1 px-2 mb-0 jobs-problems")


def _register_submit(job: str) -> None:
    names = [f.name for f in JOBS[job].fields]

    @callback(
        Output(JobsAIO.ids.message(MATCH, job), "children"),
        Output(JobsAIO.ids.runs(MATCH), "data", allow_duplicate=True),
        Input(JobsAIO.ids.submit(MATCH, job), "n_clicks"),
        [State(JobsAIO.ids.field(MATCH, job, name), "value") for name in names],
        State(JobsAIO.ids.runs(MATCH), "data"),
        prevent_initial_call=True,
    )
    def _submit(n_clicks, *args):
        if not n_clicks:
            return no_update, no_update
        *values, records = args
        from flows.submit import submit  # Prefect (and the flows' torch) load on first use

        done = submit_job(job, dict(zip(names, values)), submit)
        if done.problems:
            return _problems_alert(done.problems), no_update
        if done.error:
            return dbc.Alert(done.error, color="danger", className="py-1 px-2 mb-0 jobs-problems"), no_update
        record = done.record
        message = html.Span(f"Submitted {record['flow']} run {record['id'][:8]}…", className="text-success")
        return message, [record, *(records or [])]


for _job in JOBS:
    _register_submit(_job)


@callback(
    [Output(JobsAIO.ids.field(MATCH, job, f.name), "options") for job, f in RESULT_FIELDS],
    [Output(JobsAIO.ids.field(MATCH, job, f.name), "value") for job, f in RESULT_FIELDS],
    Output(JobsAIO.ids.options_message(MATCH), "children"),
    Input(RESULTS_VERSION, "data"),
    [State(JobsAIO.ids.field(MATCH, job, f.name), "value") for job, f in RESULT_FIELDS],
)
def _load_options(_version, *chosen):
    try:
        store = context.store()
        listed = {kind: result_options(kind, store.list(kind)) for kind in {f.result_kind for _, f in RESULT_FIELDS}}
    except StoreError as exc:
        n = len(RESULT_FIELDS)
        return (*[[] for _ in range(n)], *[None for _ in range(n)], f"Cannot list results in Tiled: {exc}")
    options = [listed[f.result_kind] for _, f in RESULT_FIELDS]
    values = [
        value if value in {o["value"] for o in opts} else (opts[0]["value"] if opts else None)
        for value, opts in zip(chosen, options)
    ]
    return (*options, *values, "")


def _progress(row: dict) -> Any:
    if row["progress"] is None:
        return html.Span("–", className="text-muted")
    running = row["state"] == "RUNNING"
    return dbc.Progress(value=row["progress"], label=f"{row['progress']:.0f}%", color=row["colour"],
                        striped=running, animated=running, style={"height": "14px"})


def runs_table(records: list[dict], rows: Mapping[str, dict], aio_id: Any) -> Any:
    if not records:
        return html.Div("No runs submitted from this page yet.", className="small text-muted")
    body = []
    for record in records:
        row = rows.get(record["id"]) or {
            "state": "SUBMITTED", "colour": "light", "progress": None, "description": "", "elapsed": "–",
            "error": "", "note": "", "cancellable": True, "name": "",
        }
        detail = [html.Div(record["label"], className="text-truncate", title=record["label"])]
        if row.get("description") and row["state"] != "COMPLETED":
            detail.append(html.Div(row["description"], className="text-muted"))
        if row.get("result"):
            detail.append(html.Div(["→ ", html.Code(row["result"], className="jobs-result")]))
        if row.get("error"):
            detail.append(html.Div(row["error"], className="text-danger jobs-error"))
        if row.get("note"):
            detail.append(html.Div(row["note"], className="text-muted"))
        cancel = dbc.Button("Cancel", id=JobsAIO.ids.cancel(aio_id, record["id"]), size="sm", color="outline-danger",
                            className="py-0 jobs-cancel") if row.get("cancellable") else None
        body.append(html.Tr([
            html.Td([html.Div(record["flow"], className="fw-bold"), html.Div(record["submitted"], className="text-muted")]),
            html.Td(dbc.Badge(row["state"], color=row["colour"], className="jobs-state")),
            html.Td(_progress(row), style={"minWidth": "90px"}),
            html.Td(row["elapsed"], className="text-nowrap"),
            html.Td(detail, style={"maxWidth": "420px"}),
            html.Td(cancel),
        ], className="jobs-run", **{"data-run": record["id"], "data-state": row["state"]}))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Flow", "State", "Progress", "Elapsed", "What", "")]))
    return dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="small mb-0 align-middle")


@callback(
    Output(JobsAIO.ids.table(MATCH), "children"),
    Output(JobsAIO.ids.poll(MATCH), "disabled"),
    Output(JobsAIO.ids.rows(MATCH), "data"),
    Output(JobsAIO.ids.completed(MATCH), "data"),
    Output(JobsAIO.ids.runs_message(MATCH), "children"),
    Input(JobsAIO.ids.poll(MATCH), "n_intervals"),
    Input(JobsAIO.ids.runs(MATCH), "data"),
    State(JobsAIO.ids.rows(MATCH), "data"),
    State(JobsAIO.ids.completed(MATCH), "data"),
    State(JobsAIO.ids.poll(MATCH), "id"),
)
def _poll(_n, records, rows, completed, poll_id):
    records, rows = records or [], rows or {}
    if unfinished(records, rows):
        from flows.submit import status

        rows, newly, problem = refresh(records, rows, read_status=status, find_result=find_result)
    else:
        newly, problem = 0, ""
    count = (completed or 0) + newly if newly else no_update
    return runs_table(records, rows, poll_id["aio_id"]), not unfinished(records, rows), rows, count, problem


@callback(
    Output(JobsAIO.ids.runs_message(MATCH), "children", allow_duplicate=True),
    Input(JobsAIO.ids.cancel(MATCH, ALL), "n_clicks"),
    prevent_initial_call=True,
)
def _cancel(clicks):
    triggered = ctx.triggered_id
    # The table is redrawn every poll: new buttons fire this callback with n_clicks None.
    if not triggered or not any(c for c in clicks if c) or not ctx.triggered[0]["value"]:
        return no_update
    from flows.submit import cancel

    try:
        cancel(triggered["run"])
    except Exception as exc:
        return f"Could not cancel run {triggered['run'][:8]}… ({type(exc).__name__}: {exc})"
    return ""


@callback(
    Output(JobsAIO.ids.runs(MATCH), "data", allow_duplicate=True),
    Input(JobsAIO.ids.clear(MATCH), "n_clicks"),
    State(JobsAIO.ids.runs(MATCH), "data"),
    State(JobsAIO.ids.rows(MATCH), "data"),
    prevent_initial_call=True,
)
def _clear(n_clicks, records, rows):
    if not n_clicks:
        return no_update
    rows = rows or {}
    return [r for r in records or [] if not rows.get(r["id"], {}).get("done")]


@callback(
    Output(RESULTS_VERSION, "data", allow_duplicate=True),
    Input(JobsAIO.ids.completed(ALL), "data"),
    State(RESULTS_VERSION, "data"),
    prevent_initial_call=True,
)
def _bump_results_version(_counts, version):
    """A run completed: selectors everywhere reload what Tiled holds."""
    return (version or 0) + 1
