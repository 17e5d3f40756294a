"""`morphospace demo --no-browser` as a user runs it: ready line, page, Ctrl-C, nothing left;
two at once on one machine, each with services of its own; its files private."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from core.data.store import Store
from streaming.messages import frame_from_parts

from tests.conftest import DEMO_DATA, _free_port

pytestmark = pytest.mark.integration

DEMO_FILE = DEMO_DATA / "colloids_brightfield.npz"
RESULT_KINDS = ("datasets", "models", "latents", "projections", "clusterings")


def clean_env() -> dict[str, str]:
    """A user's shell: none of the test session's Prefect or Morphospace settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MORPHOSPACE_"))}


def start_demo(data_dir, port, *options: str, live_source: str | None = None) -> subprocess.Popen:
    """A demo with its Prefect server on the default port (or, when taken, a free one)."""
    env = clean_env()
    env.update({
        "MORPHOSPACE_DEMO_EPOCHS": "2",       # the shipped demo trains longer; the test checks plumbing
        "MORPHOSPACE_DEMO_PROJECTION": "pca",
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


def stop_and_check_nothing_left(*processes: subprocess.Popen) -> None:
    """SIGINT each demo (all at once: they stop side by side), then each exits 0 and leaves no child."""
    families = [psutil.Process(process.pid).children(recursive=True) for process in processes]
    for family in families:
        assert len(family) >= 4, [p.cmdline() for p in family]  # tiled, prefect, worker, web
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        assert process.wait(timeout=120) == 0  # the supervisor gives each of 4 children up to 16 s
    gone, alive = psutil.wait_procs([p for family in families for p in family], timeout=15)
    assert not alive, [p.cmdline() for p in alive]


def kill_family(process: subprocess.Popen) -> None:
    """After a failed assertion too, a demo's children must not outlive the test."""
    if process.poll() is None:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        process.send_signal(signal.SIGINT)
        _, alive = psutil.wait_procs(family, timeout=60)
        for leftover in alive:
            leftover.kill()


class Running:
    """What a running demo's data folder says about it: its services, its secrets, its store."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.services = json.loads((data_dir / "services.json").read_text())
        self.api_key = (data_dir / "tiled_api_key").read_text()
        self.prefect_auth = tuple((data_dir / "prefect_auth").read_text().split(":", 1))

    def store(self) -> Store:
        return Store.from_uri(self.services["tiled_uri"], api_key=self.api_key)

    def demo_maps(self) -> list[dict]:
        return [c for c in self.store().list("clusterings") if c.get("tag") == "demo" and c["complete"]]

    def flow_run(self, run_id: str) -> httpx.Response:
        return httpx.get(f"{self.services['prefect_api_url']}/flow_runs/{run_id}", auth=self.prefect_auth, timeout=30)

    def prefect_log(self) -> str:
        return (self.data_dir / "logs" / "prefect-server.log").read_text()


def assert_private(data_dir) -> None:
    """The data folder is 0700 and nothing in it is readable by group or others."""
    assert data_dir.stat().st_mode & 0o777 == 0o700
    exposed = [f"{path} {oct(path.stat().st_mode & 0o777)}" for path in data_dir.rglob("*")
               if not path.is_symlink() and path.stat().st_mode & 0o077]
    assert not exposed, exposed


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


@pytest.mark.timeout(900)
def test_two_demos_at_once_each_with_its_own_services_then_a_restart(tmp_path):
    """Two demos started at once (different folders and ports) are both ready, each map built
    by its own worker into its own Tiled; one stops while the other goes on serving (and a CLI
    in a second shell reaches it); SIGINT stops every child; a second start (of the stopped one,
    while the other serves) reuses the map and replays frames to the live source."""
    (tmp_path / "a").mkdir(mode=0o755)  # a folder made before: the demo tightens it
    ports = {"a": _free_port(), "b": _free_port()}
    live_source = f"tcp://127.0.0.1:{_free_port()}"  # for b's second start, with the simulator
    demos = {name: start_demo(tmp_path / name, port) for name, port in ports.items()}
    try:
        for name, demo in demos.items():
            lines = read_until(demo, "Morphospace is ready at", timeout=600)
            assert lines[-1] == f"Morphospace is ready at http://127.0.0.1:{ports[name]}"
            assert any("Building the demo map" in line for line in lines)
        a, b = Running(tmp_path / "a"), Running(tmp_path / "b")
        assert a.services["prefect_api_url"] != b.services["prefect_api_url"]
        assert a.services["tiled_uri"] != b.services["tiled_uri"]
        assert a.services["live_source"] != b.services["live_source"]
        for mine, other in ((a, b), (b, a)):
            maps = mine.demo_maps()
            assert len(maps) == 1 and maps[0]["n_clusters"] >= 1
            # Every result in this demo's Tiled was made by a run of its own Prefect server (so by
            # its own worker), none by the other's.
            # ... except the shipped generator (app/demo_data/colloids_vae.pt), imported as it is,
            # which the demo's VAE was fine-tuned from.
            made = [item for kind in RESULT_KINDS for item in mine.store().list(kind)]
            [generator] = [item for item in made if item.get("tag") == "demo-generator"]
            assert generator["trained"]["epochs"] > 0 and "flow_run_id" not in generator
            [vae] = [item for item in mine.store().list("models") if item.get("tag") != "demo-generator"]
            assert vae["init_model_id"] == generator["id"]
            run_ids = {item["flow_run_id"] for item in made if item is not generator}
            assert maps[0]["flow_run_id"] in run_ids
            for run_id in run_ids:
                assert mine.flow_run(run_id).json()["state_type"] == "COMPLETED"
                assert other.flow_run(run_id).status_code == 404
            # The job API refuses a request without the secret.
            assert httpx.post(f"{mine.services['prefect_api_url']}/flows/filter", json={}, timeout=30).status_code == 401
        page = httpx.get(f"http://127.0.0.1:{ports['a']}/", timeout=10)
        assert page.status_code == 200 and "Morphospace" in page.text
        assert httpx.get(f"http://127.0.0.1:{ports['a']}/_dash-layout", timeout=30).status_code == 200

        # A key sent in a query string (as some Tiled clients do) never reaches the access log.
        tiled = a.services["tiled_uri"]
        assert httpx.get(f"{tiled}/metadata/?api_key={a.api_key}", timeout=30).status_code == 200
        access_log = (tmp_path / "a" / "tiled" / "access.log").read_text()
        assert "/metadata/?api_key=[redacted]" in access_log and a.api_key not in access_log
        for name in demos:
            assert_private(tmp_path / name)

        stop_and_check_nothing_left(demos["b"])
        a_family = psutil.Process(demos["a"].pid).children(recursive=True)
        assert all(p.is_running() for p in a_family) and demos["a"].poll() is None
        assert httpx.get(f"http://127.0.0.1:{ports['a']}/", timeout=10).status_code == 200

        with zmq_pull(live_source) as pull:
            # b's second start, with the simulator (it replays the demo frames to the live
            # source), boots while a second shell uses a.
            demos["b"] = start_demo(tmp_path / "b", ports["b"], "--simulate", live_source=live_source)
            # A second shell finds the running demo through its data folder (URLs and secret files).
            cli = subprocess.run(
                [sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / "a"), "ingest", str(DEMO_FILE),
                 "--size", "32", "--name", "second shell"],
                capture_output=True, text=True, env=clean_env(), timeout=300,
            )
            assert cli.returncode == 0 and cli.stdout.strip().startswith("ds-"), cli.stdout + cli.stderr
            assert any(d["id"] == cli.stdout.strip() for d in a.store().list("datasets"))
            lines = read_until(demos["b"], "Morphospace is ready at", timeout=240)
            assert any("Reusing the stored demo map" in line for line in lines)
            assert pull.poll(60_000), "no frame from the demo's simulator in 60 s"
            frame = frame_from_parts(pull.recv_multipart(), live_source)
        assert frame.index == 0 and frame.array.shape == (500, 500) and frame.source.endswith("colloids_brightfield.npz")
        stop_and_check_nothing_left(demos["a"], demos["b"])
        for running in (a, b):  # SQLite under two demos' load, without a lock error; no secret in a log
            assert "database is locked" not in running.prefect_log()
            logs = "".join(path.read_text(errors="replace") for path in running.data_dir.rglob("*.log"))
            assert running.api_key not in logs and running.prefect_auth[1] not in logs
    finally:
        for demo in demos.values():
            kill_family(demo)


def test_a_named_port_in_use_is_one_clear_line(tmp_path):
    """`--port` on a port another program holds: one line, exit 2, nothing started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = start_demo(tmp_path, port)
        out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 2
    assert out.strip().splitlines()[-1] == (
        f"morphospace demo: error: port {port} on 127.0.0.1 (--port) is in use by another program: "
        "choose another, or leave --port unset and a free port is picked")
