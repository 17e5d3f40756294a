"""The synthesis panel's callbacks as functions, on a map written to a real Tiled server.

The map: two clusters of 2-D latents centred at (−4, 0) and (4, 0), mapped by PCA. With two
components of 2-D latents PCA is a rotation, so map distances equal latent distances, and with
noise_scale 0 UMAP-guided PCA returns the picked cluster's mean, which lands on its centroid:
every distance below is checkable by hand.
"""

from __future__ import annotations

import base64
import io
import json
import uuid

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from dash.exceptions import PreventUpdate

from components import synthesis_panel as panel
from components.ids import DRAWN_PATH, MAP_POINT
from components.services import Services
from core.data.results import clusterings, latents, projections
from core.data.results.datasets import dataset_writer
from core.maps.projection import Projector
from core.models.checkpoint import save_model
from core.models.vae import VAE, VAEConfig
from tests.test_inspect_panel import texts, words

OFFSETS = np.array([[0.5, 0], [-0.5, 0], [0, 0.5], [0, -0.5]])
STILL = {"noise_scale": 0}  # draws are the cluster mean: they land on its centroid


@pytest.fixture(scope="module")
def shown(tiled_server):
    """(services, CURRENT, centroids on the map) of an 8-frame map with a tiny untrained VAE."""
    from core.data.store import Store

    store = Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key,
                           project=f"t{uuid.uuid4().hex[:8]}")
    writer = dataset_writer(store, metadata={})
    writer.append(np.zeros((8, 8, 8), np.float32))
    dataset = writer.finish(pd.DataFrame({"index": range(8), "source": list("abcdefgh")}))
    torch.manual_seed(0)
    model_id = save_model(store, VAE(VAEConfig(image_size=8, latent_dim=2, base_channels=4)),
                          metadata={"dataset_id": dataset})
    mu = np.concatenate([OFFSETS + [-4, 0], OFFSETS + [4, 0]]).astype(np.float32)  # (8, 2)
    links = {"dataset_id": dataset, "model_id": model_id}
    links["latents_id"] = latents.write_latents(store, mu, np.zeros_like(mu), links)
    projector = Projector("pca").fit(mu)
    embedding = projector.embedding_
    links["projection_id"] = projections.write_projection(store, embedding, projector, links)
    labels = np.repeat([0, 1], 4)
    links["clustering_id"] = clusterings.write_clustering(store, labels, np.ones(8), links)
    current = {**links, "n_components": 2}
    centroids = np.stack([embedding[:4].mean(0), embedding[4:].mean(0)]).astype(float)
    return Services.from_store(store), current, centroids


def ask(services, current, mode, where, **values):
    """The generate callback's outputs for a click at ``where`` (x, y) or a drawn SVG path."""
    trigger, point, path = (MAP_POINT, {"x": where[0], "y": where[1]}, None) if mode == "click" else \
        (DRAWN_PATH, None, {"path": where})
    return panel.generate_outputs(services, trigger, point, path, mode, current, "umap_pca", values)


def test_a_click_on_a_cluster_centre_lands_there(shown):
    """Asked at cluster 0's centroid: 3 images, 3 diamonds on the centroid, distance 0, said so."""
    services, current, centroids = shown
    view, marks, frames, _, _, request, error = ask(services, current, "click", centroids[0], n=3, **STILL)
    assert error is None and request["points"] == [centroids[0].tolist()]
    np.testing.assert_allclose(marks["landed"], [centroids[0]] * 3, atol=1e-4)
    assert marks["pairs"] == [0, 0, 0] and not marks["path"] and frames["src"] == []
    text = words(view)
    assert "3 images asked at" in text and "UMAP-guided PCA · temperature=0.1, k_nearest=2, core_membership=0.8, "\
        "clamp_sigma=2.5, n_components=None, noise_scale=0 · seed 0" in text
    assert "landed 0 map units" in text and "They landed where they were asked." in text
    assert texts(view).count("away") >= 3  # one caption per draw


def test_an_empty_click_lands_on_the_nearest_cluster_and_says_so(shown):
    """6 map units off cluster 1's centroid, across the map's short axis: the draws land on the
    centroid, 6 away; the nearest measured frame is 5.5 away (a latent offset of 0.5)."""
    services, current, centroids = shown
    across = np.array([-(centroids[1] - centroids[0])[1], (centroids[1] - centroids[0])[0]]) / 8  # unit, ⟂
    asked = centroids[1] + 6 * across
    view, marks, *_ , error = ask(services, current, "click", asked, n=2, **STILL)
    assert error is None
    np.testing.assert_allclose(marks["landed"], [centroids[1]] * 2, atol=1e-4)
    text = words(view)
    assert "landed 6 map units" in text and "the nearest measured frame is 5.5 away" in text
    assert "The asked point lies in empty space" in text and "only draws inside the map's clusters" in text


def test_a_drawn_path_gives_a_played_sequence(shown):
    """A path from centroid 0 to centroid 1 (length 8) in 5 steps: points every 2 units, 5 frames."""
    services, current, (c0, c1) = shown
    view, marks, frames, slider_max, value, request, error = ask(
        services, current, "path", f"M{c0[0]},{c0[1]}L{c1[0]},{c1[1]}", steps=5, **STILL)
    assert error is None and slider_max == 4 and value == 0 and marks["path"]
    np.testing.assert_allclose(request["points"], [c0 + (c1 - c0) * t for t in np.linspace(0, 1, 5)], atol=1e-9)
    assert len(frames["src"]) == 5 and frames["caption"][0].startswith("step 1 of 5")
    assert "5 images along a path of length 8" in words(view)
    # the end points land on their clusters' centroids, exactly where they were asked
    np.testing.assert_allclose(np.array(marks["landed"])[[0, -1]], [c0, c1], atol=1e-4)


def test_the_same_seed_gives_the_same_images(shown):
    """Exports generate again from the request: with noise, one seed gives one set of images."""
    services, current, centroids = shown
    request = ask(services, current, "click", centroids[0], n=2, seed=3)[5]
    store = services.store()
    np.testing.assert_array_equal(panel.synthesize(store, current, request)[0].images,
                                  panel.synthesize(store, current, request)[0].images)
    other = {**request, "params": {**request["params"], "seed": 4}}
    assert not np.array_equal(panel.synthesize(store, current, request)[0].latents,
                              panel.synthesize(store, current, other)[0].latents)


def test_exports_carry_images_and_what_made_them(shown):
    """NPZ: 2 images (1, 8, 8), asked and landed points, provenance with seed and model; TIFF: 2 pages."""
    services, current, centroids = shown
    request = ask(services, current, "click", centroids[0], n=2, seed=5)[5]
    npz = panel.export_file(services.store(), current, request, "npz")
    data = np.load(io.BytesIO(base64.b64decode(npz["content"])))
    assert data["images"].shape == (2, 1, 8, 8) and data["asked"].shape == (2, 2)
    made = json.loads(str(data["provenance"]))
    assert made["seed"] == 5 and made["model_id"] == current["model_id"] and made["sampler"] == "umap_pca"
    assert made["params"]["temperature"] == 0.1
    tif = panel.export_file(services.store(), current, request, "tiff")
    with tifffile.TiffFile(io.BytesIO(base64.b64decode(tif["content"]))) as f:
        assert f.asarray().shape == (2, 8, 8) and f.shaped_metadata[0]["seed"] == 5


def test_clicks_outside_click_mode_do_nothing_and_bad_input_is_named(shown):
    """Inspect mode ignores clicks; a path event in click mode too; n = 0 is named in a warning."""
    services, current, centroids = shown
    for mode, trigger in (("inspect", MAP_POINT), ("click", DRAWN_PATH)):
        with pytest.raises(PreventUpdate):
            panel.generate_outputs(services, trigger, {"x": 0, "y": 0}, {"path": "M0,0L1,1"}, mode, current,
                                   "umap_pca", {})
    *_, error = ask(services, current, "click", centroids[0], n=0)
    assert "n: Input should be greater than or equal to 1" in texts(error)
    *_, error = ask(services, current, "path", "M0,0L0,0")
    assert "no length" in texts(error)


def test_sampler_list_says_why_it_is_empty(shown):
    """UMAP-guided PCA on a clustered 2-D map; none on a 3-D or unclustered map, with the reason."""
    services, current, _ = shown
    store = services.store()
    assert panel.sampler_options(store, current)[0][0] == {"label": "UMAP-guided PCA (no training)", "value": "umap_pca"}
    assert "2-D" in panel.sampler_options(store, {**current, "n_components": 3})[1]
    assert "cluster this map first" in panel.sampler_options(store, {**current, "clustering_id": None})[1]


def test_a_sampler_trained_on_the_map_is_listed_and_draws(shown):
    """A flow matching model stored for this map (untrained: the plumbing is under test) is offered,
    draws with the guidance and steps given, and names itself under the images; another map's is refused."""
    from core.models.checkpoint import build_model

    services, current, centroids = shown
    store = services.store()
    model = build_model("flow_matching", {"latent_dim": 2, "width": 16, "n_blocks": 1})
    ids = {k: current[k] for k in ("clustering_id", "projection_id", "latents_id", "model_id")}
    trained = save_model(store, model, family="flow_matching",
                         metadata={**ids, "name": "fm test", "sampling": {"guidance": 2.5, "steps": 7}})
    from core.synthesis.catalog import load_sampler

    # its training run's guidance and steps are its defaults; the form's values win
    assert load_sampler(store, trained).params == {"model_id": trained, "guidance": 2.5, "steps": 7}
    assert load_sampler(store, trained, steps=3).params["steps"] == 3
    options = panel.sampler_options(store, current)[0]
    assert {"label": "Flow matching · fm test", "value": trained} in options
    view, marks, *_, error = panel.generate_outputs(services, MAP_POINT, {"x": centroids[0][0], "y": centroids[0][1]},
                                                    None, "click", current, trained,
                                                    {"n": 2, "guidance": 0, "sampling_steps": 3})
    assert error is None and len(marks["landed"]) == 2
    assert f"Flow matching · model_id={trained}, guidance=0, steps=3 · seed 0" in words(view)
    *_, error = panel.generate_outputs(services, MAP_POINT, {"x": 0, "y": 0}, None, "click",
                                       {**current, "clustering_id": "cl-other"}, trained, {})
    assert "was not trained on map cl-other" in texts(error)
