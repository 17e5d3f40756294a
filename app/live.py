"""The web app's side of live mode: its session process, its one secret, and the replay route.

The arroyopy pipeline runs in its own process (DESIGN §3), ``morphospace live --standby``,
started as soon as a map is shown: it imports torch, loads the map's model, projection and
clustering from Tiled and warms them up (seconds; tens with UMAP's numba) while the user looks
at the map, then waits. Pressing "Live" only writes ``start`` to it; it opens the live source
and a websocket on a free port and says ``ready`` (JSON lines on its stdout), and only then does
the page get the address and connect, so it never meets a socket that is not there yet.
Switching off stops that process (it finishes and stores what it took) and warms up the next
one. Keeping the pipeline out of the app process keeps torch and numba's compiling off the
web server's threads, and the pipeline's lifetime off gunicorn's worker recycling.

A session process that dies while its session is on (a crash, the OOM killer) is started again
with ``--session S --resume`` on the same websocket port, at most ``REVIVALS`` times a session:
the page, which reconnects to the address it was given, meets the same session again and fills
the gap from its table. Every session the app starts uses one port
(``MORPHOSPACE_LIVE_WS_PORT``, else the one the system gave the first session).

One secret per deployment lets pages authenticate to the websocket and the replay route:
``MORPHOSPACE_LIVE_TOKEN``, else ``<data_dir>/live_token``, created once (mode 0600,
atomically), so every gunicorn worker and ``morphospace live`` agree. The child gets it in its
environment (never on a command line), the page in a store, the websocket in the first message.

``GET /live/<session>/points?from_batch=A&to_batch=B`` serves rows of the session's Tiled table
in the websocket's own encoding, so the page fills gaps (and replays a stored session) with the
code that handles live batches, errors of those batches included (the page counts each once:
it asks for each batch once). It needs the same token, in the ``X-Live-Token`` header.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import queue
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from flask import Flask, jsonify, request

from app.services import Child, python_module, tail
from core.live.session import LiveSession
from core.settings import Settings
from streaming.messages import typed_array

log = logging.getLogger(__name__)

TOKEN_FILE = "live_token"
START_TIMEOUT = 300.0  # seconds: a cold start on a UMAP map compiles numba first
REVIVALS = 3  # restarts of a dying session process per session: past that it is a crash loop


def read_or_create_secret(path: Path) -> str:
    """The secret kept in ``path``, created on first use: mode 0600 from the start, and
    published with a hard link, so that processes starting together all read the same one."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)  # fails if another process published first: theirs stands
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"{path} is empty; delete it and restart so a new secret is made")
    return secret


def deployment_token(settings: Settings) -> tuple[str, str]:
    """The live token of this deployment, and where it comes from (to tell users, not the value)."""
    if settings.live_token is not None:
        return settings.live_token.get_secret_value(), "MORPHOSPACE_LIVE_TOKEN"
    path = settings.data_dir / TOKEN_FILE
    return read_or_create_secret(path), str(path)


def _key(current: dict | None) -> tuple[str, str | None] | None:
    if not current or not current.get("projection_id"):
        return None
    return current["projection_id"], current.get("clustering_id")


class SessionProcess:
    """One ``morphospace live --standby`` child: its commands (stdin) and events (stdout)."""

    def __init__(self, child: Child, key: tuple[str, str | None]):
        self.child, self.key = child, key
        self.events: queue.Queue[dict] = queue.Queue()
        self.warm = threading.Event()  # set when warm, or when the process ended
        self.started = time.monotonic()
        threading.Thread(target=self._read, name=f"{child.name}-events", daemon=True).start()

    def _read(self) -> None:
        for line in self.child.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the closing counters, printed for people
            if not isinstance(event, dict):
                continue
            if event.get("event") == "warm":
                log.info("live: map %s ready to go live after %.1f s (loading and warm-up %.1f s)",
                         self.key[0], time.monotonic() - self.started, event.get("seconds", 0))
                self.warm.set()
            self.events.put(event)
        self.child.process.stdout.close()
        self.events.put({"event": "exit"})
        self.warm.set()

    def start(self, timeout: float) -> dict:
        """Tell it to start; the ``ready`` event (addresses), or why it did not come."""
        try:
            self.child.process.stdin.write(b"start\n")
            self.child.process.stdin.flush()
        except OSError:
            pass  # it has exited: the event queue says so
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"the live session did not start in {timeout:.0f} s; see "
                                   f"{self.child.log_path}") from None
            if event.get("event") == "ready":
                return event
            if event.get("event") == "exit":
                self.child.process.wait()
                last = tail(self.child.log_path, 1).strip() or f"exit code {self.child.process.returncode}"
                raise RuntimeError(f"the live session ended while starting: {last}")

    def stop(self, timeout: float) -> None:
        """Stop the session in it: it finishes and stores what it took (SIGINT, as Ctrl-C)."""
        self.child.stop(timeout=timeout)
        self._close_stdin()

    def discard(self) -> None:
        """End a process that started no session: nothing to save, so at once."""
        try:
            os.killpg(self.child.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.child.process.wait()
        self._close_stdin()

    def _close_stdin(self) -> None:
        try:
            self.child.process.stdin.close()
        except OSError:
            pass


class LiveRunner:
    """At most one live session per app process, and one warm session process for the shown map."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.token, _ = deployment_token(settings)
        self._lock = threading.Lock()
        self._standby: SessionProcess | None = None
        self._active: SessionProcess | None = None
        self.current: dict | None = None
        self.ws_port = settings.live_ws_port  # 0 until the first session says which it got
        self.revivals = 0  # of the current session

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

    def _spawn(self, key: tuple[str, str | None], session: str | None = None) -> SessionProcess:
        """A session process for the map ``key``; with ``session``, one that resumes it."""
        projection_id, clustering_id = key
        args = ["live", projection_id, "--source", self.settings.live_source, "--standby",
                "--ws-port", str(self.ws_port)]
        if clustering_id:
            args += ["--clustering", clustering_id]
        if session:
            args += ["--session", session, "--resume"]
        log_dir = self.settings.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "live.log"
        with open(log_path, "ab") as handle:
            process = subprocess.Popen(python_module("app.cli", *args), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=handle, env=self._env(),
                                       start_new_session=True)
        return SessionProcess(Child("live", process, log_path), key)

    def _standby_for(self, key: tuple[str, str | None], *, retry: bool = True) -> SessionProcess:
        """The warm (or warming) process for ``key``, started if there is none; call locked.
        ``retry=False`` keeps one that ended (its failure is the answer until asked again)."""
        stale = self._standby is not None and (
            self._standby.key != key or (retry and not self._standby.child.alive()))
        if stale:
            self._standby.discard()
            self._standby = None
        if self._standby is None:
            self._standby = self._spawn(key)
        return self._standby

    def prepare(self, current: dict | None) -> str:
        """Warm up a session process for the map in ``current``, without waiting: "ready",
        "warming", "failed" (see the log; Live tries again) or "no map"."""
        key = _key(current)
        if key is None:
            return "no map"
        with self._lock:
            standby = self._standby_for(key, retry=False)
        if not standby.child.alive():
            return "failed"
        return "ready" if standby.warm.is_set() else "warming"

    def start(self, current: dict | None) -> dict:
        """Start a session on the map in ``current`` (components.ids.CURRENT); the page's config."""
        key = _key(current)
        if key is None:
            raise ValueError("Choose a map first: live frames are placed on a fitted projection.")
        with self._lock:
            self._stop_active()
            process, self._standby = self._standby_for(key), None
            try:
                ready = process.start(START_TIMEOUT)
            except BaseException:
                process.discard()
                raise
            self._active, self.revivals = process, 0
            self.current = {"mode": "live", "session": ready["session"], "ws_url": ready["ws_url"],
                            "dims": int(current.get("n_components", 2)), "source": ready["source"]}
            self.ws_port = self.ws_port or urlsplit(ready["ws_url"]).port
            log.info("live session %s on %s from %s", ready["session"], key[0], ready["source"])
            self._watch(process)
            return {**self.current, "token": self.token}

    def _watch(self, process: SessionProcess) -> None:
        threading.Thread(target=self._revive_when_gone, args=(process,),
                         name=f"{process.child.name}-watch", daemon=True).start()

    def _revive_when_gone(self, process: SessionProcess) -> None:
        """When ``process`` ends while its session is on, start it again (see the module doc)."""
        process.child.process.wait()
        with self._lock:
            if self._active is not process or self.current is None:
                return  # stopped or replaced on purpose
            session = self.current["session"]
            if self.revivals >= REVIVALS:
                log.error("live session %s: its process ended again (exit code %s) after %d restarts; "
                          "not restarting it (see %s)", session, process.child.process.returncode,
                          self.revivals, process.child.log_path)
                self._active, self.current = None, None
                return
            self.revivals += 1
            log.warning("live session %s: its process ended (exit code %s); starting it again on "
                        "port %d (restart %d of %d)", session, process.child.process.returncode,
                        self.ws_port, self.revivals, REVIVALS)
            revived = self._active = self._spawn(process.key, session=session)
        try:
            revived.start(START_TIMEOUT)  # outside the lock: Live off must not wait for it
        except Exception as exc:  # noqa: BLE001  it died starting: the watch below counts it
            log.error("live session %s did not come back: %s", session, exc)
        self._revive_when_gone(revived)

    def stop(self, current: dict | None = None) -> None:
        """Stop the session (it stores what it took); warm up the next one for ``current``."""
        with self._lock:
            self._stop_active()
            if _key(current) is not None:
                self._standby_for(_key(current), retry=False)

    def close(self) -> None:
        """Stop every process (the app is exiting)."""
        with self._lock:
            self._stop_active()
            if self._standby is not None:
                self._standby.discard()
                self._standby = None

    def _stop_active(self) -> None:
        active, self._active, self.current = self._active, None, None  # not revived when it ends
        if active is not None:
            active.stop(timeout=15)

    def alive(self) -> bool:
        return self._active is not None and self._active.child.alive()


def points_message(points: Any, session: str, from_batch: int, to_batch: int | None,
                   errors: Any = None) -> dict:
    """Rows of a live table with ``from_batch <= batch <= to_batch`` as one websocket-style batch
    (the columns of :func:`streaming.messages.encode_batch`: ``row`` says where each image is),
    with the rows of the ``errors`` table reported by those batches.

    ``missing`` counts the batches of a closed range that the tables do not hold (yet); a batch
    whose frames all failed is held by the errors table alone.
    """
    def in_range(table: Any) -> Any:
        table = table[table["batch"] >= from_batch]
        return table if to_batch is None else table[table["batch"] <= to_batch]

    rows = in_range(points).sort_values(["batch", "row"], kind="stable")
    failed = in_range(errors if errors is not None else points.iloc[:0].assign(reason=""))
    failed = failed.sort_values(["batch", "index"], kind="stable")
    axes = [a for a in ("x", "y", "z") if a in rows.columns]
    present = sorted(set(rows["batch"].astype(int)) | set(failed["batch"].astype(int)))
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
        "noise_floor": typed_array(rows["noise_floor"].to_numpy(np.float64), "f4"),
        "received": typed_array(rows["received"].to_numpy(np.float64), "f8"),
        "ring": rows["ring"].fillna("").astype(str).tolist(),
        "source": rows["source"].astype(str).tolist(), "stats": {},
        "errors": [{"index": None if i < 0 else int(i), "source": str(s), "reason": str(r)}
                   for i, s, r in zip(failed["index"], failed["source"], failed["reason"])],
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
            live = LiveSession.kept(get_store(), session)  # looked up once for its lassos too
            points, errors = live.points(), live.errors()
        except ValueError as exc:
            return f"bad request: {exc}", 400
        except Exception as exc:  # unknown session, Tiled down: say so; the page shows it
            log.warning("live points of %s: %s", session, exc)
            return f"cannot read live session {session}: {exc}", 404
        return jsonify(points_message(points, session, from_batch, to_batch, errors))
