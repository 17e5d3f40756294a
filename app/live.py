"""The web app's side of live mode: the session it runs, and the route that replays stored points.

Pressing "Live" starts ``morphospace live`` as a child process (the arroyopy pipeline runs in
its own process, DESIGN §3) on the chosen map and the configured source; the page then talks
to that process's websocket directly. The token that lets the app's pages subscribe is passed
to the child in its environment (never on a command line) and to the page in a store.

``GET /live/<session>/points?from_batch=A&to_batch=B`` serves rows of the session's Tiled table
in the websocket's own encoding, so the page fills gaps (and replays a stored session) with the
code that handles live batches. It needs the same token, in the ``X-Live-Token`` header.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
from typing import Any

import numpy as np
from flask import Flask, jsonify, request

from app.services import Child, Supervisor, free_port, python_module
from core.live_store import LiveSession, new_session_id
from core.settings import Settings
from streaming.messages import typed_array

log = logging.getLogger(__name__)


class LiveRunner:
    """At most one live session per app process: start it on a map, stop it, say where it listens."""

    def __init__(self, settings: Settings):
        self.settings = settings
        secret = settings.live_token.get_secret_value() if settings.live_token else None
        self.token = secret or secrets.token_urlsafe(32)
        self._lock = threading.Lock()
        self._child: Child | None = None
        self.current: dict | None = None

    def _env(self) -> dict[str, str]:
        s = self.settings
        env = {**os.environ, "MORPHOSPACE_LIVE_TOKEN": self.token, "MORPHOSPACE_PROJECT": s.project,
               "MORPHOSPACE_DATA_DIR": str(s.data_dir)}
        if s.tiled_uri:
            env["MORPHOSPACE_TILED_URI"] = s.tiled_uri
        key = s.resolved_tiled_api_key()
        if key:
            env["MORPHOSPACE_TILED_API_KEY"] = key
        return env

    def start(self, current: dict) -> dict:
        """Start a session on the map in ``current`` (components.ids.CURRENT); the page's config."""
        if not current or not current.get("projection_id"):
            raise ValueError("Choose a map first: live frames are placed on a fitted projection.")
        with self._lock:
            self._stop()
            port, session = free_port(self.settings.host), new_session_id()
            args = ["live", current["projection_id"], "--source", self.settings.live_source,
                    "--ws-port", str(port), "--session", session]
            if current.get("clustering_id"):
                args += ["--clustering", current["clustering_id"]]
            supervisor = Supervisor(log_dir=self.settings.data_dir / "logs", env=self._env())
            self._child = supervisor.start(f"live-{session}", python_module("app.cli", *args))
            self.current = {"mode": "live", "session": session, "ws_url": f"ws://{self.settings.host}:{port}",
                            "dims": int(current.get("n_components", 2)), "source": self.settings.live_source}
            log.info("live session %s on %s from %s", session, current["projection_id"], self.settings.live_source)
            return {**self.current, "token": self.token}

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._child is not None:
            self._child.stop(timeout=15)
        self._child, self.current = None, None

    def alive(self) -> bool:
        return self._child is not None and self._child.alive()

    def log_tail(self) -> str:
        from app.services import tail

        return tail(self._child.log_path) if self._child is not None else ""


def points_message(points: Any, session: str, from_batch: int, to_batch: int | None) -> dict:
    """Rows of a live table with ``from_batch <= batch <= to_batch`` as one websocket-style batch
    (the columns of :func:`streaming.messages.encode_batch`: ``row`` says where each image is).

    ``missing`` counts the batches of a closed range that the table does not hold (yet).
    """
    rows = points[points["batch"] >= from_batch]
    if to_batch is not None:
        rows = rows[rows["batch"] <= to_batch]
    rows = rows.sort_values(["batch", "row"], kind="stable")
    axes = [a for a in ("x", "y", "z") if a in rows.columns]
    present = sorted(set(rows["batch"].astype(int)))
    missing = 0 if to_batch is None else (to_batch - from_batch + 1) - len(present)
    return {
        "type": "batch", "session": session, "n": int(len(rows)),
        "seq": int(present[-1]) if present else (from_batch - 1),
        "index": typed_array(rows["index"].to_numpy(np.int64), "i4"),
        "patch": typed_array(rows["patch"].to_numpy(np.int32), "i4"),
        "row": typed_array(rows["row"].to_numpy(np.int64), "i4"),
        "coords": typed_array(rows[axes].to_numpy(np.float32).reshape(len(rows), len(axes)), "f4"),
        "cluster": typed_array(rows["cluster"].to_numpy(np.int32), "i4"),
        "non_equilibrium": typed_array(rows["non_equilibrium"].to_numpy(np.float64), "f4"),
        "source": rows["source"].astype(str).tolist(), "errors": [], "stats": {},
        "missing": int(max(missing, 0)),
    }


def register_routes(server: Flask, runner: LiveRunner, get_store) -> None:
    """The replay route (see the module docstring)."""

    @server.route("/live/<session>/points")
    def _live_points(session: str):
        if not hmac.compare_digest(request.headers.get("X-Live-Token", ""), runner.token):
            return "a live token is needed (X-Live-Token)", 403
        try:
            from_batch = int(request.args.get("from_batch", 0))
            to_batch = request.args.get("to_batch")
            to_batch = None if to_batch in (None, "") else int(to_batch)
            points = LiveSession.open(get_store(), session).points()
        except ValueError as exc:
            return f"bad request: {exc}", 400
        except Exception as exc:  # unknown session, Tiled down: say so; the page shows it
            log.warning("live points of %s: %s", session, exc)
            return f"cannot read live session {session}: {exc}", 404
        return jsonify(points_message(points, session, from_batch, to_batch))
