"""Each kind of result, written by its owner in core.data.results, read by a plain Tiled client.

The layout is the contract with whoever reads Tiled without our code (a notebook, another
facility's tool): these tests name every array, table and metadata key literally, so a change
to an owner's constants that would break such a reader fails here. Where it makes sense the
other way round too: a node written by a plain client reads back through the owner.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def plain(store, tiled_server):
    """The store's project through tiled.client alone (no code of ours)."""
    from tiled.client import from_uri

    store.list("latents")  # creates the project's containers
    return from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key)[store.project]


def test_latents_layout(store, plain, rng):
    from core.data.results.latents import read_latents, write_latents

    mu, logvar = rng.normal(size=(7, 3)).astype(np.float32), np.zeros((7, 3), np.float32)
    id = write_latents(store, mu, logvar, {"dataset_id": "ds-a", "model_id": "m-a"})
    node = plain["latents"][id]
    np.testing.assert_array_equal(node["mu"].read(), mu)
    np.testing.assert_array_equal(node["logvar"].read(), logvar)
    meta = node.metadata
    assert (meta["dataset_id"], meta["model_id"], meta["latent_dim"], meta["n"], meta["complete"]) == \
        ("ds-a", "m-a", 3, 7, True)

    # Written by a plain client, read by the owner.
    other = plain["latents"].create_container("lat-plain", metadata={"dataset_id": "ds-b", "model_id": "m-b"})
    other.write_array(mu[:2], key="mu")
    other.write_array(logvar[:2], key="logvar")
    back = read_latents(store, "lat-plain")
    assert (back.dataset_id, back.model_id) == ("ds-b", "m-b")
    np.testing.assert_array_equal(back.mu, mu[:2])


def test_projection_layout_keeps_its_projector(store, plain, rng):
    from core.data.results.projections import read_projection, read_projector, write_projection
    from core.maps.projection import Projector

    mu = rng.normal(size=(30, 5)).astype(np.float32)
    projector = Projector("pca")
    embedding = projector.fit_transform(mu)
    id = write_projection(store, embedding, projector, {"latents_id": "lat-a", "dataset_id": "ds-a",
                                                        "model_id": "m-a"})
    node = plain["projections"][id]
    np.testing.assert_array_equal(node["embedding"].read(), embedding)
    assert node.metadata["projector"]["method"] == "pca" and node.metadata["latents_id"] == "lat-a"
    # The fitted projector is plain arrays: a reader without our code can place new points.
    mean, components = node["projector_pca_mean"].read(), node["projector_pca_components"].read()
    np.testing.assert_allclose((mu - mean) @ components.T, embedding, atol=1e-4)

    back = read_projection(store, id)
    assert (back.latents_id, back.dataset_id, back.model_id) == ("lat-a", "ds-a", "m-a")
    np.testing.assert_allclose(read_projector(store, id).transform(mu), embedding, atol=1e-5)


def test_clustering_layout(store, plain):
    from core.data.results.clusterings import read_clustering, write_clustering

    labels, strengths = np.array([0, 0, 1, -1]), np.array([1.0, 0.5, 0.9, 0.0])
    id = write_clustering(store, labels, strengths, {"projection_id": "proj-a", "params": {"space": "latent"}})
    node = plain["clusterings"][id]
    np.testing.assert_array_equal(node["labels"].read(), labels)
    np.testing.assert_array_equal(node["probabilities"].read(), strengths)
    assert node.metadata["projection_id"] == "proj-a"

    other = plain["clusterings"].create_container("cl-plain", metadata={"projection_id": "proj-b",
                                                                        "params": {"space": "projection"}})
    other.write_array(labels[::-1].copy(), key="labels")
    other.write_array(strengths, key="probabilities")
    back = read_clustering(store, "cl-plain")
    assert back.projection_id == "proj-b" and back.params["space"] == "projection"
    np.testing.assert_array_equal(back.labels, labels[::-1])
    with pytest.raises(ValueError, match="4 labels for 3"):
        write_clustering(store, labels, strengths[:3], {})
