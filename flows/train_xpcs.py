"""Flow: simulated two-time maps (+ measured ones) → a parameter regressor stored in Tiled.

Trains ``core.xpcs.adapt.ParameterAdapter`` on a stored simulation set (its maps, parameters and
ranges), adapts it to the measured maps of ``experimental_ids`` (CORAL + the frozen surrogate,
DESIGN §1 XPCS), and stores the adapted ensemble as a ``models`` record of family ``xpcs`` with
its metrics (held-out R² per parameter, before and after adaptation) and history.

With measured maps it also stores, in the model's metadata, each measured map's predicted
parameters (ensemble mean ± sd, ``experimental_predictions`` with ``experimental_maps`` naming
each row's record and map) and a 2-D embedding of the features of a sample of simulated maps
plus every measured map, before and after adaptation (``feature_embedding``): the page draws
both, to show whether CORAL brought the two domains together.
"""

from __future__ import annotations

import numpy as np
from prefect import flow, get_run_logger, task

from core.data.results.xpcs_maps import read_maps as read_measured
from core.data.results.xpcs_simulations import read_maps, read_simulations
from core.maps.projection import Projector
from core.models.checkpoint import save_model
from core.settings import get_settings
from core.xpcs.adapt import ParameterAdapter
from core.xpcs.simulate import LOG_UNIFORM, PARAM_NAMES
from flows.params import TrainXPCSParams
from flows.progress import CancelCheck, FlowProgress
from flows.store import TILED_RETRIES, get_store, load, provenance


@task(**TILED_RETRIES)
def store_regressor(model, metadata: dict) -> str:
    return save_model(get_store(), model, family="xpcs", metadata={**metadata, **provenance()})


EMBED_SIMULATED = 200  # simulated maps in the feature embedding (a seeded sample): enough to show the cloud
UMAP_MIN_POINTS = 100  # fewer points: PCA (UMAP's 15-neighbour graph is meaningless on a handful)


def feature_embedding(adapter: ParameterAdapter, sim_maps, exp_maps, seed: int = 0) -> dict:
    """2-D maps of member 0's features (``adapter.features``) of a seeded sample of simulated
    maps plus all measured maps, before (vanilla) and after adaptation, fitted separately.

    UMAP (core.maps.projection) from ``UMAP_MIN_POINTS`` points on, PCA below; ``method`` says
    which. Rows: the sampled simulated maps (``simulated_index``), then the measured ones.
    """
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(sim_maps), min(EMBED_SIMULATED, len(sim_maps)), replace=False))
    maps = [sim_maps[i] for i in pick] + list(exp_maps)
    method = "umap" if len(maps) >= UMAP_MIN_POINTS else "pca"

    def embed(features: np.ndarray) -> list[list[float]]:
        xy = Projector(method, 2, random_state=seed).fit_transform(features)
        return np.round(np.asarray(xy, dtype=np.float64), 5).tolist()

    return {"method": method, "simulated_index": pick.tolist(), "n_simulated": len(pick),
            "n_measured": len(exp_maps),
            "before": embed(adapter.features(maps, adapted=False)), "after": embed(adapter.features(maps))}


def describe(row: dict) -> str:
    """One progress line: phase, member, epoch and the loss terms of an ``on_epoch`` row."""
    who = "" if row["member"] is None else f" member {row['member'] + 1}"
    terms = ", ".join(f"{k} {row[k]:.3g}" for k in ("supervised", "coral", "surrogate") if k in row)
    return f"{row['phase']}{who} epoch {row['epoch']}/{row['epochs']} loss {row['loss']:.4g}" + \
        (f" ({terms})" if terms else "")


@flow(name="train-xpcs-regressor")
def train_xpcs_flow(params: TrainXPCSParams) -> str:
    """Train, adapt and store; the model's metadata says what it was trained and adapted on."""
    log = get_run_logger()
    progress = FlowProgress("train XPCS regressor")
    sims = load(read_simulations, params.simulations_id)
    maps = load(read_maps, params.simulations_id)  # (N, T, T) float32
    ranges = {name: tuple(sims.metadata["ranges"][name]) for name in PARAM_NAMES}
    measured = [load(read_measured, maps_id) for maps_id in params.experimental_ids]
    exp_maps = [m for record in measured for m in record.maps]
    exp_rows = [[record.id, i] for record in measured for i in range(len(record.maps))]
    log.info("training on %d simulated maps of %s, adapting to %d measured maps",
             len(maps), params.simulations_id, len(exp_maps))

    def on_epoch(row: dict) -> None:
        text = describe(row)
        log.info(text)
        progress(row["fraction"], text)

    adapter = ParameterAdapter(
        ranges=ranges, log_params=LOG_UNIFORM, side=params.side, n_members=params.n_members,
        epochs=params.epochs, adapt_epochs=params.adapt_epochs, batch_size=params.batch_size, lr=params.lr,
        coral_weight=params.coral_weight, surrogate_weight=params.surrogate_weight, seed=params.seed,
        device=get_settings().device,
    ).fit(list(maps), sims.values(), exp_maps or None, on_epoch=on_epoch, should_stop=CancelCheck())
    # Stored with the model: each measured map's prediction, so a page shows D, kappa, c ± sd at once.
    predictions, embedding = {}, {}
    if exp_maps:
        mean, sd = adapter.predict(exp_maps)
        predictions = {"mean": mean.tolist(), "sd": sd.tolist()}
        embedding = feature_embedding(adapter, list(maps), exp_maps, params.seed)
        log.info("feature embedding (%s) of %d simulated and %d measured maps stored",
                 embedding["method"], embedding["n_simulated"], len(exp_maps))
    return store_regressor(adapter.model_, {
        "name": params.name or f"XPCS regressor on {params.simulations_id}",
        "simulations_id": params.simulations_id,
        "experimental_ids": list(params.experimental_ids),
        "units": sims.metadata.get("units", {}),
        "train": params.model_dump(),
        "history": adapter.history_,
        "metrics": adapter.metrics_,
        "experimental_maps": exp_rows,  # [maps_id, index] of each prediction row
        "experimental_predictions": predictions,
        "feature_embedding": embedding,
        "status": "stopped" if adapter.stopped_ else "completed",
    })
