"""Integration: train both latent samplers on the shared built map and score every sampler,
through the real Prefect worker, results in the real Tiled server."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import INTEGRATION_PROJECT

pytestmark = pytest.mark.integration


def test_samplers_train_and_are_scored_on_held_out_points(built_map, worker, tiled_server):
    """Both training flows and evaluate-samplers at once (one round of worker processes): the
    evaluation scores two tiny samplers stored here beforehand, every baseline and the
    unconditional model on the same held-out queries per cluster. The retrieval baseline's
    landing distance is checked by hand: on a PCA map the mean of k latents lands on the mean of
    their k map points."""
    import torch
    from sklearn.neighbors import NearestNeighbors

    from app.services import wait_until
    from core.data.results.synthesis_evaluations import read_evaluation
    from core.data.store import Store
    from core.models.checkpoint import build_model, save_model
    from core.models.flow_matching import fit_latent_model
    from core.synthesis.catalog import read_map
    from flows.params import EvaluateSamplersParams, TrainFlowMatchingParams, TrainLatentDiffusionParams
    from flows.submit import deployments_registered, submit, wait

    store = Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key, project=INTEGRATION_PROJECT)
    clustering_id = built_map["clusterings"]
    m = read_map(store, clustering_id)
    members = (m.labels >= 0) & (m.probabilities > 0.5)
    torch.set_num_threads(1)
    stored = []
    for family, extra in (("flow_matching", {}), ("latent_diffusion", {"n_timesteps": 50})):
        model = build_model(family, {"latent_dim": m.latents.shape[1], "width": 16, "n_blocks": 1, **extra})
        fit_latent_model(model, m.latents[members], m.coords[members], epochs=2, val_mask=m.heldout()[members],
                         device="cpu")
        stored.append(save_model(store, model, family=family,
                                 metadata={**m.ids, "sampling": {"guidance": 1.0, "steps": 4}}))

    wait_until(worker["child"], deployments_registered, timeout=120)
    tiny = dict(clustering_id=clustering_id, epochs=3, width=16, n_blocks=1, batch_size=64, steps=4)
    runs = {"fm": submit("train-flow-matching", TrainFlowMatchingParams(**tiny)),
            "ld": submit("train-latent-diffusion", TrainLatentDiffusionParams(**tiny, n_timesteps=50)),
            "eval": submit("evaluate-samplers", EvaluateSamplersParams(clustering_id=clustering_id, model_ids=stored,
                                                                       per_cluster=3, knn_k=4))}
    for run_id in runs.values():
        assert wait(run_id, timeout=300, poll=0.5).progress == 100.0

    trained = {item["family"]: item for item in store.list("models") if item.get("flow_run_id") in runs.values()}
    assert set(trained) == {"flow_matching", "latent_diffusion"}
    fm = trained["flow_matching"]
    assert fm["sampling"] == {"guidance": 5.0, "steps": 4} and len(fm["history"]["val_loss"]) == 3
    assert (fm["clustering_id"], fm["model_id"], fm["projection_id"]) == \
        (clustering_id, built_map["models"], built_map["projections"])
    assert trained["latent_diffusion"]["config"]["n_timesteps"] == 50

    [evaluation_id] = [i["id"] for i in store.list("synthesis_evaluations") if i.get("flow_run_id") == runs["eval"]]
    ev = read_evaluation(store, evaluation_id)
    names = {"umap_pca", "knn_retrieval", "pca_random", "flow_matching", "latent_diffusion", "unconditional"}
    assert set(ev.summary["sampler"]) == names and set(ev.metadata["samplers"]) == names
    assert ev.metadata["samplers"]["unconditional"] == {"sampler": "flow_matching", "model_id": stored[0],
                                                         "guidance": 0.0, "steps": 4}
    heldout = m.heldout()
    assert heldout[ev.query_rows].all()  # queries come only from rows no sampler was fitted on
    per_cluster = {c: min(3, int((heldout & (m.labels == c)).sum())) for c in np.unique(m.labels[m.labels >= 0])}
    assert len(ev.query_rows) == sum(per_cluster.values()) and (m.labels[ev.query_rows] >= 0).all()
    assert len(ev.scores) == len(names) * len(ev.query_rows)
    assert np.isfinite(ev.scores[["latent_l2", "pixel_mse", "landing"]].to_numpy()).all()

    fit = ~heldout
    nn = NearestNeighbors(n_neighbors=4).fit(m.coords[fit])
    landed = m.coords[fit][nn.kneighbors(m.coords[ev.query_rows], return_distance=False)].mean(1)
    knn = ev.scores[ev.scores["sampler"] == "knn_retrieval"].sort_values("query")
    np.testing.assert_allclose(knn["landing"], np.linalg.norm(landed - m.coords[ev.query_rows], axis=1),
                               rtol=1e-3, atol=1e-4)
