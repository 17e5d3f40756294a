"""Train a VAE on an in-memory image stack: a straight loop, no framework.

Progress goes out through ``on_epoch`` (a flow turns it into a Prefect progress artifact, a
test collects it into a list) and a run is cancelled through ``should_stop``, checked after
every batch, so neither needs to know about Prefect or Dash.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from core.limits import BATCH_SIZE, EPOCHS, LR_MAX, BadParameter
from core.models.corruption import CorruptionParams, corrupt
from core.models.device import pick_device
from core.models.vae import VAE, VAEConfig, vae_loss

log = logging.getLogger(__name__)

LR_SCHEDULES = ("constant", "cosine", "step")


@dataclass
class TrainParams:
    epochs: int = 20  # a few thousand frames converge in 10-30 epochs at this lr
    batch_size: int = 64  # small enough for 512 px images on a CPU, large enough for GPUs to pay
    lr: float = 1e-3  # Adam's usual default; the GroupNorm'd model is stable with it
    seed: int = 0  # fixes initial weights, the train/val split, shuffling and z samples
    val_fraction: float = 0.1  # held-out frames for val_loss; 0 for none (val_loss is then None)
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"; see core.models.device.pick_device
    lr_schedule: str = "constant"  # "cosine": to 0 over the epochs; "step": ×0.1 at 1/2 and again at 3/4
    corruption: CorruptionParams | None = None  # denoising: inputs corrupted, the loss on the clean image

    def validate(self) -> TrainParams:
        check_whole("epochs", self.epochs, EPOCHS)
        check_whole("batch_size", self.batch_size, BATCH_SIZE)
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr <= LR_MAX):
            raise ValueError(f"lr={self.lr!r} must be in (0, {LR_MAX:g}]")
        if not (isinstance(self.val_fraction, (int, float)) and 0 <= self.val_fraction < 1):
            raise ValueError(f"val_fraction={self.val_fraction!r} must be in [0, 1)")
        if self.lr_schedule not in LR_SCHEDULES:
            raise BadParameter("lr_schedule", self.lr_schedule, "must be one of " + ", ".join(LR_SCHEDULES))
        if self.corruption is not None:
            self.corruption.validate()
        return self


def lr_scheduler(opt: torch.optim.Optimizer, schedule: str, epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch schedule: cosine annealing to 0 at the last epoch, or ×0.1 steps at half and
    three quarters of the epochs (the usual step recipe); None for a constant rate."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if schedule == "step":
        milestones = sorted({m for m in (epochs // 2, 3 * epochs // 4) if m >= 1})
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    return None


def check_whole(name: str, value: object, bounds: tuple[int, int]) -> None:
    """Raise ValueError naming the field, its value and the bounds (from ``core.limits``)."""
    lo, hi = bounds
    if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
        raise ValueError(f"{name}={value!r} must be between {lo} and {hi}")


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, advice: str, name: str = "loss") -> None:
    """One gradient step on ``loss``; a non-finite loss raises before it reaches the weights
    (one NaN step would poison every later batch), naming the loss and what to change."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training diverged ({name}={loss.item()!r}); {advice}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def split_train_val(n: int, val_fraction: float, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and held-out indices; at least one of each when val_fraction > 0."""
    if n < 2:
        raise ValueError(f"got {n} image(s); training needs at least 2 (add more frames)")
    n_val = min(n - 1, max(1, round(n * val_fraction))) if val_fraction > 0 else 0
    order = gen.permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def check_images(images: np.ndarray, config: VAEConfig) -> np.ndarray:
    """Return images as float32 (N, C, S, S), or raise ValueError saying what to fix."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"images must be a numpy array, got {type(images).__name__}")
    if images.ndim == 3:
        images = images[:, None]  # (N, 1, H, W)
    if images.ndim != 4:
        raise ValueError(
            f"images of shape {images.shape} must be (N, H, W) or (N, C, H, W)"
        )
    want = (config.channels, config.image_size, config.image_size)
    if images.shape[1:] != want:
        raise ValueError(
            f"images of shape {images.shape} do not match the model config, which expects "
            f"(N, {', '.join(map(str, want))}): resize the images to "
            f"{config.image_size}×{config.image_size}, or set image_size/channels to match"
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(
            f"images have dtype {images.dtype}; convert to float32 scaled to [0, 1] "
            "(e.g. divide uint8 frames by 255)"
        )
    images = images.astype(np.float32, copy=False)
    if not np.isfinite(images).all():
        bad = np.unique(np.nonzero(~np.isfinite(images).reshape(len(images), -1))[0])
        raise ValueError(
            f"{bad.size} image(s) contain NaN or inf (first at index {int(bad[0])}): "
            "drop or fill those frames before training"
        )
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        raise ValueError(
            f"image values span [{lo:.4g}, {hi:.4g}] but must lie in [0, 1]: "
            "rescale them, e.g. (x - min) / (max - min)"
        )
    return images


def load_weights(model: VAE, state: Mapping[str, torch.Tensor]) -> None:
    """Copy ``state`` into ``model`` (any float dtype), or ValueError naming what does not fit."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # torch lists every missing, unexpected and mis-shaped tensor
        raise ValueError(f"the starting weights do not fit a VAE of {model.config}: {exc}") from None


def _run_epoch(model, opt, data, index, batch_size, beta, device, should_stop, noisy=None):
    """One pass over data[index]; returns per-image means (loss, rec, kl), or None if stopped.
    ``noisy`` (training only) corrupts the inputs; the loss still targets the clean batch."""
    sums = np.zeros(3)
    for start in range(0, len(index), batch_size):
        x = torch.from_numpy(data[index[start : start + batch_size]]).to(device)  # (B, C, S, S)
        if opt is not None:
            x_hat, mu, logvar = model(x if noisy is None else noisy(x))
            loss, rec, kl = vae_loss(x, x_hat, mu, logvar, beta)
            optimizer_step(opt, loss, "lower lr or beta and retrain")
        else:
            with torch.inference_mode():
                x_hat, mu, logvar = model(x)
                loss, rec, kl = vae_loss(x, x_hat, mu, logvar, beta)
        sums += len(x) * np.array([loss.item(), rec.item(), kl.item()])
        if should_stop is not None and should_stop():
            return None
    return sums / len(index)


def train_vae(
    images: np.ndarray,
    config: VAEConfig,
    params: TrainParams,
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
) -> tuple[VAE, list[dict]]:
    """Train a VAE on ``images`` and return it (eval mode) with its per-epoch history.

    Parameters
    ----------
    images : float array (N, H, W) or (N, C, H, W), values in [0, 1], H = W = config.image_size
    config : the model to build
    params : epochs, batch size, lr, seed, validation fraction, device
    on_epoch : called after each epoch with ``{"epoch", "epochs", "loss", "rec", "kl",
        "val_loss", "seconds", "lr"}`` (plain floats/ints; val_loss is None when val_fraction=0; lr:
        the rate the epoch trained at)
    should_stop : polled after every batch; returning True ends training early and returns
        the model as it stands, with only the completed epochs in the history
    init_state : weights to start from instead of the seed's random ones (fine-tuning a stored
        model on new frames); they must be a VAE of ``config``

    Returns
    -------
    model : VAE on the chosen device, in eval mode
    history : the list of on_epoch dicts

    Runs are bit-for-bit repeatable for a seed on the CPU; the caller's global torch RNG is
    left untouched. Validation uses the posterior mean (eval mode), so val_loss has no sampling
    noise and sits a little below the training loss of the same weights.

    Example
    -------
    >>> model, history = train_vae(frames, VAEConfig(image_size=64), TrainParams(epochs=5))
    """
    config.validate()
    params.validate()
    data = check_images(images, config)  # (N, C, S, S) float32
    device = pick_device(params.device)
    gen = np.random.default_rng(params.seed)
    train_idx, val_idx = split_train_val(len(data), params.val_fraction, gen)

    history: list[dict] = []
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(params.seed)
        model = VAE(config)
        if init_state is not None:
            load_weights(model, init_state)
        model = model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=params.lr)
        schedule = lr_scheduler(opt, params.lr_schedule, params.epochs)
        noisy = None
        if params.corruption is not None and params.corruption.active:
            noise_gen = torch.Generator(device=device).manual_seed(params.seed)
            noisy = functools.partial(corrupt, params=params.corruption, generator=noise_gen)
        log.info("training %s on %d images (%d held out) on %s", config, len(train_idx), len(val_idx), device)
        for epoch in range(1, params.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            lr = opt.param_groups[0]["lr"]
            means = _run_epoch(model, opt, data, gen.permutation(train_idx), params.batch_size,
                               config.beta, device, should_stop, noisy)
            if means is None:
                log.info("stopped during epoch %d of %d", epoch, params.epochs)
                break
            val_loss = None
            if len(val_idx):
                model.eval()
                val_loss = float(_run_epoch(model, None, data, val_idx, params.batch_size,
                                            config.beta, device, None)[0])
            row = {
                "epoch": epoch, "epochs": params.epochs,
                "loss": float(means[0]), "rec": float(means[1]), "kl": float(means[2]),
                "val_loss": val_loss, "seconds": time.perf_counter() - t0, "lr": lr,
            }
            history.append(row)
            log.info("epoch %(epoch)d/%(epochs)d loss %(loss).4g rec %(rec).4g kl %(kl).4g", row)
            if on_epoch is not None:
                on_epoch(row)
            if schedule is not None:
                schedule.step()
            if should_stop is not None and should_stop():
                break
    model.eval()
    return model, history
