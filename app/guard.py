"""Which requests the web app answers: a known Host always, a known Origin to change anything.

Without these checks any web page the user visits could drive the app: a foreign page can make
the browser POST to 127.0.0.1 (no CORS preflight for a form-encoded POST), and a DNS-rebinding
page reaches it under its own host name. So every request, Dash's own
``/_dash-update-component`` included, must name an allowed ``Host``: 127.0.0.1, localhost or
[::1] on the app's port, or an entry of ``settings.allowed_hosts`` (what a reverse proxy
forwards). Requests that can change state (anything but GET, HEAD, OPTIONS) must also carry an
``Origin`` on one of those hosts; browsers always send it with such requests, so a request
without one is a script or a foreign page's form, and is refused too.

Authentication is not done here: for a shared server, put a reverse proxy with authentication
in front and list the name it forwards in ``allowed_hosts`` (see the README).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, request

from core.settings import Settings

log = logging.getLogger(__name__)

LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Host header values (lower case) the app answers to."""
    local = {f"{name}:{settings.port}" for name in LOCAL_NAMES}
    if settings.port == 80:  # browsers leave the default port out of Host and Origin
        local |= set(LOCAL_NAMES)
    return frozenset(local | {h.strip().lower() for h in settings.allowed_hosts if h.strip()})


def refusal(method: str, host: str, origin: str | None, allowed: frozenset[str]) -> tuple[str, int] | None:
    """Why a request is refused (one line and an HTTP status), or None when it may go on."""
    if host.lower() not in allowed:
        return (f"refused: Host {host!r} is not one this app answers to; add it to "
                f"MORPHOSPACE_ALLOWED_HOSTS if it is yours", 400)
    if method in SAFE_METHODS:
        return None
    if origin is None:
        return ("refused: a request that changes something must come from the app's page "
                "(no Origin header)", 403)
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() not in allowed:
        return (f"refused: Origin {origin!r} is not an allowed host; add its host to "
                f"MORPHOSPACE_ALLOWED_HOSTS if it is yours", 403)
    return None


def install(server: Flask, settings: Settings) -> None:
    """Check Host and Origin before every route of ``server``."""
    allowed = allowed_hosts(settings)

    @server.before_request
    def _check_host_and_origin():
        refused = refusal(request.method, request.host, request.headers.get("Origin"), allowed)
        if refused is not None:
            log.warning("%s %s from %s: %s", request.method, request.path, request.remote_addr, refused[0])
            return refused[0] + "\n", refused[1], {"Content-Type": "text/plain; charset=utf-8"}
        return None
