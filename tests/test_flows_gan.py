"""Integration: the GAN flows (train-gan, gan-map, calibrate-gamma) through the real worker."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import INTEGRATION_PROJECT
from core.data.results.datasets import read_frames, read_images
from core.models.checkpoint import read_samples

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runner(worker):
    """``submit(flow, params)`` starts a run; ``result(run_id, kind)`` waits, then gives what it stored."""
    from app.services import wait_until
    from core.data.store import Store
    from flows.submit import deployments_registered, submit, wait

    wait_until(worker["child"], deployments_registered, timeout=120)
    store = Store.from_uri(worker["tiled_uri"], api_key=worker["api_key"], project=INTEGRATION_PROJECT)

    def result(run_id, kind):
        wait(run_id, timeout=300, poll=0.5)
        made = [item["id"] for item in store.list(kind) if item.get("flow_run_id") == run_id]
        assert len(made) == 1, made
        return made[0]

    return SimpleNamespace(submit=submit, result=result, store=store)


def untrained_gan(store) -> str:
    """A fully grown, untrained 32 px GAN written straight to the store: any generator maps."""
    import torch

    from core.models.checkpoint import save_model
    from core.models.gan import GAN, GANConfig

    torch.manual_seed(0)
    model = GAN(GANConfig(image_size=32, latent_dim=8, base_channels=2))
    for _ in range(model.config.max_level):
        model.grow()
    model.set_alpha(1.0)
    return save_model(store, model, family="gan", metadata={"name": "untrained test GAN"})


@pytest.fixture(scope="module")
def runs(runner, built_map):
    """The three runs submitted together (no one waits for another's training or start-up)."""
    from flows.params import (
        CalibrateParams, ClusterOptions, GANMapParams, ProjectOptions, ReferenceStates, TrainGANParams,
    )

    submit = runner.submit
    gan_id = untrained_gan(runner.store)
    return {
        "gan_id": gan_id,
        "train-gan": submit("train-gan", TrainGANParams(
            dataset_id=built_map["datasets"], latent_dim=8, base_channels=2, epochs_per_stage=1, batch_size=100)),
        "gan-map": submit("gan-map", GANMapParams(
            model_id=gan_id, n_samples=100, dataset_id=built_map["datasets"], n_real=8, invert_steps=5,
            invert_restarts=1, project=ProjectOptions(method="pca"), cluster=ClusterOptions(min_cluster_size=5),
            tag="gan-map-test")),
        "calibrate-gamma": submit("calibrate-gamma", CalibrateParams(
            model_id=built_map["models"], dataset_id=built_map["datasets"], gammas=[0.5, 1.0, 2.0],
            n_per_reference=8, references=ReferenceStates(latents_id=built_map["latents"], indices=[0, 1, 2, 3]))),
    }


def test_train_gan_stores_a_generator_and_its_samples(runner, runs):
    """The trained GAN loads back fully grown, draws 32×32 images and keeps its last samples."""
    import torch

    from core.models.checkpoint import load_model

    store = runner.store
    model_id = runner.result(runs["train-gan"], "models")
    meta = store.metadata("models", model_id)
    assert meta["family"] == "gan" and meta["status"] == "completed"
    assert [row["resolution"] for row in meta["history"]] == [4, 8, 16, 32]  # one epoch per stage
    assert set(meta["metrics"]) >= {"critic_loss", "wdist"}
    model = load_model(store, model_id)
    with torch.no_grad():
        images = model.generate(torch.randn(3, 8))
    assert images.shape == (3, 1, 32, 32) and float(images.min()) >= 0 and float(images.max()) <= 1
    samples = read_samples(store, model_id)
    assert samples.dtype == np.uint8 and samples.shape == (8, 1, 32, 32)


def test_gan_map_places_real_frames_among_prior_draws(runner, runs, built_map):
    """100 prior draws and 8 inverted real frames make one dataset, its latents and a clustered map."""
    store = runner.store
    dataset_id = runner.result(runs["gan-map"], "datasets")
    model_id = runs["gan_id"]
    frames = read_frames(store, dataset_id)
    assert len(frames) == 108 and store.node("datasets", dataset_id)["images"].shape == (108, 32, 32)
    real = frames[frames["kind"] == "real"]
    assert len(real) == 8 and real["index"].tolist() == list(range(100, 108))
    assert np.isfinite(real["recon_error"]).all() and frames["recon_error"][:100].isna().all()
    # A real frame is stored as it is, not as the generator's fit of it.
    last = int(real["source_index"].iloc[-1])
    np.testing.assert_array_equal(read_images(store, dataset_id, 107), read_images(store, built_map["datasets"], last))
    latents = next(i for i in store.list("latents") if i.get("dataset_id") == dataset_id)
    assert latents["model_id"] == model_id and store.array("latents", latents["id"], "mu").shape == (108, 8)
    clusterings = [c for c in store.list("clusterings") if c.get("dataset_id") == dataset_id]
    assert len(clusterings) == 1 and clusterings[0]["tag"] == "gan-map-test"
    assert clusterings[0]["model_id"] == model_id


def test_calibrate_gamma_suggests_one_of_the_swept_values(runner, runs):
    """The built map's VAE swept over 3 γ around 4 lassoed frames, against consecutive real frames."""
    from core.variations.descriptors import METRICS

    store = runner.store
    calibration_id = runner.result(runs["calibrate-gamma"], "calibrations")
    meta = store.metadata("calibrations", calibration_id)
    assert meta["status"] == "completed" and meta["suggested_gamma"] in (0.5, 1.0, 2.0)
    sweep = store.table("calibrations", calibration_id, "sweep")
    assert len(sweep) == 3 * len(METRICS) and not sweep.duplicated(["gamma", "metric"]).any()
    # The demo series is 50 frames cut into 16 patches: the bands pair frame t and t+1 of patch 0.
    real = store.array("calibrations", calibration_id, "real_indices")
    np.testing.assert_array_equal(real, np.arange(50) * 16)
    assert (store.table("calibrations", calibration_id, "bands")["n_pairs"] == 49).all()
    assert len(store.table("calibrations", calibration_id, "distance")) == 3
    # A VAE encodes the real frames: the adjacent-frame latent distance is read beside the two rules.
    assert meta["adjacent_distance_per_dim"] > 0 and "apart per dimension" in meta["reason"]
    assert meta["suggested_gamma"] == (meta["bound_gamma"] if meta["bound_gamma"] is not None else meta["band_gamma"])
