"""Flows: train a map's latent samplers (flow matching, latent diffusion) and score every sampler.

``train-flow-matching`` and ``train-latent-diffusion`` share one recipe (core.models.flow_matching
``fit_latent_model``): the map's cluster members with membership > ``min_membership``, minus the
held-out evaluation rows (core.synthesis.evaluate.HELDOUT), which serve as the validation split.
The model is stored as a ``models`` record (family ``flow_matching`` / ``latent_diffusion``) naming
the clustering it was trained on and its sampling defaults (``sampling``: guidance, steps).

``evaluate-samplers`` reproduces the study's table on held-out points drawn per cluster: the
trained samplers against UMAP-guided PCA, kNN retrieval, PCA random and the unconditional model
(the first flow matching model at guidance 0), stored as a ``synthesis_evaluations`` record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task

from core.data.results.projections import read_projector
from core.data.results.synthesis_evaluations import write_evaluation
from core.models.checkpoint import build_model, load_model, save_model
from core.models.device import pick_device
from core.models.flow_matching import fit_latent_model
from core.models.generator import decode_batches
from core.settings import get_settings
from core.synthesis.base import Sampler
from core.synthesis.catalog import FITTED, fit_sampler, load_sampler, read_map, trained_for
from core.synthesis.evaluate import HELDOUT, query_rows, score_samplers, summarise
from core.synthesis.flow_matching import FlowMatchingSampler
from flows.params import (EvaluateSamplersParams, TrainFlowMatchingParams, TrainLatentDiffusionParams,
                          TrainSamplerParams)
from flows.progress import FlowProgress
from flows.store import TILED_RETRIES, get_store, load, provenance, save


@task(**TILED_RETRIES)
def store_sampler(model: Any, family: str, metadata: dict) -> str:
    return save_model(get_store(), model, family=family, metadata={**metadata, **provenance()})


def train_sampler(family: str, params: TrainSamplerParams, extra_config: dict[str, Any]) -> str:
    """Train ``family`` on the map of ``params.clustering_id`` and store it; returns the model id."""
    log = get_run_logger()
    progress = FlowProgress(f"train {family.replace('_', ' ')}")
    m = load(read_map, params.clustering_id)
    members = (m.labels >= 0) & (m.probabilities > params.min_membership)
    heldout = m.heldout()
    if (members & ~heldout).sum() < 2:
        raise ValueError(
            f"map {params.clustering_id!r} has {int((members & ~heldout).sum())} cluster members with membership > "
            f"{params.min_membership} outside the held-out split: lower min_membership or cluster a larger map")
    config = {"latent_dim": int(m.latents.shape[1]), "width": params.width, "n_blocks": params.n_blocks,
              "p_uncond": params.p_uncond, **extra_config}
    model = build_model(family, config)
    log.info("training %s on %d members of %s (%d held out)", family, int((members & ~heldout).sum()),
             params.clustering_id, int((members & heldout).sum()))

    def on_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
        text = f"epoch {epoch + 1}/{params.epochs} loss {train_loss:.4g} val {val_loss:.4g}"
        log.info(text)
        progress((epoch + 1) / params.epochs, text)

    result = fit_latent_model(
        model, m.latents[members], m.coords[members], epochs=params.epochs, batch_size=params.batch_size,
        lr=params.lr, weight_decay=params.weight_decay, val_mask=heldout[members], seed=params.seed,
        device=get_settings().device, on_epoch=on_epoch)
    return store_sampler(model.cpu(), family, {
        "name": params.name or f"{family.replace('_', ' ')} on {params.clustering_id}",
        **m.ids,  # model_id: the decoder of the map's latents
        "train": params.model_dump(),
        "sampling": {"guidance": params.guidance, "steps": params.steps},
        "heldout": HELDOUT,
        "n_train": int((members & ~heldout).sum()),
        "history": {"train_loss": result.train_loss, "val_loss": result.val_loss},
        "metrics": {"train_loss": result.train_loss[-1], "val_loss": result.val_loss[-1]},
        "train_seconds": round(result.seconds, 3),
    })


@flow(name="train-flow-matching")
def train_flow_matching_flow(params: TrainFlowMatchingParams) -> str:
    return train_sampler("flow_matching", params, {})


@flow(name="train-latent-diffusion")
def train_latent_diffusion_flow(params: TrainLatentDiffusionParams) -> str:
    return train_sampler("latent_diffusion", params,
                         {"conditional": params.conditional, "n_timesteps": params.n_timesteps})


@task(**TILED_RETRIES)
def open_samplers(clustering_id: str, model_ids: list[str] | None, device: str) -> dict[str, Sampler]:
    """The stored samplers to score, each at its stored sampling defaults, plus "unconditional"
    (the first flow matching model at guidance 0) when there is one."""
    store = get_store()
    if model_ids is None:
        model_ids = [item["id"] for item in trained_for(store, clustering_id)]
    out: dict[str, Sampler] = {}
    for model_id in model_ids:
        meta = store.metadata("models", model_id)
        if meta.get("clustering_id") != clustering_id:
            raise ValueError(f"model {model_id!r} was trained on map {meta.get('clustering_id')!r}, "
                             f"not {clustering_id!r}: its held-out points would not be held out")
        sampler = load_sampler(store, model_id, device=device)
        name = sampler.name if sampler.name not in out else f"{sampler.name} {model_id}"
        out[name] = sampler
        if sampler.name == "flow_matching" and "unconditional" not in out:
            out["unconditional"] = FlowMatchingSampler(sampler.model, guidance=0.0, steps=sampler.steps,
                                                       model_id=model_id)
    return out


@flow(name="evaluate-samplers")
def evaluate_samplers_flow(params: EvaluateSamplersParams) -> str:
    """Score every sampler on the same held-out queries; store the per-query scores and the table."""
    log = get_run_logger()
    progress = FlowProgress("evaluate samplers")
    m = load(read_map, params.clustering_id)
    rows = query_rows(m.labels, m.heldout(), per_cluster=params.per_cluster, seed=params.seed)
    progress(0.1, f"{len(rows)} query points; fitting the baselines", force=True)
    device = pick_device(get_settings().device)
    samplers: dict[str, Sampler] = {name: fit_sampler(name, m) for name in FITTED if name != "knn_retrieval"}
    samplers["knn_retrieval"] = fit_sampler("knn_retrieval", m, k=params.knn_k)
    samplers.update(open_samplers(params.clustering_id, params.model_ids, str(device)))
    decoder = load(load_model, m.model_id, device)
    projector = load(read_projector, m.projection_id)

    def decode(z: np.ndarray) -> np.ndarray:
        return np.concatenate(list(decode_batches(decoder, z, 256, device)))

    progress(0.3, f"scoring {len(samplers)} samplers", force=True)
    scores, seconds = score_samplers(samplers, m.latents[rows], m.coords[rows], decode=decode,
                                     project=projector.transform, seed=params.seed)
    summary = summarise(scores)
    for row in summary.itertuples():
        log.info("%-16s latent l2 %.3f ± %.3f  pixel MSE %.3g ± %.3g  landing %.3f", row.sampler,
                 row.latent_l2_mean, row.latent_l2_std, row.pixel_mse_mean, row.pixel_mse_std, row.landing_mean)
    evaluation_id = save(write_evaluation, scores, summary, rows, m.coords[rows], metadata={
        **m.ids,
        "samplers": {name: {"sampler": s.name, **s.params} for name, s in samplers.items()},
        "params": params.model_dump(),
        "heldout": HELDOUT,
        "sample_seconds": {k: round(v, 4) for k, v in seconds.items()},
    })
    progress(1.0, f"stored {evaluation_id}", force=True)
    return evaluation_id
