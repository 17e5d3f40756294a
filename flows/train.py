"""Flow: a dataset → a trained β-VAE stored in Tiled (weights as arrays, config as metadata)."""

from __future__ import annotations

from dataclasses import asdict, replace

from prefect import flow, get_run_logger, task
from torch import nn

from core.models.checkpoint import load_model, save_model
from core.models.corruption import CorruptionParams
from core.models.reconstruction import held_out_metrics
from core.models import square_side
from core.models.vae import VAE, VAEConfig
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
        fc_hidden=params.fc_hidden,
        beta=params.beta,
    ).validate()


def fine_tune_config(init: nn.Module, params: TrainParams, shape: tuple[int, ...]) -> VAEConfig:
    """The architecture of a stored model to fine-tune (``init_model_id``): its own wins over the
    params' defaults; another model family, a size it was not built for, or a latent size asked
    for that it lacks is refused with what to do instead."""
    if not isinstance(init, VAE):
        raise ValueError(f"model {params.init_model_id} is not a VAE: fine-tune a VAE, or leave init_model_id empty")
    for name in ("latent_dim", "base_channels", "fc_hidden"):
        asked, have = getattr(params, name), getattr(init.config, name)
        if asked != have and asked != TrainParams.model_fields[name].default:
            raise ValueError(f"{name}={asked} was asked for, but model {params.init_model_id} has "
                             f"{name}={have}: leave {name} at its default to fine-tune it")
    config = replace(init.config, beta=params.beta).validate()
    size, channels = square_side(shape, params.dataset_id), 1 if len(shape) == 3 else shape[1]
    if (config.image_size, config.channels) != (size, channels):
        raise ValueError(f"model {params.init_model_id} takes {config.channels}-channel {config.image_size} px "
                         f"images; dataset {params.dataset_id} has {channels}-channel {size} px ones: ingest "
                         f"the frames again with size={config.image_size}")
    return config


@flow(name="train-vae")
def train_vae_flow(params: TrainParams) -> str:
    """Train on the whole dataset on the worker's device; report each epoch's loss terms."""
    log = get_run_logger()
    progress = FlowProgress("train")
    images = load(read_images, params.dataset_id)  # (N, [C,] H, W)
    config, init_state = vae_config(params, images.shape), None
    if params.init_model_id is not None:  # fine-tune a stored VAE (the demo's shipped generator)
        init = load(load_model, params.init_model_id)
        config, init_state = fine_tune_config(init, params, images.shape), init.state_dict()
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

    model, history = train_vae(images, config, train_params, on_epoch=on_epoch, init_state=init_state)
    last = history[-1]
    reconstruction = held_out_metrics(model, images, train_params)  # clean and corrupted inputs
    log.info("held-out reconstruction: %s", reconstruction)
    return store_model(model, {
        "name": params.name or f"VAE d={config.latent_dim} on {params.dataset_id}",
        "dataset_id": params.dataset_id,
        "init_model_id": params.init_model_id,
        "train": asdict(train_params),
        "history": history,
        "metrics": {k: last[k] for k in ("loss", "rec", "kl", "val_loss")},
        "reconstruction": reconstruction,
    })
