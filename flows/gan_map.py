"""Flow: a generator → a map of what it draws, with real frames placed on it by inversion.

A GAN has no encoder, so its map is built from latents we choose: ``n_samples`` draws from the
prior N(0, I), decoded, and optionally real frames inverted (z optimised until G(z) matches the
frame, ``core.models.generator.invert``) so a scientist can lasso real observations among the
generated ones. A VAE's decoder serves too.

Writes, then maps with the project and cluster flows (as subflows, like ``build-map``):
  datasets/<id>  images (N, [C,] H, W): the decoded prior draws, then the real frames themselves;
                 frames table: index, source ("prior" or the real frame's source), kind
                 ("generated" or "real"), source_index (the real frame's row in its dataset, −1
                 for generated), recon_error (per-frame MSE of G(z) against it; NaN for generated)
  latents/<id>   mu = z (N, d); logvar = zeros (unit variance, the prior's: there is no
                 posterior), so the quality figures read it like a VAE's
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import flow, task

from core.data.results import latents
from core.models.checkpoint import load_model
from core.models.device import pick_device
from core.models.generator import decode_batches, invert, latent_dim_of, prior_latents
from core.maps.selection import read_images
from core.settings import get_settings
from flows.cluster import cluster_flow
from flows.params import ClusterParams, GANMapParams, ProjectParams
from flows.progress import FlowProgress
from flows.project import project_flow
from flows.store import TILED_RETRIES, get_store, provenance, read_metadata, save
from core.data.results.datasets import dataset_writer, read_frames


def as_frames(images: np.ndarray) -> np.ndarray:
    """Decoder output (B, C, H, W) in the datasets' layout: (B, H, W) for one channel, as ingest stores it."""
    return images[:, 0] if images.shape[1] == 1 else images


def spread(n_rows: int, n: int) -> np.ndarray:
    """Up to ``n`` row indices spaced evenly over ``n_rows``, first and last included."""
    return np.unique(np.linspace(0, n_rows - 1, min(n, n_rows)).round().astype(np.int64))


@task(**TILED_RETRIES)
def read_real(dataset_id: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, frames, sources) of ``n`` frames spread over a dataset."""
    store = get_store()
    table = read_frames(store, dataset_id)
    indices = spread(len(table), n)
    return indices, read_images(store, dataset_id, indices), table["source"].to_numpy()[indices]


@flow(name="gan-map")
def gan_map_flow(params: GANMapParams) -> dict[str, str]:
    """Returns the ids of the dataset, latents, projection and clustering (all tagged with ``tag``)."""
    progress = FlowProgress("GAN map")
    store = get_store()
    device = pick_device(get_settings().device)
    model = load_model(store, params.model_id, device=device)
    model_meta = read_metadata("models", params.model_id)
    z = prior_latents(params.n_samples, latent_dim_of(model), seed=params.seed)  # (n, d)
    writer = dataset_writer(store, metadata={
        "name": f"{params.n_samples} draws of {model_meta.get('name') or params.model_id}",
        "kind": "generated", "model_id": params.model_id, "real_dataset_id": params.dataset_id,
        "params": params.model_dump(mode="json"), **provenance(),
    })
    for batch in decode_batches(model, z, params.batch_size, device):  # (B, C, H, W)
        writer.append(as_frames(batch))
        progress(0.3 * writer.n / len(z), f"decoded {writer.n:,}/{len(z):,} prior draws")
    frames = pd.DataFrame({"index": np.arange(len(z)), "source": "prior", "kind": "generated",
                           "source_index": -1, "recon_error": np.nan})
    if params.dataset_id:
        indices, real, sources = read_real(params.dataset_id, params.n_real)
        z_real, error = invert(
            model, real, steps=params.invert_steps, restarts=params.invert_restarts,
            batch_size=params.batch_size, seed=params.seed, device=device,
            on_batch=lambda done, n: progress(0.3 + 0.5 * done / n, f"inverted {done:,}/{n:,} real frames"),
        )
        writer.append(real)
        z = np.concatenate([z, z_real])
        frames = pd.concat([frames, pd.DataFrame({
            "index": np.arange(len(frames), len(z)), "source": sources, "kind": "real",
            "source_index": indices, "recon_error": error,
        })], ignore_index=True)
    ids = {"datasets": writer.finish(frames)}
    ids["latents"] = save(latents.write_latents, z, np.zeros_like(z), metadata={
        "dataset_id": ids["datasets"], "model_id": params.model_id, "params": params.model_dump(mode="json"),
    })
    progress(0.85, "projecting", force=True)
    ids["projections"] = project_flow(ProjectParams(latents_id=ids["latents"], **params.project.model_dump()))
    ids["clusterings"] = cluster_flow(ClusterParams(projection_id=ids["projections"], **params.cluster.model_dump()))
    if params.tag:
        for kind, id in ids.items():
            store.update_metadata(kind, id, tag=params.tag)
    return ids
