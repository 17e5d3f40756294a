"""Denoising VAE training (core.models.train with core.models.corruption): the model sees the
corrupted input, the loss the clean image; the learning-rate schedules by hand; the held-out figures."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import core.models.train as train
from core.models.corruption import CorruptionParams
from core.models.reconstruction import held_out_metrics
from core.models.vae import VAEConfig
from flows.params import LR_SCHEDULES, NOISE_FIELDS, TrainOptions

CONFIG = VAEConfig(image_size=16, latent_dim=2, base_channels=4)


def frames(n: int = 12) -> np.ndarray:
    return (np.random.default_rng(0).random((n, 16, 16)) < 0.5).astype(np.float32)


def test_form_options_are_cores():
    """The train options' noise fields and schedules are core's, with the same defaults."""
    assert NOISE_FIELDS == tuple(f.name for f in dataclasses.fields(CorruptionParams))
    assert TrainOptions().noise == dataclasses.asdict(CorruptionParams())
    assert LR_SCHEDULES == train.LR_SCHEDULES


@pytest.mark.parametrize(("schedule", "expected"), [
    ("constant", [1e-3] * 4),
    # cosine over E = 4 epochs: lr/2 (1 + cos(π e / 4)), e = 0 … 3
    ("cosine", [1e-3, 0.5e-3 * (1 + math.cos(math.pi / 4)), 0.5e-3, 0.5e-3 * (1 + math.cos(3 * math.pi / 4))]),
    ("step", [1e-3, 1e-3, 1e-4, 1e-5]),  # ×0.1 after epoch 2 (half) and after epoch 3 (three quarters)
])
def test_learning_rate_schedules(schedule, expected):
    """Each epoch's recorded rate follows the schedule."""
    _, history = train.train_vae(frames(), CONFIG, train.TrainParams(epochs=4, batch_size=6, lr_schedule=schedule))
    assert [row["lr"] for row in history] == pytest.approx(expected)


def test_model_sees_corrupted_inputs_loss_targets_clean(monkeypatch):
    """With a stand-in corruption (1 − x), every batch the loss scores is the clean batch the
    corruption was given, and the model was fed its corrupted copy."""
    given, fed, scored = [], [], []
    monkeypatch.setattr(train, "corrupt", lambda x, params, generator: given.append(x) or 1 - x)
    real_loss = train.vae_loss

    def loss(x, x_hat, mu, logvar, beta):
        scored.append(x)
        return real_loss(x, x_hat, mu, logvar, beta)

    monkeypatch.setattr(train, "vae_loss", loss)
    params = train.TrainParams(epochs=1, batch_size=6, corruption=CorruptionParams(flip_prob=0.1))
    original = train.VAE.forward
    monkeypatch.setattr(train.VAE, "forward", lambda self, x: fed.append(x) or original(self, x))
    train.train_vae(frames(), CONFIG, params)
    n_train = len(given)
    assert n_train == 2  # 11 training frames in batches of 6; validation is clean and not corrupted
    for clean, noisy, target in zip(given, fed, scored):
        assert torch.equal(noisy, 1 - clean) and torch.equal(target, clean)


def test_held_out_metrics_for_clean_and_corrupted_inputs():
    """A denoising run stores both kinds of figures for its held-out frames; a plain run only clean."""
    images = frames()
    noisy = train.TrainParams(epochs=1, batch_size=6, corruption=CorruptionParams(flip_prob=0.2))
    model, _ = train.train_vae(images, CONFIG, noisy)
    metrics = held_out_metrics(model, images, noisy)
    assert set(metrics) == {"clean", "corrupted"}
    assert all(np.isfinite(v) for figures in metrics.values() for v in figures.values())
    assert set(held_out_metrics(model, images, train.TrainParams(epochs=1))) == {"clean"}
