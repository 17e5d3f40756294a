"""Progressive WGAN-GP: shapes, fade-in, equalised lr, gradient penalty, checkpoints, training,
and the decoder interface (VAE and GAN) with GAN inversion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.models.checkpoint import arrays_to_state, build_model, load_file, save_file, state_to_arrays
from core.models.generator import (
    decode_batches, decoder_for, image_shape_of, invert, latent_dim_of, prior_latents,
)
from core.models.gan import (
    GAN, EqualizedConv2d, EqualizedLinear, GANConfig, gradient_penalty, minibatch_std, pixel_norm,
)
from core.models.vae import VAE, VAEConfig
from core.models.train_gan import GANTrainParams, train_gan

TINY = dict(image_size=32, latent_dim=8, base_channels=4, max_channels=8)


def tiny_gan(channels: int = 1, level: int = 3, alpha: float = 1.0, **changes) -> GAN:
    torch.manual_seed(0)
    model = GAN(GANConfig(channels=channels, **{**TINY, **changes})).eval()
    for _ in range(level):
        model.grow()
    model.set_alpha(alpha)
    return model


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_every_resolution(channels):
    """Generator gives (B, C, r, r) in [0, 1] and the critic (B,) at r = 4, 8, 16, 32."""
    model = tiny_gan(channels, level=0)
    z = torch.randn(5, 8)
    for level in range(4):
        if level:
            model.grow()
        for alpha in (0.0, 0.5, 1.0):
            model.set_alpha(alpha)
            x = model.generate(z)
            r = 4 * 2**level
            assert x.shape == (5, channels, r, r) and model.resolution == r
            assert 0 <= x.min() and x.max() <= 1
            assert model.criticize(x).shape == (5,)
    assert model.fully_grown and model.config.widths == [8, 8, 8, 4]


def test_fade_in_alpha_zero_is_the_lower_resolution():
    """At alpha=0 the generator is the previous level upsampled, the critic the previous
    level on the 2×2-averaged image."""
    model = tiny_gan(level=2, alpha=0.0)
    z, x = torch.randn(4, 8), torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        faded = model.generator(z, 2, 0.0)
        low = model.generator(z, 1, 1.0)
        torch.testing.assert_close(faded, F.interpolate(low, scale_factor=2), rtol=0, atol=0)
        torch.testing.assert_close(model.critic(x, 2, 0.0),
                                   model.critic(F.avg_pool2d(x, 2), 1, 1.0))
        assert not torch.allclose(model.generator(z, 2, 0.5), faded)


def test_equalized_layers_scale_at_run_time():
    """Weights are stored N(0, 1) and multiplied by sqrt(2 / fan_in) in the forward pass."""
    torch.manual_seed(0)
    conv, lin = EqualizedConv2d(64, 64, 3), EqualizedLinear(128, 8, gain=1.0)
    assert conv.scale == pytest.approx(math.sqrt(2 / (64 * 9)))
    assert lin.scale == pytest.approx(1 / math.sqrt(128))
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.02)
    x = torch.randn(2, 64, 5, 5)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1))
    v = torch.randn(3, 128)
    torch.testing.assert_close(lin(v), v @ (lin.weight * lin.scale).T + lin.bias)


def test_pixel_norm_makes_the_generator_ignore_the_length_of_z():
    """Pixel norm gives unit RMS per vector, so G(2z) = G(z) (DESIGN §1)."""
    v = pixel_norm(torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(v, torch.tensor([[3.0, 4.0]]) / math.sqrt(12.5))
    z = torch.randn(3, 8)
    with torch.no_grad():
        model = tiny_gan(level=1)
        torch.testing.assert_close(model.generate(2 * z), model.generate(z))
        assert not torch.allclose(model.generate(z + 0.5), model.generate(z))


def test_minibatch_std_by_hand():
    """Two samples of all 0 and all 2 have std 1 everywhere; identical samples give 0."""
    x = torch.stack([torch.zeros(3, 4, 4), torch.full((3, 4, 4), 2.0)])
    out = minibatch_std(x, group=4)  # gcd(2, 4) = 2: one group of both samples
    assert out.shape == (2, 4, 4, 4)
    torch.testing.assert_close(out[:, 3], torch.ones(2, 4, 4), atol=1e-3, rtol=0)
    assert minibatch_std(torch.ones(4, 2, 4, 4), group=4)[:, 2].abs().max() < 1e-3


@pytest.mark.parametrize("norm, expected", [(1.0, 0.0), (3.0, 10 * (3 - 1) ** 2)])
def test_gradient_penalty_of_a_linear_critic(norm, expected):
    """D(x) = <w, x> has gradient w everywhere: penalty 10 · (|w| − 1)², 0 for |w| = 1."""
    w = torch.randn(1, 2, 3, 3)
    w = norm * w / w.norm()
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    gp = gradient_penalty(critic, torch.rand(6, 2, 3, 3), torch.rand(6, 2, 3, 3))
    assert gp.item() == pytest.approx(expected, abs=1e-4)


def test_grow_limits_and_config_errors():
    """grow() stops at image_size; bad configs name the field and its range."""
    model = tiny_gan(level=3)
    with pytest.raises(ValueError, match="already at the final resolution 32"):
        model.grow()
    with pytest.raises(ValueError, match="image_size=1025 must be an integer between 8 and 1024"):
        GAN(GANConfig(image_size=1025))
    with pytest.raises(ValueError, match="channels=5 must be between 1 and 4"):
        GAN(GANConfig(channels=5))
    with pytest.raises(ValueError, match="alpha=1.5 must be between 0 and 1"):
        model.set_alpha(1.5)


def test_checkpoint_round_trip_keeps_the_growth_stage(tmp_path):
    """A half-grown GAN (level 2, alpha 0.25) survives the file export and the flat float32
    array the Tiled store keeps, and generates the same images afterwards."""
    model = tiny_gan(channels=3, level=2, alpha=0.25)
    z = torch.randn(3, 8)
    with torch.no_grad():
        want = model.generate(z)
    loaded = load_file(save_file(model, tmp_path / "gan.pt"))
    assert isinstance(loaded, GAN) and loaded.resolution == 16 and float(loaded.alpha) == 0.25
    flat, tensors = state_to_arrays(model)
    assert flat.dtype == np.float32
    rebuilt = build_model("gan", loaded.config.__dict__)
    rebuilt.load_state_dict(arrays_to_state(flat, tensors))
    with torch.no_grad():
        torch.testing.assert_close(loaded.generate(z), want)
        torch.testing.assert_close(rebuilt.generate(z), want)


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    """32 images 32×32: one bright disc of radius 4 at a random place on grey, in [0, 1]."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    images = np.full((32, 32, 32), 0.2, np.float32)
    for img, (r, c) in zip(images, rng.uniform(8, 24, size=(32, 2))):
        img[(yy - r) ** 2 + (xx - c) ** 2 <= 16] = 0.9
    return images


def test_train_gan_grows_through_every_stage(blobs):
    """One epoch per stage: 4 stages (4 → 32 px), finite losses, uint8 samples per epoch."""
    rows = []
    params = GANTrainParams(epochs_per_stage=1, batch_size=16, val_fraction=0.25, n_samples=3)
    model, history = train_gan(blobs, GANConfig(**TINY), params, on_epoch=rows.append, device="cpu")
    assert [r["resolution"] for r in history] == [4, 8, 16, 32]
    assert model.fully_grown and not model.training
    keys = ("critic_loss", "generator_loss", "gp", "wdist", "val_wdist")
    assert all(math.isfinite(r[k]) for r in history for k in keys)
    assert rows[-1]["samples"].dtype == np.uint8 and rows[-1]["samples"].shape == (3, 1, 32, 32)
    assert "samples" not in history[0]


def test_train_gan_is_seeded_and_stops(blobs):
    """Two runs stopped after the same 3 batches have identical weights; a stop inside the
    first epoch leaves an empty history."""

    def run():
        calls = iter(range(100))
        return train_gan(blobs, GANConfig(**TINY), GANTrainParams(epochs_per_stage=1, batch_size=8),
                         should_stop=lambda: next(calls) >= 2, device="cpu")

    (a, hist_a), (b, _) = run(), run()
    assert hist_a == [] and a.resolution == 4
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), name


def test_decoder_interface_for_vae_and_gan():
    """decoder_for/latent_dim_of/decode_batches treat a VAE and a GAN alike."""
    torch.manual_seed(0)
    vae = VAE(VAEConfig(image_size=32, latent_dim=6, base_channels=4, max_channels=8)).eval()
    gan = tiny_gan(level=2)
    for model, d, shape in ((vae, 6, (1, 32, 32)), (gan, 8, (1, 16, 16))):
        z = prior_latents(5, latent_dim_of(model), seed=1)
        assert latent_dim_of(model) == d and image_shape_of(model) == shape
        batches = list(decode_batches(model, z, batch_size=2))
        assert [len(b) for b in batches] == [2, 2, 1] and batches[0].dtype == np.float32
        with torch.no_grad():
            whole = decoder_for(model)(torch.from_numpy(z)).numpy()
        np.testing.assert_allclose(np.concatenate(batches), whole, atol=1e-6)
    with pytest.raises(ValueError, match="has no decoder"):
        decoder_for(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"must be \(n, 8\)"):
        next(decode_batches(gan, np.zeros((2, 3))))


def test_invert_fits_frames_independent_of_batch_size():
    """Frames made by G itself are fitted better than from the start point, restarts never fit
    worse than one start, the batch size changes nothing, and |z| = sqrt(d) (the prior's)."""
    gan = tiny_gan(level=1)
    frames = next(decode_batches(gan, prior_latents(4, 8, seed=5)))  # (4, 1, 8, 8)
    z0 = np.stack([np.random.default_rng([0, i, 0]).standard_normal(8) for i in range(4)])
    start_error = ((next(decode_batches(gan, z0)) - frames) ** 2).mean(axis=(1, 2, 3))
    z1, err1 = invert(gan, frames, steps=60, lr=0.1, restarts=1, batch_size=4)
    z1b, err1b = invert(gan, frames, steps=60, lr=0.1, restarts=1, batch_size=3)
    z, err = invert(gan, frames, steps=60, lr=0.1, restarts=3)
    assert z.shape == (4, 8) and err.shape == (4,)
    assert (err1 < start_error).all() and (err <= err1).all()
    assert np.median(err) < 0.1 * np.median(start_error)
    np.testing.assert_allclose(z1, z1b, atol=1e-4)
    np.testing.assert_allclose(err1, err1b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), math.sqrt(8), rtol=1e-5)
    assert all(p.requires_grad for p in gan.parameters())
