"""Flow: a dataset → a progressively grown WGAN-GP stored in Tiled beside the VAEs.

``models/<id>`` holds what :func:`core.models.checkpoint.save_model` writes (``weights`` and the
config, family "gan") plus ``samples``: uint8 (n, C, r, r) images the generator made from
fixed latents after the last epoch, so the page can show what a model draws without loading
torch. Metadata: dataset_id, the training parameters, the per-epoch history and the last
epoch's losses as ``metrics``; ``status`` is "stopped" when the run was cancelled mid-way (the
model is then stored at the stage it reached).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from prefect import flow, get_run_logger, task

from core.models.checkpoint import save_model
from core.models.device import pick_device
from core.models import square_side
from core.models.gan import GANConfig
from core.settings import get_settings
from core.models.train_gan import GANTrainParams, train_gan
from flows.params import TrainGANParams
from flows.progress import CancelCheck, FlowProgress
from flows.store import TILED_RETRIES, get_store, provenance, load
from core.data.results.datasets import read_images

METRICS = ("critic_loss", "generator_loss", "gp", "wdist", "val_wdist")


@task(**TILED_RETRIES)
def store_gan(model, samples: np.ndarray | None, metadata: dict) -> str:
    """Save the model with its sample images."""
    return save_model(get_store(), model, family="gan", metadata={**metadata, **provenance()}, samples=samples)


def describe_epoch(record: dict) -> str:
    """'epoch 3/20 · 16 px α=0.50 · critic -1.2 gen 0.31 W 0.93 (val 0.9)' for logs and progress."""
    text = (f"epoch {record['epoch']}/{record['epochs']} · {record['resolution']} px "
            f"α={record['alpha']:.2f} · critic {record['critic_loss']:.4g}")
    if record["generator_loss"] is not None:
        text += f" gen {record['generator_loss']:.4g}"
    text += f" W {record['wdist']:.4g}"
    if record["val_wdist"] is not None:
        text += f" (val {record['val_wdist']:.4g})"
    return text


def gan_config(params: TrainGANParams, shape: tuple[int, ...]) -> GANConfig:
    """The checked model for a dataset of this shape (N, [C,] S, S), built from the run's params."""
    return GANConfig(
        image_size=square_side(shape, params.dataset_id),
        channels=1 if len(shape) == 3 else shape[1],
        latent_dim=params.latent_dim,
        base_channels=params.base_channels,
    ).validate()


@flow(name="train-gan")
def train_gan_flow(params: TrainGANParams) -> str:
    """Train on the whole dataset on the worker's device; report each epoch's stage and losses."""
    log = get_run_logger()
    progress = FlowProgress("train GAN")
    images = load(read_images, params.dataset_id)  # (N, [C,] H, W)
    config = gan_config(params, images.shape)
    train_params = GANTrainParams(
        epochs_per_stage=params.epochs_per_stage, batch_size=params.batch_size, lr=params.lr,
        n_critic=params.n_critic, seed=params.seed,
    )
    samples: list[np.ndarray] = []  # the latest epoch's sample images

    def on_epoch(record: dict) -> None:
        samples[:] = [record["samples"]]
        text = describe_epoch(record)
        log.info(text)
        progress(record["epoch"] / record["epochs"], text, force=True)

    model, history = train_gan(images, config, train_params, on_epoch=on_epoch,
                               should_stop=CancelCheck(), device=pick_device(get_settings().device))
    if not history:
        raise RuntimeError("the run was cancelled before its first epoch ended: nothing to store")
    last = history[-1]
    status = "completed" if model.fully_grown and len(history) == last["epochs"] else "stopped"
    return store_gan(model, samples[0] if samples else None, {
        "name": params.name or f"GAN d={params.latent_dim} on {params.dataset_id}",
        "dataset_id": params.dataset_id,
        "train": asdict(train_params),
        "history": history,
        "metrics": {k: last[k] for k in METRICS},
        "resolution": last["resolution"],  # the growth stage reached: the grid side when grown
        "image_size": model.output_size,  # what the generator makes
        "status": status,
    })
