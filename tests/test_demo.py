"""`morphospace demo --no-browser` as a user runs it: ready line, page, Ctrl-C, nothing left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from core.store import Store
from streaming.messages import frame_from_parts

from tests.conftest import _free_port

pytestmark = pytest.mark.integration


def start_demo(data_dir, port, *options: str, live_source: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MORPHOSPACE_"))}
    env.update({
        "MORPHOSPACE_DEMO_EPOCHS": "2",       # the shipped demo trains longer; the test checks plumbing
        "MORPHOSPACE_DEMO_PROJECTION": "pca",
        "MORPHOSPACE_PREFECT_PORT": str(_free_port()),
    })
    if live_source:
        env["MORPHOSPACE_LIVE_SOURCE"] = live_source
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "demo", "--no-browser",
         "--port", str(port), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> list[str]:
    """Lines the demo prints, up to the one containing ``marker`` (fails if it exits first)."""
    lines, deadline = [], time.monotonic() + timeout
    for line in process.stdout:
        lines.append(line.rstrip())
        if marker in line:
            return lines
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s:\n" + "\n".join(lines)
    raise AssertionError(f"demo exited ({process.wait()}) before {marker!r}:\n" + "\n".join(lines))


def stop_and_check_nothing_left(process: subprocess.Popen) -> None:
    family = psutil.Process(process.pid).children(recursive=True)
    assert len(family) >= 4, [p.cmdline() for p in family]  # tiled, prefect, worker, web
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    gone, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, [p.cmdline() for p in alive]


@contextlib.contextmanager
def zmq_pull(address: str):
    """A socket where `morphospace live` would take frames (it binds; simulators connect)."""
    import zmq

    context = zmq.Context()
    socket = context.socket(zmq.PULL)
    socket.bind(address)
    try:
        yield socket
    finally:
        socket.close(linger=0)
        context.term()


def test_demo_starts_serves_the_map_and_stops_cleanly(tmp_path):
    """First start builds the map; the page answers; SIGINT stops every child; a second start reuses it."""
    port = _free_port()
    demo = start_demo(tmp_path, port)
    try:
        lines = read_until(demo, "Morphospace is ready at", timeout=400)
        assert lines[-1] == f"Morphospace is ready at http://127.0.0.1:{port}"
        assert any("Building the demo map" in line for line in lines)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "Morphospace" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/_dash-layout", timeout=30).status_code == 200
        # The running demo says where its Tiled is; the demo map is stored there, complete.
        services = json.loads((tmp_path / "services.json").read_text())
        store = Store.from_uri(services["tiled_uri"], api_key=(tmp_path / "tiled_api_key").read_text())
        demo_maps = [c for c in store.list("clusterings") if c.get("tag") == "demo" and c["complete"]]
        assert len(demo_maps) == 1 and demo_maps[0]["n_clusters"] >= 1
        assert (tmp_path / "tiled_api_key").stat().st_mode & 0o077 == 0  # key readable by owner only
        stop_and_check_nothing_left(demo)

        # Second start, with the simulator: it replays the demo frames to the live source.
        live_source = f"tcp://127.0.0.1:{_free_port()}"
        with zmq_pull(live_source) as pull:
            demo = start_demo(tmp_path, port, "--simulate", live_source=live_source)
            lines = read_until(demo, "Morphospace is ready at", timeout=240)
            assert any("Reusing the stored demo map" in line for line in lines)
            assert pull.poll(60_000), "no frame from the demo's simulator in 60 s"
            frame = frame_from_parts(pull.recv_multipart(), live_source)
        assert frame.index == 0 and frame.array.shape == (500, 500) and frame.source.endswith("colloids_brightfield.npz")
        stop_and_check_nothing_left(demo)
    finally:  # even after a failed assertion, the demo's children must not outlive the test
        if demo.poll() is None:
            family = [psutil.Process(demo.pid), *psutil.Process(demo.pid).children(recursive=True)]
            demo.send_signal(signal.SIGINT)
            _, alive = psutil.wait_procs(family, timeout=60)
            for process in alive:
                process.kill()
