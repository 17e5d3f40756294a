"""Any square side that ingest makes trains, encodes and decodes, in both model families."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models.checkpoint import load_file, save_file
from core.maps.encode import encode_images
from core.models.generator import decode, image_shape_of, invert
from core.models import grid_size, square_side
from core.models.gan import GANConfig
from core.models.vae import VAE, VAEConfig
from core.data.preprocess import SIZE_RANGE, PreprocessParams
from core.models.train import TrainParams, train_vae
from core.models.train_gan import GANTrainParams, train_gan


def blobs(n: int, side: int) -> np.ndarray:
    """n centred Gaussian spots of random width: (n, side, side) float32 in [0, 1], one factor."""
    width = np.random.default_rng(0).uniform(0.08, 0.3, n)[:, None, None]
    yy, xx = (np.mgrid[:side, :side] + 0.5) / side
    return np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / (2 * width**2)).astype(np.float32)


def reconstruction_mse(model: VAE, images: np.ndarray) -> float:
    """Mean squared error of the posterior-mean reconstructions (eval mode)."""
    with torch.no_grad():
        x_hat = model.eval()(torch.from_numpy(images[:, None]))[0]  # (N, 1, S, S)
    assert x_hat.shape == (len(images), 1, *images.shape[1:])
    return float(((x_hat[:, 0].numpy() - images) ** 2).mean())


@pytest.mark.parametrize("side", [SIZE_RANGE[0], 28, 101, SIZE_RANGE[1]])
def test_every_side_ingest_accepts_builds_both_families(side):
    """Ingest's size bounds are the models' bounds: one past either end is refused by both."""
    PreprocessParams(size=side).validate()
    assert VAEConfig(image_size=side).validate().grid == GANConfig(image_size=side).validate().grid
    assert grid_size(side) >= side and grid_size(side) & (grid_size(side) - 1) == 0
    assert grid_size(side) < 2 * side
    for outside in (SIZE_RANGE[0] - 1, SIZE_RANGE[1] + 1):
        with pytest.raises(ValueError, match=f"size={outside}"):
            PreprocessParams(size=outside).validate()
        for config in (VAEConfig(image_size=outside), GANConfig(image_size=outside)):
            with pytest.raises(ValueError, match=f"image_size={outside} must be an integer between"):
                config.validate()


@pytest.mark.parametrize("side, grid", [(28, 32), (101, 128)])
def test_vae_trains_encodes_and_decodes_at_any_side(side, grid, tmp_path):
    """28 and 101 px: decoded images have the input's shape and reconstructions get much better."""
    images = blobs(32, side)
    config = VAEConfig(image_size=side, latent_dim=2, base_channels=4, max_channels=16)
    assert config.grid == grid and config.n_blocks == int(np.log2(grid)) - 2
    torch.manual_seed(0)  # train_vae's initial weights for seed 0
    before = reconstruction_mse(VAE(config), images)
    model, history = train_vae(images, config, TrainParams(epochs=4, batch_size=8, lr=1e-2, val_fraction=0))
    after = reconstruction_mse(model, images)
    assert after < before / 2, (before, after)
    assert history[-1]["rec"] < history[0]["rec"]
    mu, logvar = encode_images(model, images)
    assert mu.shape == logvar.shape == (32, 2)
    decoded = decode(model, mu, torch.device("cpu"))
    assert decoded.shape == (32, 1, side, side) and 0 <= decoded.min() and decoded.max() <= 1
    loaded = load_file(save_file(model, tmp_path / "vae.pt"))  # the side is recorded in the config
    assert loaded.config.image_size == side and image_shape_of(loaded) == (1, side, side)
    np.testing.assert_allclose(decode(loaded, mu, torch.device("cpu")), decoded, atol=1e-6)


@pytest.mark.parametrize("side, stages", [(28, [4, 8, 16, 32]), (101, [4, 8, 16, 32, 64, 128])])
def test_gan_grows_on_the_grid_and_makes_images_at_the_dataset_side(side, stages):
    """Growth runs to the next power of two; the grown generator's images, samples included,
    come out at the dataset's side, and real frames of that side invert onto it."""
    images = blobs(16, side)
    config = GANConfig(image_size=side, latent_dim=4, base_channels=2, max_channels=4)
    sample_shapes = []
    model, history = train_gan(images, config, GANTrainParams(epochs_per_stage=1, batch_size=8, n_samples=2,
                                                              val_fraction=0),
                               on_epoch=lambda row: sample_shapes.append(row["samples"].shape), device="cpu")
    assert [row["resolution"] for row in history] == stages and model.fully_grown
    assert sample_shapes[-1] == (2, 1, side, side) and sample_shapes[-2] == (2, 1, stages[-2], stages[-2])
    assert image_shape_of(model) == (1, side, side) and model.resolution == stages[-1]
    z, error = invert(model, images[:2], steps=2, restarts=1)
    generated = decode(model, z, torch.device("cpu"))
    assert generated.shape == (2, 1, side, side) and 0 <= generated.min() and generated.max() <= 1
    assert error.shape == (2,) and np.isfinite(error).all()


def test_training_refuses_frames_that_are_not_square():
    """A 48×40 px dataset is refused saying how to re-ingest it; square frames of any side pass."""
    with pytest.raises(ValueError, match="48×40 px frames.*ingest the images again with a size"):
        square_side((10, 48, 40), "ds-x")
    assert square_side((10, 1, 101, 101), "ds-x") == 101


def _bounds(params_cls: type, name: str) -> list:
    """The lowest and highest value a pydantic params class accepts for a numeric field."""
    limits = {type(m).__name__: m for m in params_cls.model_fields[name].metadata}
    return [getattr(limits["Ge"], "ge"), getattr(limits["Le"], "le")]


@pytest.mark.parametrize("shape", [(4, SIZE_RANGE[0], SIZE_RANGE[0]), (4, 3, 101, 101),
                                   (4, 4, SIZE_RANGE[1], SIZE_RANGE[1])])
def test_what_the_train_forms_accept_the_models_build(shape):
    """Every extreme of the train-vae and train-gan parameters, on any frames ingest can make
    (grey, RGB, RGBA; 8 to 1024 px), gives a model config that validates and carries the value."""
    from flows.params import TrainGANParams, TrainParams
    from flows.train import vae_config
    from flows.train_gan import gan_config

    for params_cls, build, fields in ((TrainParams, vae_config, ("latent_dim", "base_channels", "fc_hidden", "beta")),
                                      (TrainGANParams, gan_config, ("latent_dim", "base_channels"))):
        for name in fields:
            for value in _bounds(params_cls, name):
                config = build(params_cls(dataset_id="ds-x", **{name: value}), shape)
                assert config.image_size == shape[-1] and config.channels == (shape[1] if len(shape) == 4 else 1)
                assert getattr(config, name) == value  # the form's value reaches the model
