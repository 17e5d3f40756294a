"""Flow: simulated two-time maps (+ measured ones) → a parameter regressor stored in Tiled.

Trains ``core.xpcs.adapt.ParameterAdapter`` on a stored simulation set (its maps, parameters and
ranges), adapts it to the measured maps of ``experimental_ids`` (CORAL + the frozen surrogate,
DESIGN §1 XPCS), and stores the adapted ensemble as a ``models`` record of family ``xpcs`` with
its metrics (held-out R² per parameter, before and after adaptation) and history.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from core.data.results.xpcs_maps import read_maps as read_measured
from core.data.results.xpcs_simulations import read_maps, read_simulations
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
    exp_maps = [m for maps_id in params.experimental_ids for m in load(read_measured, maps_id).maps]
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
    predictions = {}
    if exp_maps:
        mean, sd = adapter.predict(exp_maps)
        predictions = {"mean": mean.tolist(), "sd": sd.tolist()}
    return store_regressor(adapter.model_, {
        "name": params.name or f"XPCS regressor on {params.simulations_id}",
        "simulations_id": params.simulations_id,
        "experimental_ids": list(params.experimental_ids),
        "units": sims.metadata.get("units", {}),
        "train": params.model_dump(),
        "history": adapter.history_,
        "metrics": adapter.metrics_,
        "experimental_predictions": predictions,
        "status": "stopped" if adapter.stopped_ else "completed",
    })
