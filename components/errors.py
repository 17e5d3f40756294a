"""How a panel says that something failed: one readable line, and the page keeps working.

A dead Tiled is reported once, by the service banner at the top of the page (with what to do);
the panels then only point at it instead of each repeating the same error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from components.services import Services
from core.data.store import StoreUnavailable

log = logging.getLogger(__name__)


def problem(doing: str, exc: BaseException) -> Any:
    """What the user sees when ``doing`` failed: a warning for bad input, an error otherwise."""
    if isinstance(exc, StoreUnavailable):
        return html.Div(f"Could not {doing}: Tiled is not reachable (see the banner at the top).",
                        className="small text-muted fst-italic my-1 ms-offline")
    colour = "warning" if isinstance(exc, ValueError) else "danger"
    return dbc.Alert([html.B(f"Could not {doing}. "), str(exc) or type(exc).__name__], color=colour,
                     className="small py-2 my-2", dismissable=colour == "danger")


def guarded(doing: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``(fn(*args, **kwargs), None)``, or ``(None, problem(...))`` when it raises.

    Callbacks call their view through this so that no exception reaches Dash (which would only
    show it in the browser console) and every failure is logged with its traceback.
    """
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # Tiled down, a stale selection, a bad parameter: say so, go on
        expected = isinstance(exc, (ValueError, StoreUnavailable))
        log.warning("could not %s: %s", doing, exc, exc_info=not expected)
        return None, problem(doing, exc)


def with_store(services: Services, doing: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``guarded`` of ``fn(store, *args, **kwargs)``: reaching the store can fail too."""
    return guarded(doing, lambda: fn(services.store(), *args, **kwargs))
