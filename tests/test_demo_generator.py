"""The demo's shipped generator: a small float16 file, fine-tuned by the demo's train-vae run
(issue 12, point 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models.checkpoint import file_provenance, load_file, save_file
from core.models.gan import GAN, GANConfig
from core.models.train import TrainParams, train_vae
from core.models.vae import VAE, VAEConfig
from flows.params import TrainParams as FlowTrainParams
from flows.train import fine_tune_config


def small_vae(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(image_size=32, latent_dim=4, base_channels=4)).eval()


def test_float16_file_halves_the_bytes_and_decodes_within_float16_rounding(tmp_path):
    model = small_vae()
    full = save_file(model, tmp_path / "full.pt")
    half = save_file(model, tmp_path / "half.pt", half=True, provenance={"epochs": 3, "script": "x"})
    weights = sum(p.numel() for p in model.state_dict().values())
    # 2 bytes a weight saved instead of 4 (plus the same small header)
    assert full.stat().st_size - half.stat().st_size == pytest.approx(2 * weights, rel=0.05)
    assert file_provenance(half) == {"epochs": 3, "script": "x"}
    assert file_provenance(full) == {}
    loaded = load_file(half)
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values())  # cast back on load
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model.decode(z).numpy(), loaded.decode(z).numpy()
    # pixels in [0, 1]; float16 keeps ~3 decimal digits of each weight
    assert 0 < np.abs(a - b).max() < 1e-2


def test_training_starts_from_the_given_weights():
    images = np.random.default_rng(0).random((16, 32, 32), dtype=np.float32)
    start = small_vae(seed=5)
    params = TrainParams(epochs=1, batch_size=8, lr=1e-9, seed=0, device="cpu")  # lr ~0: weights stay put
    tuned, history = train_vae(images, start.config, params, init_state=start.state_dict())
    fresh, _ = train_vae(images, start.config, params)  # seed 0's random weights
    key = "encoder.0.weight" if "encoder.0.weight" in start.state_dict() else next(iter(start.state_dict()))
    assert torch.allclose(tuned.state_dict()[key], start.state_dict()[key], atol=1e-6)
    assert not torch.allclose(fresh.state_dict()[key], start.state_dict()[key], atol=1e-3)
    assert len(history) == 1
    other = VAE(VAEConfig(image_size=32, latent_dim=8, base_channels=4))
    with pytest.raises(ValueError, match="do not fit a VAE"):
        train_vae(images, start.config, params, init_state=other.state_dict())


def test_fine_tuning_keeps_the_stored_architecture_and_refuses_what_does_not_fit():
    init = small_vae()
    shape = (10, 32, 32)
    config = fine_tune_config(init, FlowTrainParams(dataset_id="d1", init_model_id="m1", beta=2.0), shape)
    assert (config.latent_dim, config.base_channels, config.beta) == (4, 4, 2.0)  # its own, β from the run
    with pytest.raises(ValueError, match="latent_dim=8 was asked for.*has latent_dim=4"):
        fine_tune_config(init, FlowTrainParams(dataset_id="d1", init_model_id="m1", latent_dim=8), shape)
    with pytest.raises(ValueError, match="takes 1-channel 32 px images.*64 px ones"):
        fine_tune_config(init, FlowTrainParams(dataset_id="d1", init_model_id="m1"), (10, 64, 64))
    gan = GAN(GANConfig(image_size=32, latent_dim=4))
    with pytest.raises(ValueError, match="is not a VAE"):
        fine_tune_config(gan, FlowTrainParams(dataset_id="d1", init_model_id="m1"), shape)
