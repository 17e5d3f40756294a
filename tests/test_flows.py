"""Integration: the flows on a real Prefect server and worker, results in a real Tiled server."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from tests.conftest import DEMO_DATA, INTEGRATION_PROJECT

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


def test_ingest_train_encode_project_cluster(submit_and_wait, tiled_server, worker):
    """The five steps run as flow runs; a plain Tiled client reads every result back."""
    from tiled.client import from_uri

    from core.preprocess import PreprocessParams
    from flows.params import ClusterParams, EncodeParams, IngestParams, ProjectParams, TrainParams

    client = from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key)
    root = client[INTEGRATION_PROJECT] if INTEGRATION_PROJECT in client else None

    def produced(kind, run_id):
        node = client[INTEGRATION_PROJECT][kind]
        ids = [key for key, n in node.items() if n.metadata.get("flow_run_id") == run_id]
        assert len(ids) == 1, f"{kind} for run {run_id}: {ids}"
        return ids[0]

    run_id, status = submit_and_wait("ingest", IngestParams(
        source=str(DEMO_DATA / "colloids_brightfield.npz"),
        name="demo frames, 4 patches each",
        preprocess=PreprocessParams(size=32, patch_size=250),
    ))
    assert status.progress == 100.0
    dataset_id = produced("datasets", run_id)
    images = client[INTEGRATION_PROJECT]["datasets"][dataset_id]["images"]
    assert images.shape == (200, 32, 32)  # 50 frames × (500 / 250)² patches
    assert len(client[INTEGRATION_PROJECT]["datasets"][dataset_id]["frames"].read()) == 200

    run_id, status = submit_and_wait("train-vae", TrainParams(dataset_id=dataset_id, latent_dim=8, epochs=3))
    assert "epoch 3/3" in status.description
    model_id = produced("models", run_id)
    model = client[INTEGRATION_PROJECT]["models"][model_id]
    assert model.metadata["config"]["latent_dim"] == 8 and len(model.metadata["history"]) == 3

    run_id, _ = submit_and_wait("encode", EncodeParams(dataset_id=dataset_id, model_id=model_id))
    latents_id = produced("latents", run_id)
    mu = client[INTEGRATION_PROJECT]["latents"][latents_id]["mu"].read()
    assert mu.shape == (200, 8) and np.isfinite(mu).all()

    run_id, _ = submit_and_wait("project", ProjectParams(latents_id=latents_id, method="pca", n_components=3))
    projection_id = produced("projections", run_id)
    embedding = client[INTEGRATION_PROJECT]["projections"][projection_id]["embedding"].read()
    assert embedding.shape == (200, 3)
    # PCA components are centred: the mean of the map is zero.
    np.testing.assert_allclose(embedding.mean(axis=0), 0, atol=1e-4)
    # The stored projection places the same latents where the map has them, without refitting.
    from core.store import Store
    from flows.project import load_projector

    store = Store.from_client(client, project=INTEGRATION_PROJECT)
    np.testing.assert_allclose(load_projector(store, projection_id).transform(mu), embedding, atol=1e-4)

    run_id, _ = submit_and_wait("cluster", ClusterParams(projection_id=projection_id, min_cluster_size=10))
    clustering = client[INTEGRATION_PROJECT]["clusterings"][produced("clusterings", run_id)]
    labels = clustering["labels"].read()
    assert labels.shape == (200,) and labels.max() + 1 == clustering.metadata["n_clusters"]
    for key in ("dataset_id", "model_id", "latents_id", "projection_id", "params", "quality"):
        assert key in clustering.metadata
    assert set(clustering.metadata["quality"]) >= {"silhouette", "participation_ratio", "active_units"}


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
