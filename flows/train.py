"""Flow: a dataset → a trained β-VAE stored in Tiled (weights as arrays, config as metadata)."""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow, get_run_logger, task

from core.models.checkpoint import save_model
from core.models.corruption import CorruptionParams
from core.models.reconstruction import held_out_metrics
from core.models import square_side
from core.models.vae import VAEConfig
from core.settings import get_settings
from core.models.train import TrainParams as CoreTrainParams
from core.models.train import train_vae
from flows.params import TrainParams
from flows.progress import FlowProgress
from flows.store import TILED_RETRIES, get_store, provenance, load
from core.data.results.datasets import read_images


@task(**TILED_RETRIES)
def store_model(model, metadata: dict) -> str:
    return save_model(get_store(), model, family="vae", metadata={**metadata, **provenance()})


def vae_config(params: TrainParams, shape: tuple[int, ...]) -> VAEConfig:
    """The checked model for a dataset of this shape (N, [C,] S, S), built from the run's params."""
    return VAEConfig(
        image_size=square_side(shape, params.dataset_id),
        channels=1 if len(shape) == 3 else shape[1],
        latent_dim=params.latent_dim,
        base_channels=params.base_channels,
        beta=params.beta,
    ).validate()


@flow(name="train-vae")
def train_vae_flow(params: TrainParams) -> str:
    """Train on the whole dataset on the worker's device; report each epoch's loss terms."""
    log = get_run_logger()
    progress = FlowProgress("train")
    images = load(read_images, params.dataset_id)  # (N, [C,] H, W)
    config = vae_config(params, images.shape)
    noise = CorruptionParams(**params.noise)
    train_params = CoreTrainParams(
        epochs=params.epochs, batch_size=params.batch_size, lr=params.lr, seed=params.seed,
        device=get_settings().device, lr_schedule=params.lr_schedule, corruption=noise if noise.active else None,
    )

    def on_epoch(record: dict) -> None:
        text = (f"epoch {record['epoch']}/{record['epochs']} loss {record['loss']:.4g} "
                f"(rec {record['rec']:.4g}, kl {record['kl']:.4g})")
        if record["val_loss"] is not None:
            text += f" val {record['val_loss']:.4g}"
        log.info(text)
        progress(record["epoch"] / record["epochs"], text, force=True)

    model, history = train_vae(images, config, train_params, on_epoch=on_epoch)
    last = history[-1]
    reconstruction = held_out_metrics(model, images, train_params)  # clean and corrupted inputs
    log.info("held-out reconstruction: %s", reconstruction)
    return store_model(model, {
        "name": params.name or f"VAE d={params.latent_dim} on {params.dataset_id}",
        "dataset_id": params.dataset_id,
        "train": asdict(train_params),
        "history": history,
        "metrics": {k: last[k] for k in ("loss", "rec", "kl", "val_loss")},
        "reconstruction": reconstruction,
    })
