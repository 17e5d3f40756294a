"""What panels' callbacks need from outside Dash: the settings, the Tiled store, the live runner.

AIO callbacks are registered at import time, before any settings exist, so they reach the
store through here; `app.webapp.create_app` calls :func:`configure` once.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings
from core.data.store import Store

_settings: Settings | None = None
_store: Store | None = None
_live: Any = None


def configure(settings: Settings, *, live: Any = None) -> None:
    """``live``: what starts and stops live sessions (``app.live.LiveRunner``; the app owns it)."""
    global _settings, _store, _live
    _settings, _store, _live = settings, None, live


def live() -> Any:
    if _live is None:
        raise RuntimeError("live mode is not available in this app (no runner configured)")
    return _live


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
