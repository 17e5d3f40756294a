"""Flow: (dataset, model) → posterior-mean latents, batch by batch with bounded memory."""

from __future__ import annotations

from prefect import flow

from core.data.results import latents
from core.models.checkpoint import load_model
from core.models.device import pick_device
from core.maps.encode import encode_dataset
from core.settings import get_settings
from flows.params import EncodeParams
from flows.progress import FlowProgress
from flows.store import get_store, save


@flow(name="encode")
def encode_flow(params: EncodeParams) -> str:
    progress = FlowProgress("encode")
    store = get_store()
    device = pick_device(get_settings().device)
    model = load_model(store, params.model_id, device=device)
    mu, logvar = encode_dataset(  # (N, d) each
        model, store, params.dataset_id, batch_size=params.batch_size, device=device,
        on_batch=lambda done, total: progress(done / max(total or 1, 1), f"{done}/{total} frames"),
    )
    return save(latents.write_latents, mu, logvar, metadata={
        "dataset_id": params.dataset_id,
        "model_id": params.model_id,
        "params": params.model_dump(),
    })
