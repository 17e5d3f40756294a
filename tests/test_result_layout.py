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


def test_variations_layout(store, plain, rng):
    """A run's pieces through VariationsSink and write_clusters, read plainly and by the owner."""
    import pandas as pd

    from core.data.results.variations import VariationsSink, read_reference, read_variations, write_clusters
    from core.variations.clusters import cluster_variations

    writer = store.writer("variations", metadata={"model_id": "m-a"})
    sink = VariationsSink(writer)
    for i in range(3):  # reference i keeps i + 1 of 4 samples, the kept image j of it constant 10 i + j
        sink.reference(i, np.full(2, i, np.float32), np.full((1, 2, 2), i, np.float32))
        kept = np.arange(4) <= i
        sink.samples(i, rng.normal(size=(4, 2)), kept,
                     pd.DataFrame({"sample": range(4), "magnitude": np.arange(4.0), "kept": kept}),
                     (10 * i + np.arange(i + 1))[:, None, None, None] * np.ones((1, 1, 2, 2), np.float32))
        sink.descriptors(i, {"trace_area": 0.1 * i, "anisotropy": float(i * i)}, np.zeros((1, 2, 2)))
    table = sink.write()
    write_clusters(writer, cluster_variations(table, columns=["trace_area", "anisotropy"], n_clusters=2,
                                              min_cluster_size=2, seed=0))
    id = writer.finish(n_kept=6)

    node = plain["variations"][id]
    images = node["images"].read()
    assert images.shape == (6, 1, 2, 2) and list(images[:, 0, 0, 0]) == [0, 10, 11, 20, 21, 22]
    assert node["references"].shape == (3, 2) and node["reference_images"].shape == node["traces"].shape == (3, 1, 2, 2)
    samples = node["samples"].read()
    assert list(samples.loc[samples["kept"], "image"]) == list(range(6))
    assert (samples.loc[~samples["kept"], "image"] == -1).all() and set(samples["reference"]) == {0, 1, 2}
    descriptors = node["descriptors"].read()
    assert list(descriptors["n_kept"]) == [1, 2, 3] and list(descriptors["image_start"]) == [0, 1, 3]
    assert node["linkage"].shape == (2, 4) and node["embedding"].shape[0] == 3
    assert {"hac_labels", "hdbscan_labels"} <= set(node)
    assert node.metadata["descriptor_columns"] == ["trace_area", "anisotropy"] and node.metadata["complete"]

    back = read_variations(store, id)
    assert back.n == 3 and back.columns == ["trace_area", "anisotropy"]
    assert list(back.kept["image"]) == list(range(6)) and back.linkage.shape == (2, 4)
    reference, _ = read_reference(store, id, 2)
    assert reference[0, 0, 0] == 2

    stopped = store.writer("variations", metadata={"status": "stopped"})
    stopped.append("images", images[:1])
    with pytest.raises(ValueError, match="not complete"):
        read_variations(store, stopped.id)


def test_particle_traces_layout(store, plain):
    """Per-particle traces with their modes, linkage and units: plain reads and the typed read."""
    import pandas as pd

    from core.data.results.variations import VariationsSink, read_traces, write_traces
    from core.variations.traces import TRACE_UNITS, trace_modes

    writer = store.writer("variations", metadata={"model_id": "m-a"})
    sink = VariationsSink(writer)
    for i in range(2):
        sink.reference(i, np.zeros(2, np.float32), np.zeros((1, 2, 2), np.float32))
        sink.descriptors(i, {"kept_fraction": 1.0}, np.zeros((1, 2, 2)))
        sink.add_traces(i, pd.DataFrame({
            "particle": [1, 2], "area": [10.0 * i + 1, 10.0 * i + 2], "anisotropy": [1.0, 3.0 + i],
            "tortuosity": [1.0, 1.5], "centroid_y": [0.5, 1.0], "centroid_x": [1.0, 0.5], "n_pixels": [4, 8]}),
            dropped=3 * i)
    sink.write()
    traces = sink.trace_table()
    modes = trace_modes(traces, 2)
    write_traces(writer, traces, modes, units=TRACE_UNITS("nm"), pixel_size=0.5, unit="nm")
    id = writer.finish()

    node = plain["variations"][id]
    table = node["particle_traces"].read()
    assert list(table.columns) == ["reference", "particle", "area", "anisotropy", "tortuosity",
                                   "centroid_y", "centroid_x", "n_pixels", "mode"]
    assert list(table["reference"]) == [0, 0, 1, 1] and list(table["area"]) == [1, 2, 11, 12]
    assert list(table["mode"]) == list(modes.labels) and node["trace_linkage"].shape == (3, 4)
    meta = node.metadata
    assert (meta["trace_units"]["area"], meta["pixel_size"], meta["unit"]) == ("nm²", 0.5, "nm")
    descriptors = node["descriptors"].read()
    assert list(descriptors["n_particles"]) == [2, 2] and list(descriptors["trace_dropped_px"]) == [0, 3]

    back = read_traces(store, id)
    pd.testing.assert_frame_equal(back.table, table)
    assert back.units["area"] == "nm²" and back.linkage.shape == (3, 4) and back.pixel_size == 0.5

    older = store.writer("variations", metadata={})
    older.write_array("references", np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="have no particle traces"):
        read_traces(store, older.id)


def test_calibration_layout(store, plain):
    import pandas as pd

    from core.data.results.calibrations import newest_for_model, read_calibration, write_calibration
    from core.variations.calibration import Calibration

    sweep = pd.DataFrame({"gamma": [0.5, 1.0], "metric": "iou", "mean": [0.9, 0.7], "median": [0.9, 0.7],
                          "q10": [0.8, 0.5], "q90": [1.0, 0.9]})
    distance = pd.DataFrame({"gamma": [0.5, 1.0], "distance_per_dim": [0.1, 0.2],
                             "expected_distance_per_dim": [0.1, 0.2]})
    result = Calibration(sweep, distance, pd.DataFrame(), pd.DataFrame(), 1.0, "stopped", band_gamma=0.5,
                         bound_gamma=1.0, entropy_bound=np.float64(0.26), adjacent_distance_per_dim=0.1,
                         latent_gamma=np.float64(0.98), reason="γ = 1 by the method's rule.")
    id = write_calibration(store, result, np.array([3, 4, 5]), {"model_id": "m-a"})

    node = plain["calibrations"][id]
    assert set(node) == {"sweep", "distance", "real_indices"}  # empty tables are left out
    pd.testing.assert_frame_equal(node["sweep"].read(), sweep, check_dtype=False)  # str dtypes differ in NA
    assert list(node["real_indices"].read()) == [3, 4, 5]
    assert (node.metadata["suggested_gamma"], node.metadata["status"]) == (1.0, "stopped")
    assert (node.metadata["bound_gamma"], node.metadata["reason"]) == (1.0, "γ = 1 by the method's rule.")

    back = read_calibration(store, id)
    pd.testing.assert_frame_equal(back.result.distance, distance)
    assert back.result.bands.empty and back.result.status == "stopped" and list(back.real_indices) == [3, 4, 5]
    assert (back.result.band_gamma, back.result.entropy_bound, back.result.latent_gamma) == (0.5, 0.26, 0.98)
    assert back.result.adjacent_distance_per_dim == 0.1 and back.result.reason == result.reason
    assert newest_for_model(store, "m-a").id == id and newest_for_model(store, "m-b") is None


def test_dataset_layout(store, plain, rng):
    import pandas as pd

    from core.data.preprocess import PreprocessParams
    from core.data.results.datasets import dataset_writer, iter_images, read_frames, read_images, read_preprocess

    writer = dataset_writer(store, metadata={"name": "layout", "preprocess": {"size": 8}})
    batches = [rng.random((3, 4, 4), dtype=np.float32) for _ in range(2)]
    for batch in batches:
        writer.append(batch)
    id = writer.finish(pd.DataFrame({"index": range(6), "source": "a.tif"}))
    node = plain["datasets"][id]
    np.testing.assert_array_equal(node["images"].read(), np.concatenate(batches))
    assert list(node["frames"].read()["index"]) == list(range(6))
    assert (node.metadata["n_frames"], node.metadata["frame_shape"], node.metadata["name"]) == (6, [4, 4], "layout")

    other = plain["datasets"].create_container("ds-plain", metadata={"n_frames": 2})
    other.write_array(np.ones((2, 3, 3), np.float32), key="images")
    other.write_dataframe(pd.DataFrame({"index": [0, 1], "source": ["x", "y"]}), key="frames")
    assert read_images(store, "ds-plain", 1).shape == (3, 3)
    assert [start for start, _ in iter_images(store, "ds-plain", 1)] == [0, 1]
    assert list(read_frames(store, "ds-plain")["source"]) == ["x", "y"]
    assert read_preprocess(store, id) == PreprocessParams(size=8)
    with pytest.raises(ValueError, match="records no preprocessing; re-ingest it"):
        read_preprocess(store, "ds-plain")


def test_model_layout(store, plain):
    """Weights as one flat array plus the tensors' names and shapes: loadable without pickles."""
    import torch

    from core.models.checkpoint import load_model, read_samples, save_model
    from core.models.gan import GAN, GANConfig

    model = GAN(GANConfig(image_size=8, latent_dim=2, base_channels=4)).eval()
    drawn = np.zeros((2, 1, 4, 4), np.uint8)
    id = save_model(store, model, family="gan", metadata={"dataset_id": "ds-a"}, samples=drawn)
    node = plain["models"][id]
    meta = node.metadata
    assert (meta["family"], meta["config"]["latent_dim"], meta["dataset_id"]) == ("gan", 2, "ds-a")
    flat = node["weights"].read()
    state = model.state_dict()
    assert [t["name"] for t in meta["tensors"]] == list(state)
    first = meta["tensors"][0]
    np.testing.assert_array_equal(flat[: int(np.prod(first["shape"]))].reshape(first["shape"]),
                                  state[first["name"]].numpy())
    np.testing.assert_array_equal(node["samples"].read(), drawn)

    back = load_model(store, id)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in state.items())
    np.testing.assert_array_equal(read_samples(store, id), drawn)


def test_live_session_layout(store, plain):
    """A live session (owner: core.live.session) grows tables and an image array a plain client reads."""
    from core.live.session import LiveSession

    session = LiveSession.create(store, n_components=2, metadata={"projection_id": "proj-a"})
    n = 3
    session.append_points({"index": [5, 6, 7], "patch": [-1] * n, "source": ["sim"] * n, "batch": [0, 0, 1],
                           "row": [0, 1, 2], "x": [0.5, 1.0, 1.5], "y": [0.0] * n, "cluster": [1, -1, 1],
                           "non_equilibrium": [np.nan] * n, "received": [1.0] * n, "processed": [2.0] * n})
    session.append_errors({"index": [8], "source": ["sim"], "reason": ["not an image"], "received": [3.0]})
    session.put_images(np.arange(3), np.arange(3, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32))

    node = plain["live"][session.id]
    assert (node.metadata["projection_id"], node.metadata["n_components"]) == ("proj-a", 2)
    points = node["points"].read()
    assert list(points["index"]) == [5, 6, 7] and list(points["x"]) == [0.5, 1.0, 1.5]
    assert list(node["errors"].read()["reason"]) == ["not an image"]
    assert [float(node["images"][r, 0, 0]) for r in points["row"]] == [0.0, 1.0, 2.0]


def test_xpcs_maps_layout(store, plain, rng):
    """Measured two-time maps of different sides (owner: core.data.results.xpcs_maps), one array each."""
    from core.data.results.xpcs_maps import read_maps, write_maps

    lag = np.abs(np.subtract.outer(np.arange(6), np.arange(6)))
    maps = [1 + 0.2 * np.exp(-lag / 2.0), 1 + 0.1 * np.exp(-np.abs(np.subtract.outer(np.arange(4), np.arange(4))))]
    id = write_maps(store, maps, ["a.npy", "b.npy"], {"name": "two maps"})
    node = plain["xpcs_maps"][id]
    np.testing.assert_array_equal(node["map_000"].read(), maps[0])
    np.testing.assert_array_equal(node["map_001"].read(), maps[1])
    meta = node.metadata
    assert (meta["n_maps"], meta["sides"], meta["sources"], meta["name"]) == (2, [6, 4], ["a.npy", "b.npy"], "two maps")
    assert meta["measures"] == [0.0, 0.0]  # Toeplitz maps: equilibrium

    other = plain["xpcs_maps"].create_container("xmap-plain", metadata={"n_maps": 1, "measures": [0.5]})
    other.write_array(maps[1], key="map_000")
    back = read_maps(store, "xmap-plain")
    assert back.measures == [0.5] and len(back.maps) == 1
    np.testing.assert_array_equal(back.maps[0], maps[1])


def test_xpcs_simulations_layout(store, plain, rng):
    """Maps appended in two chunks, the parameters table in map order, read plainly and by the owner."""
    from core.data.results.xpcs_simulations import read_maps, read_simulations, simulations_writer

    sink = simulations_writer(store, {"sampling": "grid", "n_frames": 4, "q": 1.0, "beta": 0.2, "seed": 3,
                                      "ranges": {"c": [0.0, 0.5]}})
    maps = rng.random((5, 4, 4)).astype(np.float32)
    values = np.column_stack([np.arange(5.0), np.full(5, 0.1), np.linspace(0, 0.5, 5), np.full(5, 400.0)])
    sink.append(maps[:3], values[:3], np.array([0.0, 0.1, 0.2]))
    sink.append(maps[3:], values[3:], np.array([0.3, 0.4]))
    id = sink.finish()

    node = plain["xpcs_simulations"][id]
    np.testing.assert_array_equal(node["maps"].read(), maps)
    table = node["parameters"].read()
    assert list(table.columns) == ["D", "kappa", "c", "T", "measure"] and list(table["D"]) == [0, 1, 2, 3, 4]
    assert list(table["measure"]) == [0.0, 0.1, 0.2, 0.3, 0.4]
    meta = node.metadata
    assert (meta["sampling"], meta["n_frames"], meta["q"], meta["beta"], meta["seed"], meta["n_maps"]) == \
        ("grid", 4, 1.0, 0.2, 3, 5)
    assert meta["ranges"]["c"] == [0.0, 0.5] and meta["complete"] and meta["status"] == "completed"

    back = read_simulations(store, id)
    assert (back.n, back.n_frames, back.q, back.beta, back.sampling) == (5, 4, 1.0, 0.2, "grid")
    np.testing.assert_array_equal(back.values(), values)
    np.testing.assert_array_equal(read_maps(store, id, slice(3, 5)), maps[3:])

    stopped = simulations_writer(store, {"sampling": "random"})
    stopped.append(maps[:1], values[:1], np.array([0.0]))
    stopped.stop()
    assert plain["xpcs_simulations"][stopped.id].metadata["status"] == "stopped"
    with pytest.raises(Exception, match="incomplete"):
        read_simulations(store, stopped.id)


def test_synthesis_evaluation_layout(store, plain):
    """Scores and summary tables plus the query rows (owner: core.data.results.synthesis_evaluations)."""
    import pandas as pd

    from core.data.results.synthesis_evaluations import read_evaluation, write_evaluation

    scores = pd.DataFrame({"sampler": ["a", "a", "b", "b"], "query": [0, 1, 0, 1],
                           "latent_l2": [1.0, 2.0, 3.0, 4.0], "pixel_mse": [0.1, 0.2, 0.3, 0.4],
                           "landing": [0.5, 0.5, 1.0, 1.0]})
    summary = pd.DataFrame({"sampler": ["a", "b"], "n": [2, 2], "latent_l2_mean": [1.5, 3.5]})
    id = write_evaluation(store, scores, summary, np.array([4, 9]), np.array([[0.0, 1.0], [2.0, 3.0]]),
                          {"clustering_id": "cl-a", "samplers": {"a": {"k": 5}}})
    node = plain["synthesis_evaluations"][id]
    assert list(node["scores"].read()["latent_l2"]) == [1.0, 2.0, 3.0, 4.0]
    assert list(node["summary"].read()["sampler"]) == ["a", "b"]
    np.testing.assert_array_equal(node["query_rows"].read(), [4, 9])
    np.testing.assert_array_equal(node["query_coords"].read(), [[0, 1], [2, 3]])
    assert node.metadata["clustering_id"] == "cl-a" and node.metadata["samplers"] == {"a": {"k": 5}}
    back = read_evaluation(store, id)
    assert list(back.summary["latent_l2_mean"]) == [1.5, 3.5] and back.metadata["clustering_id"] == "cl-a"
