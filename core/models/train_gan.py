"""Train a progressively grown WGAN-GP on an in-memory image stack: a straight loop.

Stages run from 4×4 up to ``config.grid``, ``epochs_per_stage`` epochs each. In every
stage after the first, alpha rises linearly from 0 to 1 over the first ``fade_fraction`` of
its batches (the new block fades in), then the stage continues at alpha = 1. Real images are
resized onto the grid (when their side is not a power of two), then shown to the critic at the
stage's resolution (exact 2×2 area averages of the grid) and, during a fade,
blended with their upsampled lower-resolution version exactly as the generator's output is,
so real and fake differ only in content.

Progress goes out through ``on_epoch`` and a run is cancelled through ``should_stop``, as in
``core.models.train.train_vae``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.limits import BATCH_SIZE, EPOCHS, LR_MAX, N_CRITIC
from core.models.device import pick_device
from core.models import resize
from core.models.gan import GAN, GANConfig, gradient_penalty
from core.models.train import check_images, check_whole, optimizer_step, split_train_val

log = logging.getLogger(__name__)

DRIFT = 1e-3  # ProGAN's small penalty on D(real)² that stops the critic's scores drifting off
ADAM_BETAS = (0.0, 0.99)  # ProGAN's: no momentum, so the critic follows the generator closely


@dataclass
class GANTrainParams:
    epochs_per_stage: int = 10  # epochs at each resolution; a 64 px model has 5 stages
    batch_size: int = 32  # ProGAN's size at small resolutions; also the minibatch-std pool
    lr: float = 1e-3  # ProGAN's rate; safe because equalised lr keeps step sizes uniform
    n_critic: int = 1  # critic steps per generator step; ProGAN uses 1, the WGAN-GP paper 5
    seed: int = 0  # fixes initial weights, the split, shuffling, z and the sample latents
    fade_fraction: float = 0.5  # share of each later stage spent fading the new block in
    val_fraction: float = 0.1  # held-out frames for val_wdist; 0 for none
    n_samples: int = 8  # sample images handed to on_epoch (fixed z, so epochs are comparable)

    def validate(self) -> GANTrainParams:
        check_whole("epochs_per_stage", self.epochs_per_stage, EPOCHS)
        check_whole("batch_size", self.batch_size, BATCH_SIZE)
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr <= LR_MAX):
            raise ValueError(f"lr={self.lr!r} must be in (0, {LR_MAX:g}]")
        check_whole("n_critic", self.n_critic, N_CRITIC)
        if not (isinstance(self.fade_fraction, (int, float)) and 0 <= self.fade_fraction <= 1):
            raise ValueError(f"fade_fraction={self.fade_fraction!r} must be in [0, 1]")
        if not (isinstance(self.val_fraction, (int, float)) and 0 <= self.val_fraction < 1):
            raise ValueError(f"val_fraction={self.val_fraction!r} must be in [0, 1)")
        if not (isinstance(self.n_samples, int) and 0 <= self.n_samples <= 64):
            raise ValueError(f"n_samples={self.n_samples!r} must be between 0 and 64")
        return self


def real_at(x: torch.Tensor, model: GAN) -> torch.Tensor:
    """Real images (B, C, S, S) as the critic sees them now: (B, C, r, r), faded like G's output."""
    r = model.resolution
    x = resize(x, model.config.grid)  # (B, C, grid, grid)
    x = F.avg_pool2d(x, x.shape[-1] // r) if x.shape[-1] > r else x  # exact area average
    alpha = float(model.alpha)
    if model.current_level and alpha < 1:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(low, x, alpha)
    return x


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.detach().float().cpu().numpy() * 255).round().astype(np.uint8)


def train_gan(
    images: np.ndarray,
    config: GANConfig,
    params: GANTrainParams,
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: torch.device | str | None = None,
) -> tuple[GAN, list[dict]]:
    """Train a new GAN on ``images`` and return it (eval mode) with its per-epoch history.

    Parameters
    ----------
    images : float array (N, H, W) or (N, C, H, W), values in [0, 1], H = W = config.image_size
    config : the model to build
    params : epochs per stage, batch size, lr, n_critic, seed, fade fraction, validation
    on_epoch : called after each epoch with ``{"epoch", "epochs", "stage", "resolution",
        "alpha", "critic_loss", "generator_loss", "gp", "wdist", "val_wdist", "seconds",
        "samples"}``: plain numbers, except ``samples``, uint8 (n_samples, C, r, r) images
        from fixed latents at the stage's resolution r (``image_size`` once at the last
        stage, as :meth:`GAN.generate` makes them). ``wdist`` is the critic's Wasserstein
        estimate E[D(real)] − E[D(fake)] over the epoch; ``val_wdist`` the same with held-out
        frames as the reals (None when val_fraction=0): a much smaller value than ``wdist``
        means the critic has memorised the training frames.
    should_stop : polled after every batch; True ends training and returns the model at the
        stage it reached, with only completed epochs in the history
    device : "auto" (default), "cpu", "cuda" or "cuda:N"; see ``core.models.device.pick_device``

    Returns
    -------
    model : GAN on the chosen device, in eval mode; fully grown when training completed
    history : the on_epoch dicts without ``samples`` (they are JSON-able, for metadata)

    Example
    -------
    >>> gan, history = train_gan(frames, GANConfig(image_size=64), GANTrainParams())
    """
    config.validate()
    params.validate()
    data = check_images(images, config)  # (N, C, S, S) float32
    device = device if isinstance(device, torch.device) else pick_device(device or "auto")
    gen = np.random.default_rng(params.seed)
    train_idx, val_idx = split_train_val(len(data), params.val_fraction, gen)
    stages = config.max_level + 1
    epochs = stages * params.epochs_per_stage
    batches_per_epoch = -(-len(train_idx) // params.batch_size)
    fade_batches = max(1, round(params.fade_fraction * params.epochs_per_stage * batches_per_epoch))

    history: list[dict] = []
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(params.seed)
        model = GAN(config).to(device).train()
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=params.lr, betas=ADAM_BETAS)
        opt_c = torch.optim.Adam(model.critic.parameters(), lr=params.lr, betas=ADAM_BETAS)
        z_samples = torch.randn(params.n_samples, config.latent_dim, device=device)
        log.info("training %s on %d images (%d held out) on %s", config, len(train_idx), len(val_idx), device)
        stopped, step = False, 0
        for epoch in range(1, epochs + 1):
            stage = (epoch - 1) // params.epochs_per_stage
            if stage > model.current_level:
                model.grow()  # alpha = 0
                step = 0  # batches into this stage's fade
            t0 = time.perf_counter()
            sums = np.zeros(4)  # critic loss, generator loss, gp, wdist (sum over batches)
            n_g = 0
            batches = gen.permutation(train_idx)
            for b, start in enumerate(range(0, len(batches), params.batch_size)):
                if model.current_level:
                    model.set_alpha(min(1.0, step / fade_batches) if params.fade_fraction else 1.0)
                step += 1
                x = torch.from_numpy(data[batches[start : start + params.batch_size]]).to(device)
                real = real_at(x, model)  # (B, C, r, r)
                z = torch.randn(len(real), config.latent_dim, device=device)
                fake = model.generate_stage(z).detach()
                d_real, d_fake = model.criticize(real), model.criticize(fake)
                gp = gradient_penalty(model.criticize, real, fake)
                loss_c = d_fake.mean() - d_real.mean() + gp + DRIFT * d_real.pow(2).mean()
                optimizer_step(opt_c, loss_c, "lower lr and retrain", "critic loss")
                wdist = (d_real.mean() - d_fake.mean()).item()
                sums[[0, 2, 3]] += [loss_c.item(), gp.item(), wdist]
                if (b + 1) % params.n_critic == 0:
                    loss_g = -model.criticize(model.generate_stage(z)).mean()
                    optimizer_step(opt_g, loss_g, "lower lr and retrain", "generator loss")
                    sums[1] += loss_g.item()
                    n_g += 1
                if should_stop is not None and should_stop():
                    stopped = True
                    break
            if stopped:
                log.info("stopped during epoch %d of %d", epoch, epochs)
                break
            n_c = b + 1
            row = {
                "epoch": epoch, "epochs": epochs, "stage": stage,
                "resolution": model.resolution, "alpha": float(model.alpha),
                "critic_loss": float(sums[0] / n_c),
                "generator_loss": float(sums[1] / n_g) if n_g else None,
                "gp": float(sums[2] / n_c), "wdist": float(sums[3] / n_c),
                "val_wdist": (_val_wdist(model, data, val_idx, params.batch_size, device)
                              if len(val_idx) else None),
                "seconds": time.perf_counter() - t0,
            }
            history.append(row)
            log.info("epoch %(epoch)d/%(epochs)d %(resolution)d px alpha %(alpha).2f "
                     "critic %(critic_loss).4g gp %(gp).4g wdist %(wdist).4g", row)
            if on_epoch is not None:
                with torch.no_grad():
                    samples = _to_uint8(model.generate(z_samples))  # (n_samples, C, r, r)
                on_epoch({**row, "samples": samples})
            if should_stop is not None and should_stop():
                break
    model.eval()
    return model, history


def _val_wdist(model: GAN, data: np.ndarray, idx: np.ndarray, batch_size: int,
               device: torch.device) -> float:
    """E[D(held-out real)] − E[D(fake)], fakes drawn fresh; the critic's view, no training."""
    d_real, d_fake = [], []
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            x = torch.from_numpy(data[idx[start : start + batch_size]]).to(device)
            d_real.append(model.criticize(real_at(x, model)))
            d_fake.append(model.criticize(model.generate_stage(
                torch.randn(len(x), model.config.latent_dim, device=device))))
    return float(torch.cat(d_real).mean() - torch.cat(d_fake).mean())
