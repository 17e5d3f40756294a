"""What panels' callbacks need from outside Dash, handed down by the app factory.

``app.webapp.create_app(settings)`` builds one :class:`Services` and calls each panel's
``register(app, services)``; the callbacks are plain functions taking ``services`` first, bound
to it there. So two apps in one process (two tests, two gunicorn apps) never share a store, and
a unit test calls a callback with ``Services.from_store(store)`` instead of patching a global.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dash import Dash

from components.records import MapRef
from core.data.reader import ResultStore
from core.data.store import Store
from core.settings import Settings


class LiveControl(Protocol):
    """What the live panel drives (``app.live.LiveRunner``; the app owns its processes)."""

    token: str

    def prepare(self, current: MapRef | None) -> str: ...
    def start(self, current: MapRef | None) -> dict: ...
    def stop(self, current: MapRef | None = None) -> None: ...


@dataclass
class Services:
    """The settings, the project's store (opened on first use, and again after a failure) and,
    in a full app, the live runner."""

    settings: Settings
    open_store: Callable[[], ResultStore]
    live_runner: LiveControl | None = None
    _store: ResultStore | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, live: LiveControl | None = None) -> Services:
        return cls(settings, functools.partial(Store.from_settings, settings), live)

    @classmethod
    def from_store(cls, store: ResultStore, *, settings: Settings | None = None) -> Services:
        """An open store as it is (tests, benches)."""
        return cls(settings or Settings(), lambda: store, None, store)

    def store(self) -> ResultStore:
        with self._lock:  # Dash runs callbacks on several threads: open one store, not many
            if self._store is None:
                self._store = self.open_store()
            return self._store

    def live(self) -> LiveControl:
        if self.live_runner is None:
            raise RuntimeError("live mode is not available in this app (no runner configured)")
        return self.live_runner


def bind(fn: Callable[..., Any], services: Services) -> Callable[..., Any]:
    """``fn(services, *args)`` as the ``fn(*args)`` Dash calls, keeping its name for Dash's registry."""

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        return fn(services, *args)

    del call.__wrapped__  # Dash must see the callback's own arguments, not ``services``
    return call


class Callbacks:
    """A panel's callbacks, declared beside their functions and registered on an app by
    :meth:`register`. A function whose first parameter is ``services`` gets the app's."""

    def __init__(self) -> None:
        self._server: list[tuple[tuple, dict, Callable[..., Any]]] = []
        self._client: list[tuple[str, tuple, dict]] = []

    def callback(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Like ``dash.callback``; the function is returned unchanged, for unit tests."""
        def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
            self._server.append((args, kwargs, fn))
            return fn
        return declare

    def clientside(self, code: str, *args: Any, **kwargs: Any) -> None:
        """Like ``dash.clientside_callback``."""
        self._client.append((code, args, kwargs))

    def register(self, app: Dash, services: Services) -> None:
        for args, kwargs, fn in self._server:
            wants = next(iter(inspect.signature(fn).parameters), None) == "services"
            app.callback(*args, **kwargs)(bind(fn, services) if wants else fn)
        for code, args, kwargs in self._client:
            app.clientside_callback(code, *args, **kwargs)
