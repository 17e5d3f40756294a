"""Flow matching and latent diffusion on toy distributions with known answers."""

import numpy as np
import pytest
import torch

from core.models.checkpoint import load_file, save_file
from core.models.flow_matching import FlowMatching, FlowMatchingConfig, fit_latent_model
from core.models.latent_diffusion import (LatentDiffusion, LatentDiffusionConfig, ddim_sample,
                                          ddpm_alpha_bar, q_sample)

QUERIES = np.array([[-0.6, 0.5], [0.0, 0.0], [0.7, -0.4]])


def toy(n=2000, seed=0):
    """u uniform on [-1, 1]², z = (2 u_0, u_1 − u_0) + N(0, 0.05²): E[z | u] known exactly."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, (n, 2))
    z = np.stack([2 * u[:, 0], u[:, 1] - u[:, 0]], 1) + rng.normal(0, 0.05, (n, 2))
    return z.astype(np.float32), u.astype(np.float32)


def conditional_mean(u):
    return np.stack([2 * u[:, 0], u[:, 1] - u[:, 0]], 1)


@pytest.fixture(scope="module")
def flow():
    torch.set_num_threads(1)
    z, u = toy()
    model = FlowMatching(FlowMatchingConfig(latent_dim=2, width=64, n_blocks=2))
    fit_latent_model(model, z, u, epochs=40, batch_size=256, lr=3e-3, device="cpu")
    return model


def test_flow_matching_reproduces_conditional_means(flow):
    """Samples at three query points average to E[z | u] (range of z: ±2)."""
    z = flow.sample(QUERIES, 200, seed=1, guidance=1.0, steps=20)  # (3, 200, 2)
    np.testing.assert_allclose(z.mean(1), conditional_mean(QUERIES), atol=0.15)
    assert z.std(1).max() < 0.3  # conditioned: much narrower than the marginal (std ≈ 1.2)


def test_guidance_zero_is_the_unconditional_model(flow):
    """s = 0 gives exactly the unconditional draws, whatever the coordinate."""
    uncond = flow.sample(None, 50, seed=4)
    for q in QUERIES:
        np.testing.assert_array_equal(flow.sample(q[None], 50, seed=4, guidance=0.0), uncond)
    # and the unconditional model is the marginal: its spread is wide, unlike a conditional one
    assert uncond.std(1).min() > 0.6


def test_flow_model_file_round_trip(flow, tmp_path):
    """Stored like every model: config + float state, read back with weights_only."""
    back = load_file(save_file(flow, tmp_path / "fm.pt"))
    np.testing.assert_array_equal(back.sample(QUERIES, 3, seed=2), flow.sample(QUERIES, 3, seed=2))


def test_forward_process_on_a_gaussian():
    """x_0 ~ N(3, 0.5²): x_t has mean √ᾱ·3 and variance ᾱ·0.25 + 1 − ᾱ; x_T is nearly N(0, 1)."""
    ab = ddpm_alpha_bar(1000, 1e-4, 0.02)
    g = torch.Generator().manual_seed(0)
    x0 = 3 + 0.5 * torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    for t in (0, 250, 999):
        xt = q_sample(x0, torch.full((len(x0),), t), torch.randn(x0.shape, generator=g, dtype=torch.float64), ab)
        a = ab[t].item()
        assert xt.mean().item() == pytest.approx(3 * a**0.5, abs=0.01)
        assert xt.var().item() == pytest.approx(0.25 * a + 1 - a, rel=0.02)
    assert ab[-1].item() < 1e-4  # the linear DDPM schedule destroys the signal by T


def test_backward_process_recovers_a_gaussian():
    """DDIM with the exact ε of N(3, 0.5²) data maps N(0, 1) back: exactly in 1000 steps, in 20
    with the mean kept and the spread narrowed (first-order steps: 0.43 instead of 0.5)."""
    ab = ddpm_alpha_bar(1000, 1e-4, 0.02)
    m, s2 = 3.0, 0.25

    def exact_eps(x, t):  # E[ε | x_t] for Gaussian data
        a = ab[t][:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * m) / (a * s2 + 1 - a)

    xT = torch.randn(50_000, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x0 = ddim_sample(exact_eps, xT, ab, steps=1000)
    assert x0.mean().item() == pytest.approx(m, abs=0.01)
    assert x0.std().item() == pytest.approx(s2**0.5, rel=0.01)
    few = ddim_sample(exact_eps, xT, ab, steps=20)
    assert few.mean().item() == pytest.approx(m, abs=0.01)
    assert 0.40 < few.std().item() < 0.46


def test_latent_diffusion_learns_conditional_means():
    """A small conditioned DDPM, sampled in 20 DDIM steps, lands near E[z | u]; unconditional ignores u."""
    torch.set_num_threads(1)
    z, u = toy()
    model = LatentDiffusion(LatentDiffusionConfig(latent_dim=2, width=64, n_blocks=2))
    fit_latent_model(model, z, u, epochs=40, batch_size=256, lr=3e-3, device="cpu")
    out = model.sample(QUERIES, 200, seed=1, steps=20)
    np.testing.assert_allclose(out.mean(1), conditional_mean(QUERIES), atol=0.15)
    plain = LatentDiffusion(LatentDiffusionConfig(latent_dim=2, width=8, n_blocks=1, conditional=False))
    np.testing.assert_array_equal(plain.sample(QUERIES[:1], 5, seed=0), plain.sample(QUERIES[1:2], 5, seed=0))


def test_importing_core_makes_openmp_threads_sleep_not_spin():
    """core sets OMP_WAIT_POLICY=PASSIVE before torch loads (a spinning 2-thread step took 2–3 s
    on 2 shared cores, 0.2 s passive), and keeps a policy the user set."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    read = [sys.executable, "-c", "import os, core; print(os.environ['OMP_WAIT_POLICY'])"]
    assert subprocess.run(read, env=env, capture_output=True, text=True, check=True).stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    assert subprocess.run(read, env=env, capture_output=True, text=True, check=True).stdout.strip() == "ACTIVE"
