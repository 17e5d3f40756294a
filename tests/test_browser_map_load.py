"""The map appears on every page load, and on a page opened before it was stored; a click does not
undo a lasso (headless Chromium).

Maps are written straight to the session's real Tiled server (this is about the page, not
training) and shown by a real ``morphospace serve``, in a project of this module's own.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from headless_chromium import launch_chromium
from headless_chromium import to_viewport
from tests.browser import (MAP_COUNT, drag, map_count, require_chromium, wait_for_map_count,
                           wait_for_text)
from tests.conftest import _free_port
from core.data.results import clusterings, projections
from core.data.results import latents as latents_owner
from core.data.results.datasets import dataset_writer
from core.maps.projection import Projector

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_FRAMES = 1000
LOADS = (7, 7, 6)  # 20 loads in 3 fresh Chromiums (each start costs seconds, a reload less)
GRAPH = ".ms-map .js-plotly-plot"
QUIET_S = 4  # no callback pending this long and no map: the page will not draw it by itself


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
    latents_id = latents_owner.write_latents(store, mu, np.zeros_like(mu), {"dataset_id": dataset, "model_id": model})
    return {"latents_id": latents_id, "dataset_id": dataset, "model_id": model, "mu": mu}


def store_map(store, latents: dict, *, method: str, seed: int, cluster: bool = True) -> str:
    """A projection of the latents (and a clustering of it), written through the owners as the
    flows write them: a fitted projector (PCA of the latents, each dimension scaled by a seeded
    factor so each map differs; the params name ``method``) and labels with membership strengths."""
    rng = np.random.default_rng(seed)
    links = {k: latents[k] for k in ("latents_id", "dataset_id", "model_id")}
    projector = Projector("pca", random_state=seed).fit(latents["mu"] * rng.uniform(0.2, 2.0, size=4).astype(np.float32))
    projection = projections.write_projection(
        store, projector.embedding_, projector, {**links, "params": {"method": method, "n_components": 2}})
    if cluster:
        labels = (projector.embedding_[:, 0] > 0).astype(np.int64)
        clusterings.write_clustering(store, labels, np.ones(len(labels)),
                                     {**links, "projection_id": projection, "n_clusters": 2,
                                      "params": {"min_cluster_size": 15}})
    return projection


@pytest.fixture(scope="module")
def map_page(store, tiled_server, tmp_path_factory):
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
    require_chromium(ci=os.environ.get("CI") == "true")  # under CI a missing browser fails
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


def map_outcome(driver, timeout: float = 180) -> str:
    """"drawn" once the map is; "stuck" when the page went quiet without drawing it (no callback
    pending for QUIET_S: Dash titles the page "Updating..." while one is); "slow" past the timeout.

    Telling stuck from slow keeps the test meaningful on a busy machine, where a load can take
    tens of seconds without anything being wrong.
    """
    quiet_since: list[float] = []

    def settled(d) -> str | bool:
        if drawn_points(d) == N_FRAMES:
            return "drawn"
        if d.title == "Updating..." or "Loading the map" not in map_text(d):
            quiet_since.clear()
        elif not quiet_since:
            quiet_since.append(time.monotonic())
        elif time.monotonic() - quiet_since[0] > QUIET_S:
            return "stuck"
        return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(settled)
    except TimeoutException:
        return "slow"


def test_a_page_open_before_the_map_exists_shows_it_once_stored(map_page, store, latents, chromium):
    """The page says "No map yet"; a map stored meanwhile appears without a reload."""
    driver = chromium()
    driver.get(map_page)
    WebDriverWait(driver, 60).until(lambda d: "No map yet" in map_text(d))
    store_map(store, latents, method="pca", seed=0)
    assert wait_for_map_count(driver, timeout=120) == (N_FRAMES, 0)  # a poll, then the page's callbacks
    WebDriverWait(driver, 30).until(lambda d: drawn_points(d) == N_FRAMES)


@pytest.mark.timeout(600)  # 20 page loads: 44 s on 2 quiet cores (2 s a load), ~300 s when saturated
def test_twenty_loads_all_draw_the_map(map_page, store, latents, chromium):
    """With several projections stored, 20 loads (fresh browsers and reloads) all draw the map."""
    for seed, method in enumerate(("pca", "umap", "umap"), start=1):
        store_map(store, latents, method=method, seed=seed, cluster=seed != 3)
    failed = []
    for session, loads in enumerate(LOADS):
        driver = chromium()
        for load in range(loads):
            driver.get(map_page) if load == 0 else driver.refresh()
            started = time.monotonic()
            if load % 2:  # a resize while the map is on its way (a case once caught dropping it)
                driver.set_window_size(1300 + 100 * (load // 2 % 2), 1000)
            outcome = map_outcome(driver)
            if outcome != "drawn":
                failed.append(f"session {session} load {load}: {outcome}, the map reads {map_text(driver)[:80]!r}")
            print(f"session {session} load {load}: {outcome} in {time.monotonic() - started:.1f} s")
    assert not failed, "\n".join(failed)


def test_a_click_keeps_the_lasso_and_says_so(map_page, store, latents, chromium):
    """Lasso frames, then click a frame outside: the lasso's frames and outline stay, the message says so."""
    from components.map_figure import parse_svg_path, points_in_polygon

    if not store.list("clusterings"):
        store_map(store, latents, method="pca", seed=0)
    driver = chromium()
    driver.get(map_page)
    assert map_outcome(driver) == "drawn"
    clustering = driver.find_element(By.CSS_SELECTOR, MAP_COUNT).get_attribute("title").split()[-1]
    embedding = store.array("projections", store.metadata("clusterings", clustering)["projection_id"], "embedding")
    centre, half = np.median(embedding, axis=0), embedding.std(axis=0) * 0.6
    path = to_viewport(driver, centre + half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]))
    drag(driver, [*path, path[0]])
    WebDriverWait(driver, 60).until(lambda d: (map_count(d) or (0, 0))[1] > 1)
    lassoed = map_count(driver)[1]
    outline = driver.execute_script(f"return document.querySelector('{GRAPH}').layout.selections[0].path;")
    outside = np.flatnonzero(~points_in_polygon(embedding, parse_svg_path(outline))
                             & (np.abs(embedding - centre) < 2 * half).all(axis=1))  # on the plot, off the lasso
    [(x, y)] = to_viewport(driver, embedding[outside[:1]])
    ActionChains(driver, duration=50).move_to_location(int(x), int(y)).click().perform()
    wait_for_text(driver, ".ms-map-message", "clicked", timeout=60)
    message = driver.find_element(By.CSS_SELECTOR, ".ms-map-message").text
    assert f"The {lassoed:,} frames selected before stay selected" in message, message
    assert map_count(driver)[1] == lassoed
    assert driver.execute_script(f"return document.querySelector('{GRAPH}').layout.selections.length;") == 1
