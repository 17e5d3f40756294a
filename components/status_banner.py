"""Services banner: is Tiled answering, is the Prefect server up, is a worker serving the flows?

One compact green line when all is well; otherwise an alert that says what is down and what to
do. The checks are plain functions returning :class:`Check`, so tests call them directly.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dash_bootstrap_components as dbc
import httpx
from dash import MATCH, Input, Output, dcc, html

from components.services import Callbacks, Services
from core.data.reader import ResultStore
from core.settings import Settings
from flows.names import FLOW_NAMES
from flows.status import prefect_api_url, served_deployments

TIMEOUT = 2.0  # seconds per probe: a banner must not hang the page
# Prefect's foreman marks a deployment NOT_READY after 60 s without a poll; a served flow's
# runner polls every 10 s (PREFECT_RUNNER_POLL_FREQUENCY), so 60 s is six missed polls.
MAX_POLL_AGE = 60.0


@dataclass(frozen=True)
class Check:
    service: str  # "Tiled", "Prefect server", "Worker"
    ok: bool
    detail: str  # what was found
    fix: str = ""  # what to do about it


def check_tiled(uri: str | None, open_store: Callable[[], ResultStore] | None = None, *,
                timeout: float = TIMEOUT) -> Check:
    """Tiled answers at ``uri``; with ``open_store``, the project can also be opened (key accepted)."""
    name = "Tiled"
    if not uri:
        return Check(name, False, "no Tiled server is configured",
                     "set MORPHOSPACE_TILED_URI (and MORPHOSPACE_TILED_API_KEY), or run `morphospace demo`")
    try:
        response = httpx.get(uri, timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        return Check(name, False, f"no answer from {uri} ({type(exc).__name__})",
                     "start the Tiled server, or check MORPHOSPACE_TILED_URI")
    if response.status_code >= 500:
        return Check(name, False, f"{uri} answered HTTP {response.status_code}", "see the Tiled server's log")
    if open_store is not None:
        try:
            open_store()
        except Exception as exc:
            return Check(name, False, f"{uri} answers but the project cannot be opened: {exc}",
                         "check MORPHOSPACE_TILED_API_KEY and MORPHOSPACE_PROJECT")
    return Check(name, True, uri)


def check_prefect(api_url: str | None, *, timeout: float = TIMEOUT) -> Check:
    """The Prefect server's ``/health`` answers ``true``."""
    name = "Prefect server"
    if not api_url:
        return Check(name, False, "no Prefect API URL is configured",
                     "set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api), or run `morphospace demo`")
    url = api_url.rstrip("/") + "/health"
    try:
        response = httpx.get(url, timeout=timeout, trust_env=False)
        healthy = response.status_code == 200 and response.json() is True
    except (httpx.HTTPError, ValueError) as exc:
        return Check(name, False, f"no answer from {api_url} ({type(exc).__name__})",
                     "start it with `prefect server start`, or check PREFECT_API_URL")
    if not healthy:
        return Check(name, False, f"{url} answered HTTP {response.status_code}", "see the Prefect server's log")
    return Check(name, True, api_url)


def worker_check(
    deployments: Iterable[dict],
    expected: Iterable[str],
    *,
    now: dt.datetime | None = None,
    max_age: float = MAX_POLL_AGE,
) -> Check:
    """Judge a worker from the deployments it registered: ``{"flow", "last_polled", "status"}`` each.

    A worker serving the flows registers one deployment per flow and polls for their runs every
    few seconds; Prefect records the time of the last poll on each deployment.
    """
    name = "Worker"
    now = now or dt.datetime.now(dt.timezone.utc)
    deployments = list(deployments)
    start = "start one with `morphospace worker` (same MORPHOSPACE_TILED_URI and PREFECT_API_URL as this app)"
    if not deployments:
        return Check(name, False, "no worker has registered the flows with Prefect", start)
    missing = sorted(set(expected) - {d["flow"] for d in deployments})
    if missing:
        return Check(name, False, f"the flows {', '.join(missing)} have no deployment",
                     "restart `morphospace worker` from this version of Morphospace")
    polls = [d["last_polled"] for d in deployments if d.get("last_polled")]
    if not polls:
        return Check(name, False, "no worker has asked for work yet", start)
    age = (now - max(polls)).total_seconds()
    if age > max_age:
        return Check(name, False, f"no worker has asked for work for {age:.0f} s (deployments NOT_READY)",
                     f"submitted runs wait until a worker is running: {start}")
    return Check(name, True, f"polled {max(age, 0):.0f} s ago")


def check_worker(*, max_age: float = MAX_POLL_AGE) -> Check:
    """Ask Prefect (through ``flows.status``) about the deployments workers serve."""
    try:
        deployments = served_deployments(timeout=TIMEOUT)
    except Exception as exc:
        return Check("Worker", False, f"cannot ask Prefect about deployments ({type(exc).__name__}: {exc})",
                     "check PREFECT_API_URL")
    return worker_check(deployments, FLOW_NAMES, max_age=max_age)


def check_services(settings: Settings, open_store: Callable[[], ResultStore] | None = None) -> list[Check]:
    """Tiled, Prefect and the worker; the worker is only asked about when Prefect answers."""
    tiled = check_tiled(settings.tiled_uri, open_store)
    prefect = check_prefect(prefect_api_url(settings))
    worker = check_worker() if prefect.ok else Check("Worker", False, "unknown while the Prefect server is down")
    return [tiled, prefect, worker]


def banner(checks: list[Check]) -> Any:
    """A green line when everything answers, else an alert listing what is down and the fix."""
    if all(c.ok for c in checks):
        text = " · ".join(f"{c.service} ✓" for c in checks)
        worker = next((c.detail for c in checks if c.service == "Worker"), "")
        return html.Div(f"● {text} ({worker})" if worker else f"● {text}",
                        className="small text-success services-ok")
    items = [
        html.Li([html.Strong(f"{c.service}: "), c.detail, *([" — ", c.fix] if c.fix else [])])
        for c in checks if not c.ok
    ]
    return dbc.Alert([html.Div("Some services are not reachable; jobs cannot run until they are:"),
                      html.Ul(items, className="mb-0")],
                     color="warning", className="py-1 px-2 mb-1 small services-down")


class ServiceBannerAIO(html.Div):
    class ids:
        interval = staticmethod(lambda aio_id: {"component": "ServiceBannerAIO", "subcomponent": "interval", "aio_id": aio_id})
        body = staticmethod(lambda aio_id: {"component": "ServiceBannerAIO", "subcomponent": "body", "aio_id": aio_id})

    def __init__(self, aio_id: str | None = None, interval_ms: int = 5000):
        aio_id = aio_id or str(uuid.uuid4())
        super().__init__([
            dcc.Interval(id=self.ids.interval(aio_id), interval=interval_ms),
            html.Div(html.Span("checking services…", className="small text-muted"), id=self.ids.body(aio_id)),
        ], className="services-banner")



callbacks = Callbacks()
register = callbacks.register  # create_app calls register(app, services)


@callbacks.callback(Output(ServiceBannerAIO.ids.body(MATCH), "children"),
                    Input(ServiceBannerAIO.ids.interval(MATCH), "n_intervals"))
def _check(services: Services, _n):
    return banner(check_services(services.settings, services.store))
