"""Flow: (dataset, model) → posterior-mean latents, batch by batch with bounded memory."""

from __future__ import annotations

import numpy as np
from prefect import flow

from core.checkpoint import load_model
from core.device import pick_device
from core.encode import encode_images
from core.settings import get_settings
from flows.params import EncodeParams
from flows.progress import FlowProgress
from flows.store import get_store, read_metadata, write_result


@flow(name="encode")
def encode_flow(params: EncodeParams) -> str:
    progress = FlowProgress("encode")
    store = get_store()
    device = pick_device(get_settings().device)
    model = load_model(store, params.model_id, device=device)
    n = read_metadata("datasets", params.dataset_id)["n_frames"]
    mus, logvars = [], []
    for start, batch in store.iter_images(params.dataset_id, params.batch_size):
        mu, logvar = encode_images(model, batch, batch_size=params.batch_size, device=device)
        mus.append(mu)
        logvars.append(logvar)
        progress((start + len(batch)) / n, f"{start + len(batch)}/{n} frames")
    mu, logvar = np.concatenate(mus), np.concatenate(logvars)  # (N, d)
    return write_result("latents", {"mu": mu, "logvar": logvar}, {
        "dataset_id": params.dataset_id,
        "model_id": params.model_id,
        "latent_dim": int(mu.shape[1]),
        "n": int(mu.shape[0]),
        "params": params.model_dump(),
    })
