"""Jobs panel: forms that submit Prefect flow runs, and a table that follows them.

Every heavy step (ingest, train, encode, project, cluster) is a flow run on a worker; this
panel only builds the flow's parameter model (so bad input is refused here, with the field,
the value and the allowed range), submits it, and polls the runs it submitted. When a run
completes it bumps the page's ``RESULTS_VERSION`` so the selectors reload what Tiled holds.

The logic is in plain functions that unit tests call without a browser: the forms and their
validation in ``components.job_forms``, following runs in ``components.job_runs``; this module
holds the layout and the callbacks, which only move values between the page and those functions.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, MATCH, Input, Output, State, ctx, dcc, html, no_update
from components.ids import CURRENT, RESULTS_VERSION, SUBMITTED
from components.job_forms import JOBS, RESULT_FIELDS, FormField, problems_alert, submit_job
from components.job_runs import chosen_results, find_result, refresh, result_options, unfinished
from components.records import MapRef, RunRecord
from components.services import Callbacks, Services
from core.data.store import StoreError

log = logging.getLogger(__name__)


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
        # dcc.Tabs mounts only the chosen tab's form (dbc.Tabs mounted every form: 420 components,
        # 1.3 s of the browser's CPU on every page load; bench/page_load.py). The others stay in
        # the page's layout, so their values persist and their callbacks resolve.
        tabs = dcc.Tabs([
            dcc.Tab(self._form(aio_id, job), label=spec.title, value=job,
                    className=f"jobs-tab jobs-tab-{job}", selected_className="jobs-tab--selected")
            for job, spec in JOBS.items()
        ], value="project", className="mb-2 jobs-tabs")
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



callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)


def _register_submit(job: str) -> None:
    names = [f.name for f in JOBS[job].fields]

    @callbacks.callback(
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
            return problems_alert(done.problems), no_update
        if done.error:
            return dbc.Alert(done.error, color="danger", className="py-1 px-2 mb-0 jobs-problems"), no_update
        record = done.record
        message = html.Span(f"Submitted {record['flow']} run {record['id'][:8]}…", className="text-success")
        return message, [record, *(records or [])]


for _job in JOBS:
    _register_submit(_job)


@callbacks.callback(
    Output(JobsAIO.ids.runs(MATCH), "data", allow_duplicate=True),
    Input(SUBMITTED, "data"),
    State(JobsAIO.ids.runs(MATCH), "data"),
    prevent_initial_call=True,
)
def _follow_submitted(record: RunRecord | None, records: list[RunRecord] | None):
    """A run another panel submitted joins this panel's table (state, progress, cancel)."""
    if not record or any(r["id"] == record["id"] for r in records or []):
        return no_update
    return [record, *(records or [])]


@callbacks.callback(
    [Output(JobsAIO.ids.field(MATCH, job, f.name), "options") for job, f in RESULT_FIELDS],
    [Output(JobsAIO.ids.field(MATCH, job, f.name), "value") for job, f in RESULT_FIELDS],
    Output(JobsAIO.ids.options_message(MATCH), "children"),
    Input(RESULTS_VERSION, "data"),
    Input(CURRENT, "data"),
    [State(JobsAIO.ids.field(MATCH, job, f.name), "value") for job, f in RESULT_FIELDS],
)
def _load_options(services: Services, _version, current: MapRef | None, *chosen):
    """The forms' result fields list what Tiled holds and default to the map shown."""
    try:
        store = services.store()
        listed = {kind: result_options(kind, store.list(kind)) for kind in {f.result_kind for _, f in RESULT_FIELDS}}
    except StoreError as exc:
        n = len(RESULT_FIELDS)
        return (*[[] for _ in range(n)], *[None for _ in range(n)], f"Cannot list results in Tiled: {exc}")
    options = [listed[f.result_kind] for _, f in RESULT_FIELDS]
    values = chosen_results([f.result_kind for _, f in RESULT_FIELDS], options, list(chosen), current,
                            follow_map=ctx.triggered_id != RESULTS_VERSION)
    return (*options, *values, "")


def _progress(row: dict) -> Any:
    if row["progress"] is None:
        return html.Span("–", className="text-muted")
    running = row["state"] == "RUNNING"
    return dbc.Progress(value=row["progress"], label=f"{row['progress']:.0f}%", color=row["colour"],
                        striped=running, animated=running, style={"height": "14px"})


def runs_table(records: list[RunRecord], rows: Mapping[str, dict], aio_id: Any) -> Any:
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


@callbacks.callback(
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
def _poll(services: Services, _n, records: list[RunRecord] | None, rows, completed, poll_id):
    records, rows = records or [], rows or {}
    if unfinished(records, rows):
        from flows.submit import status

        rows, newly, problem = refresh(records, rows, read_status=status,
                                       find_result=lambda kind, run_id: find_result(services.store(), kind, run_id))
    else:
        newly, problem = 0, ""
    count = (completed or 0) + newly if newly else no_update
    return runs_table(records, rows, poll_id["aio_id"]), not unfinished(records, rows), rows, count, problem


@callbacks.callback(
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


@callbacks.callback(
    Output(JobsAIO.ids.runs(MATCH), "data", allow_duplicate=True),
    Input(JobsAIO.ids.clear(MATCH), "n_clicks"),
    State(JobsAIO.ids.runs(MATCH), "data"),
    State(JobsAIO.ids.rows(MATCH), "data"),
    prevent_initial_call=True,
)
def _clear(n_clicks, records: list[RunRecord] | None, rows):
    if not n_clicks:
        return no_update
    rows = rows or {}
    return [r for r in records or [] if not rows.get(r["id"], {}).get("done")]
