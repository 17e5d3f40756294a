"""Shared fixtures: a real Tiled server for the session, a fresh project per test."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Prefect reads its settings when first imported: point it at the test server before that.
# The server is protected as the demo's is (app.prefect_server): every test that reaches it,
# and every worker and app the tests start, proves that clients get through with the secret.
PREFECT_PORT = _free_port()
PREFECT_DATA_DIR = Path(tempfile.mkdtemp(prefix="morphospace-prefect-"))
PREFECT_AUTH = f"test:{secrets.token_urlsafe(16)}"
LIVE_SOURCE = f"tcp://127.0.0.1:{_free_port()}"  # where the web app's live sessions take frames
os.environ.update({
    "PREFECT_HOME": str(PREFECT_DATA_DIR / "prefect"),
    "PREFECT_API_URL": f"http://127.0.0.1:{PREFECT_PORT}/api",
    "PREFECT_API_AUTH_STRING": PREFECT_AUTH,
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "MORPHOSPACE_WORKER_POLL_SECONDS": "0.5",  # runs start (and are seen cancelled) without a wait
})

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO_DATA = ROOT / "app" / "demo_data"


@pytest.fixture(scope="session")
def tiled_server(tmp_path_factory):
    """A real SimpleTiledServer (HTTP on 127.0.0.1) shared by the session, its tables
    serialised as the app's embedded server has them (app.tiled_server.serialize_table_access)."""
    from tiled.server import SimpleTiledServer

    from app.tiled_server import serialize_table_access

    serialize_table_access()
    server = SimpleTiledServer(directory=tmp_path_factory.mktemp("tiled"), api_key="testkey0123")
    yield server
    server.close()


@pytest.fixture
def store(tiled_server):
    """A Store on the session server, in a project of its own."""
    from core.data.store import Store

    uri = tiled_server.uri.split("?")[0]
    return Store.from_uri(uri, api_key=tiled_server.api_key, project=f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def shared_data(*parts: str) -> Path:
    """A file from ../shared/data, or skip where this checkout has none (a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (CI and developers have ../shared/data)")
    return path


@pytest.fixture(scope="session")
def prefect_process(tmp_path_factory):
    """A real Prefect server on 127.0.0.1 with SQLite, for the session, started and protected
    as the demo's (auth string, CORS, database settings): started, not yet answering (it boots
    while other fixtures start)."""
    from app.prefect_server import prefect_server_env
    from app.services import Supervisor
    from core.settings import Settings

    settings = Settings(data_dir=PREFECT_DATA_DIR)  # the auth string: PREFECT_API_AUTH_STRING above
    sup = Supervisor(tmp_path_factory.mktemp("prefect-logs"))
    yield sup.start("prefect-server", [sys.executable, "-m", "app.prefect_server", "--host", "127.0.0.1",
                                       "--port", str(PREFECT_PORT)], env=prefect_server_env(settings, PREFECT_PORT))
    sup.stop_all()


@pytest.fixture(scope="session")
def prefect_server(prefect_process):
    """The session's Prefect server, answering; its API URL."""
    from app.services import http_ok, wait_until

    url = os.environ["PREFECT_API_URL"]
    wait_until(prefect_process, http_ok(f"{url}/health"), timeout=180)
    return url


INTEGRATION_PROJECT = "integration"


SHARED = ("worker", "built_map", "web_app")  # what SharedServices starts, as fixture names


class SharedServices:
    """The integration tests' shared worker, demo-frames map and web app, started in threads as
    soon as the session begins: Prefect boots, the worker imports torch and registers its flows,
    the map is built and the app imports Dash while the tests that need none of it run (those run
    first: :func:`pytest_collection_modifyitems`). ``needs`` names the parts some test uses."""

    def __init__(self, prefect: Any, tiled_server: Any, tmp_path_factory: Any, needs: set[str]):
        import json
        from concurrent.futures import ThreadPoolExecutor

        from app.services import Supervisor

        self.prefect, self.tmp = prefect, tmp_path_factory
        roots = tmp_path_factory.mktemp("images")
        tiled_uri = tiled_server.uri.split("?")[0]
        self.env = {
            "MORPHOSPACE_TILED_URI": tiled_uri,
            "MORPHOSPACE_TILED_API_KEY": tiled_server.api_key,
            "MORPHOSPACE_PROJECT": INTEGRATION_PROJECT,
            "MORPHOSPACE_DATA_ROOTS": json.dumps([str(roots), str(DEMO_DATA)]),
        }
        self.info = {"roots": roots, "env": self.env, "tiled_uri": tiled_uri, "api_key": tiled_server.api_key}
        self.sups = [Supervisor(tmp_path_factory.mktemp("worker-logs")), Supervisor(tmp_path_factory.mktemp("web-logs"))]
        self.pool = ThreadPoolExecutor(3, thread_name_prefix="shared-services")
        self.worker = self.pool.submit(self._start_worker)
        self.built_map = self.pool.submit(self._build_map) if needs & {"built_map", "web_app"} else None
        self.web_app = self.pool.submit(self._start_web_app) if "web_app" in needs else None

    def _prefect_answers(self) -> None:
        from app.services import http_ok, wait_until

        wait_until(self.prefect, http_ok(f"{os.environ['PREFECT_API_URL']}/health"), timeout=180)

    def _start_worker(self) -> dict:
        """A real `morphospace worker` serving the flows, writing to the session's Tiled server."""
        self._prefect_answers()
        sup = self.sups[0]
        sup.env.update(self.env)
        # Tests run several flows at once on few cores: one OpenMP thread per run, or torch's
        # threads spin against each other.
        sup.env["OMP_NUM_THREADS"] = "1"
        return {**self.info, "child": sup.start("worker", [sys.executable, "-m", "app.cli", "worker", "--limit", "4"])}

    def _build_map(self) -> dict:
        """A real build-map run (the demo frames, small) through Prefect; the result ids."""
        from app.services import wait_until
        from core.data.preprocess import PreprocessParams
        from core.data.store import Store
        from flows.params import BuildMapParams, IngestParams, ProjectOptions, TrainOptions
        from flows.submit import deployments_registered, submit, wait

        worker = self.worker.result()
        wait_until(worker["child"], deployments_registered, timeout=120)
        params = BuildMapParams(
            ingest=IngestParams(source=str(DEMO_DATA / "colloids_brightfield.npz"), name="explorer test",
                                preprocess=PreprocessParams(size=32, patch_size=125),
                                frame_interval=1.0),  # nominal: marks the frames as a time series
            train=TrainOptions(latent_dim=8, base_channels=8, epochs=2),
            project=ProjectOptions(method="pca"),
            tag="explorer-test",
        )
        wait(submit("build-map", params), timeout=300, poll=0.5)
        store = Store.from_uri(worker["tiled_uri"], api_key=worker["api_key"], project=INTEGRATION_PROJECT)
        return {kind: next(i["id"] for i in store.list(kind) if i.get("tag") == "explorer-test")
                for kind in ("datasets", "models", "latents", "projections", "clusterings")}

    def _start_web_app(self) -> str:
        """`morphospace serve` on a free port against the session's Tiled and Prefect (it boots
        while the map is built); its URL once it answers."""
        from app.services import http_ok, wait_until

        self._prefect_answers()
        port = _free_port()
        sup = self.sups[1]
        sup.env.update(self.env)
        sup.env.update(MORPHOSPACE_LIVE_SOURCE=LIVE_SOURCE, MORPHOSPACE_DATA_DIR=str(self.tmp.mktemp("web-data")))
        child = sup.start("web", [sys.executable, "-m", "app.cli", "serve", "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        wait_until(child, http_ok(url + "/"), timeout=120)
        return url

    def stop(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for sup in reversed(self.sups):
            sup.stop_all()


@pytest.fixture(scope="session", autouse=True)
def shared_services(request, tmp_path_factory):
    """Starts the shared services at the session's start when any collected test uses them."""
    needs = {name for item in request.session.items for name in SHARED if name in item.fixturenames}
    if not needs:
        yield None
        return
    services = SharedServices(request.getfixturevalue("prefect_process"), request.getfixturevalue("tiled_server"),
                              tmp_path_factory, needs)
    yield services
    services.stop()


@pytest.fixture(scope="session")
def worker(shared_services, prefect_server):
    """A real `morphospace worker` serving the flows, writing to the session's Tiled server."""
    return shared_services.worker.result()


@pytest.fixture(scope="session")
def built_map(shared_services, worker):
    """A real build-map run (the demo frames, small) through Prefect; returns the result ids."""
    return shared_services.built_map.result()


@pytest.fixture(scope="session")
def web_app(shared_services, built_map):
    """`morphospace serve` on a free port against the session's Tiled and Prefect, once the
    built map is stored; its URL."""
    return shared_services.web_app.result()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Selenium (WebGL through SwiftShader)."""
    from headless_chromium import launch_chromium
    from tests.browser import require_chromium

    require_chromium(ci=os.environ.get("CI") == "true")
    driver = launch_chromium(console=True)  # console errors, for failures
    yield driver
    driver.quit()


def pytest_collection_modifyitems(items):
    """Mark every test that drives Chromium, so the summary can count them; run the modules that
    use the shared services (:class:`SharedServices`) last, so those start while the rest run."""
    for item in items:
        if {"browser", "chromium"} & set(getattr(item, "fixturenames", ())):  # chromium: a fresh one per use
            item.add_marker(pytest.mark.browser)
    late = {item.module for item in items if set(SHARED) & set(getattr(item, "fixturenames", ()))}
    items.sort(key=lambda item: getattr(item, "module", None) in late)  # stable: order kept within each group


def pytest_terminal_summary(terminalreporter):
    """One line saying how many browser tests ran (a skipped browser suite is easy to miss)."""
    outcomes: dict[str, set[str]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if "browser" in getattr(report, "keywords", {}):
                outcomes.setdefault(outcome, set()).add(report.nodeid)
    ran = outcomes.get("passed", set()) | outcomes.get("failed", set())
    counts = ", ".join(f"{len(ids)} {name}" for name, ids in outcomes.items())
    terminalreporter.write_line(f"browser tests: {len(ran)} ran ({counts or 'none collected'})")
