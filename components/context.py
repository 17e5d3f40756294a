"""What panels' callbacks need from outside Dash: the settings and the Tiled store.

AIO callbacks are registered at import time, before any settings exist, so they reach the
store through here; `app.webapp.create_app` calls :func:`configure` once.
"""

from __future__ import annotations

from core.settings import Settings
from core.store import Store

_settings: Settings | None = None
_store: Store | None = None


def configure(settings: Settings) -> None:
    global _settings, _store
    _settings, _store = settings, None


def settings() -> Settings:
    if _settings is None:
        raise RuntimeError("components.context.configure(settings) was not called")
    return _settings


def store() -> Store:
    """The project's store, opened on first use (and again after a failure)."""
    global _store
    if _store is None:
        _store = Store.from_settings(settings())
    return _store
