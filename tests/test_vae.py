"""VAE model, training loop, checkpoints (Tiled and file) and encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models.checkpoint import (
    arrays_to_state, load_file, load_model, save_file, save_model, state_to_arrays,
)
from core.models.device import pick_device
from core.maps.encode import encode_batches, encode_images
from core.models.vae import VAE, VAEConfig, vae_loss
from core.models.train import TrainParams, optimizer_step, train_vae
from core.data.results.datasets import dataset_writer, iter_images

SMALL = VAEConfig(image_size=32, latent_dim=8, base_channels=8, max_channels=32)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """scikit-learn's 8×8 digits blown up 4× to 32×32, float32 in [0, 1]: (1797, 32, 32)."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0  # (N, 8, 8), values 0..16
    return np.kron(images, np.ones((4, 4), np.float32))  # (N, 32, 32)


@pytest.fixture(scope="module")
def trained(digits):
    """A small VAE trained 6 epochs on 512 digits, with its history."""
    return train_vae(digits[:512], SMALL, TrainParams(epochs=6, batch_size=32, seed=0))


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(image_size, channels):
    """forward/encode/decode give the documented shapes, outputs in [0, 1]."""
    model = VAE(VAEConfig(image_size=image_size, channels=channels, latent_dim=6, base_channels=8))
    x = torch.rand(2, channels, image_size, image_size)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape
    assert mu.shape == logvar.shape == (2, 6)
    assert model.decode(mu).shape == x.shape
    assert 0 <= x_hat.min() and x_hat.max() <= 1
    assert len(model.encoder) == model.config.n_blocks == int(np.log2(image_size)) - 2


def test_512_depth_without_running():
    """A 512 px model has 7 stride-2 blocks, widths capped at max_channels, only float state."""
    model = VAE(VAEConfig(image_size=512))
    assert len(model.encoder) == len(model.decoder) == 7
    assert model.config.widths == [32, 64, 128, 256, 256, 256, 256]
    assert model.to_mu.in_features == 256 * 4 * 4
    assert all(t.is_floating_point() for t in model.state_dict().values())


def test_fc_hidden_shapes_and_the_studys_widths():
    """With fc_hidden the round trip keeps its shapes; Moola et al.'s VAE at 64 px is 32-64-128-256."""
    model = VAE(VAEConfig(image_size=64, latent_dim=128, fc_hidden=1024))
    assert model.config.widths == [32, 64, 128, 256]
    assert model.to_mu.in_features == 1024 and model.dec_fc[1].out_features == 256 * 4 * 4
    x = torch.rand(2, 1, 64, 64)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape and mu.shape == logvar.shape == (2, 128)


def test_fc_hidden_parameter_count_by_hand():
    """8 px, one block of 4 channels, d=2: 721 parameters without the layer, 745 with fc_hidden=3."""
    tiny = dict(image_size=8, latent_dim=2, base_channels=4, max_channels=4)
    # Down(1, 4): conv 4·1·4·4 + 4 = 68, GroupNorm 2·4 = 8; Up(4, 4): conv 4·4·3·3 + 4 = 148, norm 8;
    # to_image: 1·4·3·3 + 1 = 37. Together 269, plus the linear layers around the 4·4·4 = 64 map:
    conv = 68 + 8 + 148 + 8 + 37
    no_fc = conv + 2 * (64 * 2 + 2) + (2 * 64 + 64)  # to_mu, to_logvar, from_z
    fc3 = conv + (64 * 3 + 3) + 2 * (3 * 2 + 2) + (2 * 3 + 3) + (3 * 64 + 64)  # enc_fc, heads, from_z, dec_fc
    assert (no_fc, fc3) == (721, 745)
    for fc, expected in ((0, no_fc), (3, fc3)):
        model = VAE(VAEConfig(**tiny, fc_hidden=fc))
        assert sum(p.numel() for p in model.parameters()) == expected


def test_a_config_saved_before_fc_hidden_loads(tmp_path):
    """A model file whose config has no fc_hidden (saved before it existed) loads as one without it."""
    old = VAE(VAEConfig(image_size=8, latent_dim=2, base_channels=4)).eval()
    ckpt = torch.load(save_file(old, tmp_path / "old.pt"), weights_only=True)
    del ckpt["config"]["fc_hidden"]
    torch.save(ckpt, tmp_path / "old.pt")
    loaded = load_file(tmp_path / "old.pt")
    assert loaded.config.fc_hidden == 0
    z = torch.randn(3, 2)
    assert torch.equal(loaded.decode(z), old.decode(z))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"image_size": 7}, "image_size=7 must be an integer between 8 and 1024 .ingest"),
        ({"image_size": 1025}, "image_size=1025 must be an integer between 8 and 1024"),
        ({"image_size": 32.0}, "image_size=32.0 must be an integer"),
        ({"channels": 5}, "channels=5 must be between 1 and 4"),
        ({"latent_dim": 1}, "latent_dim=1 must be between 2 and 512"),
        ({"latent_dim": 513}, "latent_dim=513 must be between 2 and 512"),
        ({"max_channels": 16}, "max_channels=16 must be between base_channels=32"),
        ({"beta": -1.0}, "beta=-1.0 must be a finite number >= 0"),
        ({"fc_hidden": -1}, "fc_hidden=-1 must be an integer between 0 and 4096"),
    ],
)
def test_invalid_config(changes, message):
    """Bad configs are refused with the value and the allowed range."""
    with pytest.raises(ValueError, match=message):
        VAE(VAEConfig(**changes))


def test_loss_is_per_sample_and_kl_zero_at_prior():
    """KL is 0 for the prior itself, and the loss does not grow with the batch size."""
    x = torch.full((4, 1, 32, 32), 0.5)
    mu, logvar = torch.zeros(4, 8), torch.zeros(4, 8)
    total, rec, kl = vae_loss(x, x, mu, logvar, beta=1.0)
    assert kl.item() == 0
    assert rec.item() == pytest.approx(32 * 32 * np.log(2), rel=1e-5)  # BCE(0.5, 0.5) = ln 2
    x8, mu8, logvar8 = x.repeat(2, 1, 1, 1), mu.repeat(2, 1), logvar.repeat(2, 1)
    total8, _, _ = vae_loss(x8, x8, mu8, logvar8, 1.0)
    assert total8.item() == pytest.approx(total.item())


def test_loss_falls(trained):
    """On digits the last epoch's loss is < 0.7 × the first (measured 0.53-0.58 over seeds 0-4)."""
    _, history = trained
    assert [row["epoch"] for row in history] == list(range(1, 7))
    first, last = history[0], history[-1]
    assert last["loss"] < 0.7 * first["loss"]
    assert last["val_loss"] < 0.75 * first["val_loss"]  # measured 0.58-0.63
    assert set(first) == {"epoch", "epochs", "loss", "rec", "kl", "val_loss", "seconds", "lr"}
    assert all(type(first[k]) is float for k in ("loss", "rec", "kl", "val_loss", "seconds", "lr"))


def test_training_is_deterministic(digits):
    """Same seed, same data: bit-identical weights and history; another seed differs."""
    params = TrainParams(epochs=2, batch_size=32, seed=3)
    runs = [train_vae(digits[:128], SMALL, params) for _ in range(2)]
    (a, ha), (b, hb) = runs
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), name
    assert [r["loss"] for r in ha] == [r["loss"] for r in hb]
    c, _ = train_vae(digits[:128], SMALL, TrainParams(epochs=2, batch_size=32, seed=4))
    assert not torch.equal(a.to_mu.weight, c.to_mu.weight)


def test_callbacks_and_stop(digits):
    """on_epoch sees every epoch; should_stop ends the run after the current batch."""
    seen = []
    _, history = train_vae(
        digits[:64], SMALL, TrainParams(epochs=5, batch_size=32), on_epoch=seen.append,
        should_stop=lambda: len(seen) >= 2,
    )
    assert seen == history and len(history) == 2


def test_refuses_bad_images(digits):
    """NaN, wrong shapes, wrong ranges, too few images: ValueError saying what to do."""
    bad = digits[:8].copy()
    bad[5, 3, 3] = np.nan
    params = TrainParams(epochs=1)
    with pytest.raises(ValueError, match=r"1 image\(s\) contain NaN or inf \(first at index 5\)"):
        train_vae(bad, SMALL, params)
    with pytest.raises(ValueError, match=r"expects \(N, 1, 64, 64\): resize the images to 64×64"):
        train_vae(digits[:8], VAEConfig(image_size=64), params)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        train_vae(digits[:8] * 16, SMALL, params)
    with pytest.raises(ValueError, match="divide uint8 frames by 255"):
        train_vae((digits[:8] * 255).astype(np.uint8), SMALL, params)
    with pytest.raises(ValueError, match="training needs at least 2"):
        train_vae(digits[:1], SMALL, params)
    with pytest.raises(ValueError, match="epochs=0 must be between 1 and 1000"):
        train_vae(digits[:8], SMALL, TrainParams(epochs=0))


def test_optimizer_step_refuses_a_non_finite_loss_before_it_reaches_the_weights():
    """A finite loss moves the weight by one SGD step (w - lr * dL/dw, by hand); a NaN loss
    raises, naming the loss and the advice, and leaves weight and gradient untouched (the VAE's
    and the GAN's loops both step through it)."""
    w = torch.nn.Parameter(torch.tensor([2.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    optimizer_step(opt, (w**2).sum(), "lower lr")  # dL/dw = 2w = 4
    assert w.item() == pytest.approx(2.0 - 0.1 * 4.0)
    with pytest.raises(FloatingPointError, match=r"training diverged \(critic loss=nan\); lower lr and retrain"):
        optimizer_step(opt, (w * float("nan")).sum(), "lower lr and retrain", "critic loss")
    assert w.item() == pytest.approx(1.6) and w.grad.item() == pytest.approx(4.0)


def test_pick_device():
    """auto falls back to the CPU; asking for a missing GPU is an error, not a slow CPU run."""
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device='tpu' must be one of"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
            pick_device("cuda")


def test_state_arrays_round_trip():
    """Flattening and unflattening a state dict is lossless."""
    model = VAE(SMALL)
    flat, tensors = state_to_arrays(model)
    assert flat.dtype == np.float32 and flat.ndim == 1
    assert flat.size == sum(p.numel() for p in model.parameters())
    state = arrays_to_state(flat, tensors)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="the model record is damaged"):
        arrays_to_state(flat[:-1], tensors)


def test_checkpoint_round_trip_tiled(store, trained):
    """save_model/load_model through a real Tiled server: bit-identical decoder outputs."""
    model, history = trained
    model_id = save_model(store, model, metadata={"dataset": "digits", "history": history})
    meta = store.metadata("models", model_id)
    assert meta["family"] == "vae" and meta["dataset"] == "digits"
    assert meta["config"] == {**meta["config"], "image_size": 32, "latent_dim": 8}
    loaded = load_model(store, model_id)
    assert not loaded.training and isinstance(loaded, VAE)
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(loaded.decode(z), model.decode(z))
    with pytest.raises(ValueError, match="reserved by save_model"):
        save_model(store, model, metadata={"config": {}})


def test_checkpoint_round_trip_file(tmp_path, trained):
    """save_file/load_file (weights_only torch.load) give identical outputs."""
    model, _ = trained
    path = save_file(model, tmp_path / "vae.pt")
    loaded = load_file(path)
    assert loaded.config == model.config
    x = torch.rand(4, 1, 32, 32)
    with torch.inference_mode():
        assert torch.equal(loaded(x)[0], model(x)[0])


def test_encode_matches_model(trained, digits):
    """encode_images equals model.encode; batch size and (N, H, W) vs (N, 1, H, W) don't matter."""
    model, _ = trained
    images = digits[:300]
    with torch.inference_mode():
        mu_ref, logvar_ref = model.encode(torch.from_numpy(images[:, None]))
    mu, logvar = encode_images(model, images)
    assert mu.dtype == logvar.dtype == np.float32 and mu.shape == (300, 8)
    np.testing.assert_allclose(mu, mu_ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logvar, logvar_ref.numpy(), rtol=1e-5, atol=1e-5)
    mu7, logvar7 = encode_images(model, images[:, None], batch_size=7)
    np.testing.assert_allclose(mu7, mu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logvar7, logvar, rtol=1e-5, atol=1e-5)


def test_encode_batches_from_store(store, trained, digits):
    """A stored dataset encodes batch by batch, with progress, to the same latents."""
    import pandas as pd

    model, _ = trained
    writer = dataset_writer(store, metadata={"source": "digits"})
    writer.append(digits[:100])
    dataset_id = writer.finish(pd.DataFrame({"index": range(100)}))
    progress = []
    mu, _ = encode_batches(
        model, iter_images(store, dataset_id, 32), total=100,
        on_batch=lambda done, total: progress.append((done, total)),
    )
    assert progress == [(32, 100), (64, 100), (96, 100), (100, 100)]
    np.testing.assert_allclose(mu, encode_images(model, digits[:100])[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"expects \(N, 1, 32, 32\)"):
        encode_images(model, np.zeros((2, 64, 64), np.float32))
