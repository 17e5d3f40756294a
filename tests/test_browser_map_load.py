"""The map appears on every page load, and on a page opened before it was stored (headless Chromium).

Maps are written straight to the session's real Tiled server (this is about the page, not
training) and shown by a real ``morphospace serve``, in a project of this module's own.
"""

from __future__ import annotations

import sys
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import CHROMEDRIVER, CHROMIUM, launch_chromium, wait_for_map_count
from tests.conftest import _free_port
from core.data.results.datasets import dataset_writer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_FRAMES = 3000
SESSIONS, LOADS_PER_SESSION = 4, 5  # 20 loads: a fresh Chromium costs seconds, a reload less
GRAPH = ".ms-map .js-plotly-plot"


@pytest.fixture(scope="module")
def store(tiled_server):
    """This module's project on the session's Tiled server, empty at first."""
    from core.data.store import Store

    return Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key,
                          project=f"mapload{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def latents(store) -> dict:
    """A dataset, a model and its latents: everything a map needs except the map itself."""
    rng = np.random.default_rng(1)
    writer = dataset_writer(store, metadata={"name": "map load test"})
    writer.append(rng.random((N_FRAMES, 4, 4), dtype=np.float32))
    dataset = writer.finish(pd.DataFrame({"index": range(N_FRAMES), "time": np.arange(N_FRAMES) * 0.5}))
    model = store.put("models", metadata={"dataset_id": dataset, "family": "vae", "config": {"latent_dim": 4}})
    mu = rng.normal(size=(N_FRAMES, 4)).astype(np.float32)
    latents_id = store.put("latents", arrays={"mu": mu, "logvar": np.zeros_like(mu)},
                           metadata={"dataset_id": dataset, "model_id": model})
    return {"latents_id": latents_id, "dataset_id": dataset, "model_id": model, "mu": mu}


def store_map(store, latents: dict, *, method: str, seed: int, cluster: bool = True) -> str:
    """A projection of the latents (and a clustering of it), written as the flows write them."""
    rng = np.random.default_rng(seed)
    links = {k: latents[k] for k in ("latents_id", "dataset_id", "model_id")}
    embedding = latents["mu"] @ rng.normal(size=(4, 2)).astype(np.float32)  # (N, 2)
    projection = store.put("projections", arrays={"embedding": embedding},
                           metadata={**links, "params": {"method": method, "n_components": 2}})
    if cluster:
        labels = (embedding[:, 0] > 0).astype(np.int64)
        store.put("clusterings", arrays={"labels": labels},
                  metadata={**links, "projection_id": projection, "n_clusters": 2,
                            "params": {"min_cluster_size": 15}})
    return projection


@pytest.fixture(scope="module")
def web_app(store, tiled_server, tmp_path_factory):
    """`morphospace serve` on this module's project; its URL."""
    from app.services import Supervisor, http_ok, wait_until

    port = _free_port()
    sup = Supervisor(tmp_path_factory.mktemp("map-load-logs"))
    sup.env.update(MORPHOSPACE_TILED_URI=tiled_server.uri.split("?")[0],
                   MORPHOSPACE_TILED_API_KEY=tiled_server.api_key, MORPHOSPACE_PROJECT=store.project,
                   MORPHOSPACE_DATA_DIR=str(tmp_path_factory.mktemp("map-load-data")))
    child = sup.start("web", [sys.executable, "-m", "app.cli", "serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    wait_until(child, http_ok(url + "/"), timeout=120)
    yield url
    sup.stop_all()


@pytest.fixture
def chromium():
    """``chromium()`` starts a fresh headless Chromium, quitting the one before (one at a time)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian chromium and chromium-driver are not installed (make test installs them)")
    running = []

    def start():
        while running:
            running.pop().quit()
        running.append(launch_chromium(console=True))
        return running[-1]

    yield start
    while running:
        running.pop().quit()


def drawn_points(driver) -> int:
    """Points in the map's first trace as Plotly drew it (0 before a map is drawn)."""
    return driver.execute_script(
        f"const gd = document.querySelector('{GRAPH}');"
        "return gd && gd._fullData && gd._fullData.length ? (gd._fullData[0]._length || 0) : 0;")


def map_text(driver) -> str:
    return driver.execute_script(
        f"const gd = document.querySelector('{GRAPH}');"
        "return gd ? gd.textContent : '';")


def test_a_page_open_before_the_map_exists_shows_it_once_stored(web_app, store, latents, chromium):
    """The page says "No map yet"; a map stored meanwhile appears without a reload."""
    driver = chromium()
    driver.get(web_app)
    WebDriverWait(driver, 60).until(lambda d: "No map yet" in map_text(d))
    store_map(store, latents, method="pca", seed=0)
    assert wait_for_map_count(driver, timeout=30) == (N_FRAMES, 0)
    WebDriverWait(driver, 30).until(lambda d: drawn_points(d) == N_FRAMES)


def test_twenty_loads_all_draw_the_map(web_app, store, latents, chromium):
    """With several projections stored, 20 loads (fresh browsers and reloads) all draw the map."""
    for seed, method in enumerate(("pca", "umap", "umap"), start=1):
        store_map(store, latents, method=method, seed=seed, cluster=seed != 3)
    failed = []
    for session in range(SESSIONS):
        driver = chromium()
        for load in range(LOADS_PER_SESSION):
            driver.get(web_app) if load == 0 else driver.refresh()
            started = time.monotonic()
            if load % 2:  # a resize while the map is on its way (a case once caught dropping it)
                driver.set_window_size(1300 + 100 * (load // 2 % 2), 1000)
            try:
                WebDriverWait(driver, 30).until(lambda d: drawn_points(d) == N_FRAMES)
            except TimeoutException:
                failed.append(f"session {session} load {load}: the map reads {map_text(driver)[:80]!r}")
            print(f"session {session} load {load}: {time.monotonic() - started:.1f} s")
    assert not failed, "\n".join(failed)
