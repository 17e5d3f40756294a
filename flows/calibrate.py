"""Flow: sweep γ around reference states and suggest the one that moves images as much as time does
(the method's upper-bound rule, the median-in-band rule and, for a VAE, adjacent frames' latent distance).

Stores a :class:`core.variations.calibration.Calibration` (layout: core.data.results.calibrations).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task

from core.data.results import calibrations
from core.variations.calibration import calibrate_gamma
from core.models.checkpoint import load_model
from core.models.device import pick_device
from core.models.generator import latent_dim_of
from core.maps.encode import encode_images
from core.maps.selection import read_images
from core.settings import get_settings
from flows.params import CalibrateParams
from flows.progress import CancelCheck, FlowProgress
from flows.store import TILED_RETRIES, get_store, read_metadata, save
from flows.variations import reference_latents
from core.data.results.datasets import read_frames

PATCH_COLUMNS = ("patch", "patch_y", "patch_x")


def consecutive_frames(frames: pd.DataFrame, limit: int) -> np.ndarray:
    """Rows of one time series in acquisition order: the first ``limit`` at the first frame's patch.

    A dataset cut into patches interleaves the patches of each frame, so neighbouring rows are
    different places, not consecutive times; rows at one patch position, in index order, are.
    """
    same = np.ones(len(frames), dtype=bool)
    for column in PATCH_COLUMNS:
        if column in frames.columns:
            same &= (frames[column] == frames[column].iloc[0]).to_numpy()
    order = frames["index"].to_numpy() if "index" in frames.columns else np.arange(len(frames))
    return np.sort(order[same])[:limit]


@task(**TILED_RETRIES)
def read_real_frames(dataset_id: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, frames) of up to ``limit`` consecutive frames of a dataset."""
    store = get_store()
    indices = consecutive_frames(read_frames(store, dataset_id), limit)
    if len(indices) < 2:
        raise ValueError(f"dataset {dataset_id} has {len(indices)} frame(s) in one series; the real "
                         "bands need at least 2 consecutive frames: pick another dataset")
    return indices, read_images(store, dataset_id, indices)


@flow(name="calibrate-gamma")
def calibrate_flow(params: CalibrateParams) -> str:
    """Sweep γ on the worker's device; the bands come from the model's own data unless told otherwise."""
    log = get_run_logger()
    progress = FlowProgress("calibrate γ")
    store = get_store()
    model_meta = read_metadata("models", params.model_id)
    device = pick_device(get_settings().device)
    model = load_model(store, params.model_id, device=device)
    latents_id = params.references.latents_id
    refs = reference_latents(params.references, params.model_id, latent_dim_of(model), params.seed)  # (M, d)
    dataset_id = params.dataset_id or model_meta.get("dataset_id")
    indices, real = read_real_frames(dataset_id, params.n_real_frames) if dataset_id else (None, None)
    # Adjacent frames' encodings need an encoder: a VAE has one, a GAN none (its inversion is an optimisation).
    encodes = real is not None and hasattr(model, "encode")
    real_latents = encode_images(model, real, device=device)[0] if encodes else None  # (T, d) posterior means
    result = calibrate_gamma(
        model, refs, params.gammas, n_per_reference=params.n_per_reference, seed=params.seed,
        real_images=real, real_latents=real_latents, device=device, should_stop=CancelCheck(),
        on_progress=lambda done, total: progress(done / total, f"{done:,}/{total:,} samples"),
    )
    log.info("γ sweep %s over %d references (%s): %s", params.gammas, len(refs), result.status, result.reason)
    progress(1.0, f"suggested γ = {result.suggested_gamma}", force=True)
    return save(calibrations.write_calibration, result, indices, metadata={
        "name": f"γ sweep on {params.model_id}",
        "model_id": params.model_id, "model_family": model_meta.get("family", "vae"),
        "latents_id": latents_id, "dataset_id": dataset_id,
        "n_references": len(refs), "params": params.model_dump(mode="json"),
    })
