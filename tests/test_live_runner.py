"""The app's live runner keeps one websocket port and brings a dead session process back on it.

The session processes here are a stand-in for ``morphospace live --standby`` (the same stdin and
stdout protocol, a socket bound on ``--ws-port``, no torch): what is tested is the runner. Each
stand-in, once started, reports its command line to the test over a socket.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading

import pytest

import app.live
from app.live import LiveRunner
from core.settings import Settings

STAND_IN = """
import json, os, socket, sys
args = sys.argv[1:]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
print(json.dumps({"event": "warm", "seconds": 0}), flush=True)
for line in sys.stdin:
    if line.strip() == "start":
        break
server.bind(("127.0.0.1", int(args[args.index("--ws-port") + 1])))
server.listen()
session = args[args.index("--session") + 1] if "--session" in args else "live-stand-in-1"
port = server.getsockname()[1]
print(json.dumps({"event": "ready", "session": session, "ws_url": f"ws://127.0.0.1:{port}/",
                  "source": "stand-in", "table": "t"}), flush=True)
with socket.create_connection(("127.0.0.1", int(os.environ["STAND_IN_REPORT_PORT"]))) as report:
    report.sendall(json.dumps(args).encode())
sys.stdin.read()
"""
MAP = {"projection_id": "proj-1", "clustering_id": None, "n_components": 2}


@pytest.fixture
def make_runner(tmp_path, monkeypatch):
    """Runners whose session processes are stand-ins; ``runner.report()`` is the command line of
    the next one that starts."""
    reports = socket.create_server(("127.0.0.1", 0))
    reports.settimeout(60)
    monkeypatch.setenv("STAND_IN_REPORT_PORT", str(reports.getsockname()[1]))
    monkeypatch.setattr(app.live, "python_module", lambda module, *args: [sys.executable, "-c", STAND_IN, *args])
    monkeypatch.setattr(app.live, "REVIVALS", 1)
    made = []

    def report() -> list[str]:
        connection, _ = reports.accept()
        with connection:
            return json.loads(connection.makefile().read())

    def make(**settings) -> LiveRunner:
        runner = LiveRunner(Settings(data_dir=tmp_path, live_token="runner-test-token-0123456789", **settings))
        runner.report = report
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()
    reports.close()


def watcher() -> threading.Thread:
    """The thread that watches the active session process (one runner at a time here)."""
    return next(t for t in threading.enumerate() if t.name == "live-watch" and t.is_alive())


def kill(runner: LiveRunner) -> None:
    """SIGKILL the active session process: a crash."""
    os.killpg(runner._active.child.process.pid, signal.SIGKILL)


def test_a_killed_session_process_comes_back_on_the_same_port_once(make_runner):
    """Killed, the session process is started again resuming its session on the port the first
    one got, and the page's config stands; killed again past REVIVALS (1 here), it stays off."""
    runner = make_runner()
    config = runner.start(MAP)
    first = runner.report()
    assert first[first.index("--ws-port") + 1] == "0" and "--session" not in first
    port = int(config["ws_url"].rsplit(":", 1)[1].strip("/"))
    assert runner.ws_port == port

    kill(runner)
    again = runner.report()
    assert again[again.index("--ws-port") + 1] == str(port)
    assert again[again.index("--session") + 1] == config["session"] and "--resume" in again
    assert runner.current == {k: v for k, v in config.items() if k != "token"}
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # where the page reconnects, the revived process listens

    watching = watcher()
    kill(runner)
    watching.join(30)
    assert not watching.is_alive() and runner.current is None and runner._active is None


def test_a_configured_port_is_used_from_the_first_session_and_live_off_is_no_crash(make_runner):
    """MORPHOSPACE_LIVE_WS_PORT reaches the first session process; switching Live off stops it
    without starting it again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = make_runner(live_ws_port=port)
    assert runner.start(MAP)["ws_url"] == f"ws://127.0.0.1:{port}/"
    assert "--session" not in runner.report()
    watching = watcher()
    runner.stop()
    watching.join(30)
    assert not watching.is_alive() and runner.current is None and runner._active is None
