"""Integration: the flows on a real Prefect server and worker, results in a real Tiled server."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from tests.conftest import INTEGRATION_PROJECT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def submit_and_wait(worker):
    """Submit a flow run and wait for its end, once the worker has registered the flows."""
    from app.services import wait_until
    from flows.submit import deployments_registered, submit, wait

    wait_until(worker["child"], deployments_registered, timeout=120)

    def run(flow_name, params, timeout=300):
        run_id = submit(flow_name, params)
        return run_id, wait(run_id, timeout=timeout, poll=0.5)

    return run


def test_build_map_results_are_complete_and_consistent(built_map, submit_and_wait, tiled_server):
    """The five steps of a build-map run, read back with a plain Tiled client; one more cluster run.

    (Each step's deployment also runs alone elsewhere: ingest in the failure tests below, train
    and project from the page in tests/test_browser_jobs.py, all of them in the demo test.)
    """
    from tiled.client import from_uri

    from core.data.store import Store
    from flows.params import ClusterParams
    from core.data.results.projections import read_projector

    root = from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key)
    client = root[INTEGRATION_PROJECT]
    dataset = client["datasets"][built_map["datasets"]]
    n = dataset["images"].shape[0]
    assert dataset["images"].shape == (n, 32, 32) and n == 50 * (500 // 125) ** 2
    assert len(dataset["frames"].read()) == n
    model = client["models"][built_map["models"]]
    assert model.metadata["config"]["latent_dim"] == 8 and len(model.metadata["history"]) == 2
    mu = client["latents"][built_map["latents"]]["mu"].read()
    assert mu.shape == (n, 8) and np.isfinite(mu).all()
    embedding = client["projections"][built_map["projections"]]["embedding"].read()
    np.testing.assert_allclose(embedding.mean(axis=0), 0, atol=1e-4)  # PCA components are centred
    # The stored projection places the same latents where the map has them, without refitting.
    store = Store.from_client(root, project=INTEGRATION_PROJECT)
    np.testing.assert_allclose(read_projector(store, built_map["projections"]).transform(mu), embedding, atol=1e-4)

    run_id, _ = submit_and_wait("cluster", ClusterParams(projection_id=built_map["projections"], min_cluster_size=10))
    made = [key for key, node in client["clusterings"].items() if node.metadata.get("flow_run_id") == run_id]
    assert len(made) == 1, made
    clustering = client["clusterings"][made[0]]
    labels = clustering["labels"].read()
    assert labels.shape == (n,) and labels.max() + 1 == clustering.metadata["n_clusters"]
    for key in ("dataset_id", "model_id", "latents_id", "projection_id", "params", "quality"):
        assert key in clustering.metadata
    assert set(clustering.metadata["quality"]) >= {"silhouette", "participation_ratio", "active_units"}


def test_project_and_cluster_progress_rises_to_100(built_map, submit_and_wait):
    """A projection and its clustering, followed as the CLI does: the reported progress never
    goes back and ends at 100 with the stored id, which the CLI's bar then shows. (PCA: a UMAP
    run compiles numba's kernels in its fresh process; its epochs are checked in
    tests/test_projection.py.)"""
    from app.progress import shown_percent
    from flows.params import ClusterParams, ProjectParams
    from flows.submit import submit, wait

    for flow_name, params, prefix in (
        ("project", ProjectParams(latents_id=built_map["latents"], method="pca"), "project"),
        ("cluster", ClusterParams(projection_id=built_map["projections"], min_cluster_size=10), "cluster"),
    ):
        seen = []
        final = wait(submit(flow_name, params), poll=0.2, timeout=300,
                     on_update=lambda status: seen.append(status.progress))
        reported = [p for p in seen if p is not None]
        assert reported == sorted(reported) and reported[-1] == final.progress == 100.0, seen
        assert final.description.startswith(f"{prefix}: stored ") and shown_percent(final) == 100.0


def test_out_of_range_parameter_is_refused_before_submission():
    """An invalid parameter never reaches a worker: pydantic names the field and the bound."""
    from flows.params import ProjectParams

    with pytest.raises(ValidationError, match="n_neighbors"):
        ProjectParams(latents_id="lat-x", n_neighbors=1)


def test_failed_run_reports_the_reason(submit_and_wait, worker):
    """Ingesting a folder of unreadable files fails the run with the reason in its message."""
    from flows.params import IngestParams
    from flows.submit import RunFailed

    folder = worker["roots"] / "corrupt"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(RunFailed, match="broken.png"):
        submit_and_wait("ingest", IngestParams(source=str(folder)))


def test_path_outside_data_roots_fails_the_run(submit_and_wait, tmp_path):
    """A source outside the configured data roots is refused by the worker."""
    from flows.params import IngestParams
    from flows.submit import RunFailed

    image = tmp_path / "outside.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    with pytest.raises(RunFailed, match="MORPHOSPACE_DATA_ROOTS"):
        submit_and_wait("ingest", IngestParams(source=str(image)))


def test_sample_variations_writes_every_kept_sample_to_tiled(built_map, submit_and_wait, tiled_server):
    """Four lassoed frames × 16 samples: each kept image in Tiled is G(z_i + ε_ij), in ‖ε‖ order."""
    from core.models.checkpoint import load_model
    from core.models.generator import decode
    from core.data.store import Store
    from core.variations.sampling import perturbations
    from flows.params import ReferenceStates, SampleVariationsParams

    store = Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key, project=INTEGRATION_PROJECT)
    indices = [0, 5, 10, 15]
    params = SampleVariationsParams(
        model_id=built_map["models"], gamma=0.5, n_per_reference=16, seed=3, batch_size=8,
        references=ReferenceStates(latents_id=built_map["latents"], indices=indices))
    run_id, status = submit_and_wait("sample-variations", params)
    assert status.progress == 100.0
    [found] = [v for v in store.list("variations") if v.get("flow_run_id") == run_id]
    meta, vid = found, found["id"]
    assert meta["complete"] and meta["status"] == "completed" and meta["n_references"] == 4
    assert meta["filter_preset"] == "particles" and meta["summary"]["filters"] == {"entropy_max": 0.2}
    samples = store.table("variations", vid, "samples")
    descriptors = store.table("variations", vid, "descriptors")
    images = store.array("variations", vid, "images") if meta["n_kept"] else np.zeros((0,))
    assert len(samples) == 64 and len(descriptors) == 4 and samples["kept"].sum() == meta["n_kept"] == len(images)
    assert len(store.array("variations", vid, "hac_labels")) == 4
    from core.data.results.variations import read_measured_traces  # the frames are a time series
    measured = read_measured_traces(store, vid)
    assert meta["measured_window"] == 2 and len(measured) and {"area", "start", "patch"} <= set(measured)
    mu = store.array("latents", built_map["latents"], "mu")
    np.testing.assert_allclose(store.array("variations", vid, "references"), mu[indices], rtol=1e-6)
    # Recompute one kept sample from the seed: same ε, same decoded image.
    kept = samples[samples["kept"]]
    if len(kept):
        row = kept.iloc[-1]
        i, j = int(row["reference"]), int(row["sample"])
        eps = perturbations(3, i, 16, mu.shape[1], 0.5)[j]
        model = load_model(store, built_map["models"])
        expected = decode(model, (mu[indices[i]] + eps)[None].astype(np.float32), "cpu")[0]
        np.testing.assert_allclose(images[int(row["image"])], expected, atol=1e-5)
    # Each reference's particle traces, read back typed: one row per trace, in the dataset's
    # unit (px² when the dataset records no pixel size), modes over the traces.
    from core.data.results.variations import read_traces

    traces = read_traces(store, vid)
    unit = traces.unit
    assert traces.units["area"] == f"{unit}²" and meta["n_traces"] == len(traces.table)
    assert set(traces.table["reference"]) <= set(range(4))
    if len(traces.table):
        t = traces.table
        assert (t["area"] > 0).all() and (t["anisotropy"] >= 1).all() and (t["tortuosity"] >= 1).all()
        scale = 1.0 if traces.pixel_size is None else traces.pixel_size**2
        np.testing.assert_allclose(t["area"], t["n_pixels"] * scale)
        counts = descriptors.set_index("reference")["n_particles"]
        assert t.groupby("reference").size().to_dict() == counts[counts > 0].to_dict()
    if len(traces.table) >= 2:  # this small VAE's blurry images give 1 trace of 6 px (seed 3)
        assert traces.linkage.shape == (len(traces.table) - 1, 4) and (traces.table["mode"] >= 0).all()
    else:
        assert traces.linkage is None and (traces.table["mode"] == -1).all()


def test_a_28_px_dataset_trains_encodes_and_grows_a_gan(submit_and_wait, worker):
    """`ingest --size 28` makes what every later step takes: train-vae, encode and train-gan
    run on it and record the 28 px side (the models work on a 32 px grid)."""
    from core.data.preprocess import PreprocessParams
    from core.data.store import Store
    from flows.params import EncodeParams, IngestParams, TrainGANParams, TrainParams
    from flows.submit import submit, wait

    store = Store.from_uri(worker["tiled_uri"], api_key=worker["api_key"], project=INTEGRATION_PROJECT)

    def made(kind, run_id):
        [found] = [item["id"] for item in store.list(kind) if item.get("flow_run_id") == run_id]
        return found

    folder = worker["roots"] / "size28"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    run_id, _ = submit_and_wait("ingest", IngestParams(source=str(folder), preprocess=PreprocessParams(size=28)))
    dataset_id = made("datasets", run_id)
    assert store.array("datasets", dataset_id, "images").shape == (12, 28, 28)
    run_id, _ = submit_and_wait("train-vae", TrainParams(dataset_id=dataset_id, latent_dim=2, base_channels=4,
                                                         epochs=1, batch_size=4))
    vae_id = made("models", run_id)
    encode_run = submit("encode", EncodeParams(dataset_id=dataset_id, model_id=vae_id))
    gan_run = submit("train-gan", TrainGANParams(dataset_id=dataset_id, latent_dim=2, base_channels=1,
                                                 epochs_per_stage=1, batch_size=4))
    wait(encode_run, timeout=300, poll=0.5)
    wait(gan_run, timeout=300, poll=0.5)
    assert store.metadata("models", vae_id)["config"]["image_size"] == 28
    assert store.array("latents", made("latents", encode_run), "mu").shape == (12, 2)
    gan = store.metadata("models", made("models", gan_run))
    assert gan["config"]["image_size"] == gan["image_size"] == 28 and gan["resolution"] == 32
    assert store.array("models", made("models", gan_run), "samples").shape == (8, 1, 28, 28)


def test_simulate_xpcs_stores_maps_with_their_parameters(submit_and_wait, tiled_server):
    """16 random maps of 32 × 32 through the worker: a plain Tiled client reads the maps the
    simulator makes from that seed, each beside its parameters and measure."""
    from tiled.client import from_uri

    from core.xpcs.simulate import simulate_maps, to_array
    from core.xpcs.two_time import non_equilibrium
    from flows.params import SimulateXPCSParams
    from flows.simulate_xpcs import parameter_sets

    params = SimulateXPCSParams(n_maps=16, n_frames=32, seed=5, beta=0.3)
    run_id, status = submit_and_wait("simulate-xpcs", params)
    assert status.progress == 100.0
    container = from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key)[INTEGRATION_PROJECT]
    [node] = [n for n in container["xpcs_simulations"].values() if n.metadata.get("flow_run_id") == run_id]
    maps, table = node["maps"].read(), node["parameters"].read()
    assert maps.shape == (16, 32, 32) and maps.dtype == np.float32 and len(table) == 16
    assert (node.metadata["sampling"], node.metadata["n_frames"], node.metadata["complete"]) == ("random", 32, True)
    sets = parameter_sets(params)
    np.testing.assert_array_equal(table[["D", "kappa", "c", "T"]].to_numpy(), to_array(sets))
    np.testing.assert_allclose(maps, simulate_maps(sets, n_frames=32, beta=0.3, rng=5), rtol=1e-6)
    np.testing.assert_allclose(table["measure"], [non_equilibrium(C) for C in maps], atol=1e-4)


def test_train_xpcs_regressor_stores_an_adapted_ensemble(submit_and_wait, tiled_server):
    """40 simulated maps and the two shared measured ones through the worker: a model of family
    xpcs is stored with its metrics, and loaded back it predicts what the run stored for the
    measured maps."""
    from core.data.results.xpcs_maps import ingest_npy
    from core.data.results.xpcs_simulations import simulations_writer
    from core.data.store import Store
    from core.models.checkpoint import load_model
    from core.xpcs.adapt import ParameterAdapter
    from core.xpcs.simulate import PARAM_RANGES, draw_params, simulate_maps, to_array
    from core.xpcs.two_time import non_equilibrium
    from flows.params import TrainXPCSParams
    from tests.conftest import shared_data

    paths = [shared_data("xpcs_two_time", name) for name in ("bnl_test_g2.npy", "yolk_plasma_q0p022.npy")]
    store = Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key, project=INTEGRATION_PROJECT)
    draws = draw_params(40, 1)
    maps = simulate_maps(draws, n_frames=16, rng=2)
    sink = simulations_writer(store, {"sampling": "random", "ranges": {k: list(v) for k, v in PARAM_RANGES.items()},
                                      "n_frames": 16, "q": 1.0, "dt": 1.0, "beta": 0.2, "seed": 1})
    sink.append(maps, to_array(draws), np.array([non_equilibrium(C) for C in maps]))
    sims_id, measured_id = sink.finish(), ingest_npy(store, paths)

    params = TrainXPCSParams(simulations_id=sims_id, experimental_ids=[measured_id], side=16, n_members=2,
                             epochs=2, adapt_epochs=1, batch_size=16)
    run_id, status = submit_and_wait("train-xpcs-regressor", params)
    assert status.progress == 100.0
    [model_id] = [m["id"] for m in store.list("models") if m.get("flow_run_id") == run_id]
    meta = store.metadata("models", model_id)
    assert (meta["family"], meta["simulations_id"], meta["experimental_ids"], meta["status"]) == \
        ("xpcs", sims_id, [measured_id], "completed")
    assert set(meta["metrics"]["r2_adapted"]) == {"D", "kappa", "c", "T"}
    assert [r["phase"] for r in meta["history"]].count("adapt") == 2  # one epoch per member
    mean, sd = ParameterAdapter.from_model(load_model(store, model_id), device="cpu").predict(
        [np.load(p) for p in paths])
    np.testing.assert_allclose(mean, meta["experimental_predictions"]["mean"], rtol=1e-4)
    assert mean.shape == (2, 4) and (sd >= 0).all()
    assert meta["experimental_maps"] == [[measured_id, 0], [measured_id, 1]]
    # Feature embedding of the simulated maps (all 40: fewer than the sample) and both measured
    # ones, PCA at 42 points; "after" is the stored (adapted) member 0's features, so PCA of
    # them recomputed here must match up to each axis' sign.
    emb = meta["feature_embedding"]
    assert (emb["method"], emb["n_simulated"], emb["n_measured"]) == ("pca", 40, 2)
    assert emb["simulated_index"] == list(range(40))
    before, after = np.array(emb["before"]), np.array(emb["after"])
    assert before.shape == after.shape == (42, 2) and not np.allclose(before, after, atol=1e-3)
    feats = ParameterAdapter.from_model(load_model(store, model_id), device="cpu").features(
        [*maps, *(np.load(p) for p in paths)])
    centred = feats - feats.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:2]
    np.testing.assert_allclose(np.abs(centred @ axes.T), np.abs(after), atol=1e-3)


def test_build_map_from_cahn_hilliard_with_a_denoising_vae(submit_and_wait, tiled_server):
    """build-map with the simulator as its source (2 runs × 4 snapshots of 32²), in one run: the
    stored frames are the simulator's, φ unscaled, and the frames table's run, phi0, chi and t are
    colour options of the map; its denoising VAE stores held-out figures for clean and corrupted
    inputs and the rate of each epoch of its cosine schedule."""
    from tiled.client import from_uri

    from components.map_figure import colour_options
    from core.data.cahn_hilliard import simulate
    from flows.params import BuildMapParams, ClusterOptions, ProjectOptions, SimulateCHParams, TrainOptions

    simulation = SimulateCHParams(phis=[0.3, 0.5], chis=[3.0], size=32, n_snapshots=4, t_end=200.0)
    params = BuildMapParams(
        simulate=simulation, tag="cahn-hilliard-test",
        train=TrainOptions(latent_dim=2, base_channels=4, epochs=2, batch_size=4, flip_prob=0.1, ring_count=2,
                           lr_schedule="cosine"),
        project=ProjectOptions(method="pca"), cluster=ClusterOptions(min_cluster_size=2))
    submit_and_wait("build-map", params)  # raises unless the run completed
    container = from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key)[INTEGRATION_PROJECT]

    def tagged(kind):
        [node] = [n for n in container[kind].values() if n.metadata.get("tag") == "cahn-hilliard-test"]
        return node

    node = tagged("datasets")
    images, frames = node["images"].read(), node["frames"].read()
    expected, table = simulate(simulation.core())
    np.testing.assert_allclose(images, expected, atol=1e-6)
    np.testing.assert_allclose(frames[["phi0", "chi", "t"]].to_numpy(), table[["phi0", "chi", "t"]].to_numpy())
    assert list(frames["run"]) == [0] * 4 + [1] * 4
    assert {"run", "phi0", "chi", "t", "snapshot"} <= {o["label"] for o in colour_options(frames)}
    assert node.metadata["simulation"]["params"]["phis"] == [0.3, 0.5]

    model = tagged("models")
    assert set(model.metadata["reconstruction"]) == {"clean", "corrupted"}
    assert model.metadata["train"]["corruption"]["flip_prob"] == 0.1
    assert [row["lr"] for row in model.metadata["history"]] == pytest.approx([1e-3, 5e-4])
    assert tagged("clusterings").metadata["dataset_id"] == node.item["id"]
