"""Parameters from two-time maps: normalisations, CORAL, training on simulated maps, adaptation."""

import numpy as np
import pytest
import torch

from core.models.checkpoint import load_file, save_file
from core.models.xpcs_regressor import XPCSConfig, denormalise, normalise, normalise_map, prepare_maps
from core.xpcs.adapt import ParameterAdapter, coral_loss, r2_scores
from tests.conftest import shared_data

RANGES = {"D": (1e-2, 1.0), "c": (0.0, 0.5)}


def decay_maps(n: int, side: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Hand-made maps with a known answer: a bulk decay exp(-3 D tau) (equilibrium) plus a share c
    of a decay that slows with age (exp(-0.3 tau / (1 + age / 5)), the drift), through the
    Siegert relation with contrast 0.2. D log-uniform on [0.01, 1] per frame, c uniform on [0, 0.5]."""
    D, c = 10 ** rng.uniform(-2, 0, n), rng.uniform(0, 0.5, n)
    t = np.arange(side)
    tau, age = np.abs(t[:, None] - t[None]), (t[:, None] + t[None]) / 2
    ageing = np.exp(-0.3 * tau / (1 + age / 5))
    maps = [1 + 0.2 * ((1 - ci) * np.exp(-3 * di * tau) + ci * ageing) ** 2 for di, ci in zip(D, c)]
    return maps, np.stack([D, c], axis=1)


def measured(maps: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A controlled domain shift: lower optical contrast (0.6 ×) and speckle noise (sd 0.01)."""
    return [1 + 0.6 * (m - 1) + rng.normal(0, 0.01, m.shape) for m in maps]


def test_normalise_round_trip_and_hand_values():
    """D on log10, c min-max: 0.1 is halfway between 0.01 and 1; 0.125 is a quarter of 0.5."""
    cfg = XPCSConfig.from_ranges(RANGES)
    values = np.array([[0.1, 0.125], [0.01, 0.5]])
    assert np.allclose(normalise(values, cfg), [[0.5, 0.25], [0.0, 1.0]])
    assert np.allclose(denormalise(normalise(values, cfg), cfg), values)
    assert np.allclose(denormalise(np.array([[-1.0, 2.0]]), cfg), [[0.01, 0.5]])  # clipped to ranges
    with pytest.raises(ValueError, match="must be > 0"):
        normalise(np.array([[0.0, 0.1]]), cfg)
    with pytest.raises(ValueError, match="must be > 0"):
        XPCSConfig.from_ranges({"D": (0.0, 1.0)})


def test_map_normalisation_removes_contrast_and_any_size_goes_in():
    """(C - 1) / beta of a Siegert map is |f|^2 whatever beta; 50 and 350 px maps give one shape."""
    lag = np.abs(np.subtract.outer(np.arange(50), np.arange(50)))
    f2 = np.exp(-2 * 0.1 * lag)
    a, b = normalise_map(1 + 0.3 * f2), normalise_map(1 + 0.05 * f2)
    assert np.allclose(a, b) and np.allclose(normalise_map(0.3 * f2), a)  # also when stored as C - 1
    assert np.allclose(a[1, 0], 1.0) and np.allclose(a[0, 0], 1.0)  # diagonal from its neighbours
    assert np.allclose(a[0, 10] * np.exp(-2 * 0.1), f2[0, 10])  # f2 / f2(lag 1)
    x = prepare_maps([1 + 0.3 * f2, np.ones((350, 350)) + 0.1], side=32)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    with pytest.raises(ValueError, match="map 0: .*contrast at lag 1"):
        prepare_maps([np.ones((10, 10))], side=32)


@pytest.mark.parametrize("name", ["bnl_test_g2.npy", "yolk_plasma_q0p022.npy"])
def test_shared_measured_maps_go_in(name):
    """The measured maps (350 px noisy; 50 px with an overwritten diagonal) normalise to unit contrast."""
    C = np.load(shared_data("xpcs_two_time", name))
    x = prepare_maps([C], side=32)
    assert x.shape == (1, 3, 32, 32) and torch.isfinite(x).all()
    assert np.median(np.diagonal(normalise_map(C), 1)) == pytest.approx(1.0)


def test_coral_loss_by_hand():
    """Same batch: 0. Batches differing by a shift s in every feature: only the mean term, s² d / 4d."""
    fs = torch.randn(40, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert coral_loss(fs, fs).item() == 0.0
    assert coral_loss(fs, fs + 2.0).item() == pytest.approx(4.0 / 4, rel=1e-12)
    # 2 fs - mean keeps the mean and scales the covariance by 4: ||4 C - C||_F^2 / (4 d^2)
    C = torch.cov(fs.T)
    assert coral_loss(fs, 2 * fs - fs.mean(0)).item() == pytest.approx(
        float((3 * C).pow(2).sum()) / (4 * 5**2), rel=1e-9)


def test_r2_of_truth_mean_and_noise():
    """R² is 1 for the truth and 0 for the mean; a constant column gives NaN, not a division error."""
    y = np.linspace(0, 1, 101)[:, None]
    assert r2_scores(y, y)[0] == 1.0
    assert r2_scores(y, np.full_like(y, y.mean()))[0] == pytest.approx(0.0)
    assert np.isnan(r2_scores(np.ones((5, 1)), np.zeros((5, 1)))[0])


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    sim_maps, sim_params = decay_maps(300, 32, rng)
    exp_maps, exp_params = decay_maps(100, 32, rng)
    exp_maps = measured(exp_maps, rng)
    adapter = ParameterAdapter(ranges=RANGES, side=32, n_members=2, base_channels=8, feature_dim=32,
                               hidden=32, epochs=15, adapt_epochs=5, surrogate_epochs=200, batch_size=32,
                               device="cpu")
    rows = []
    return adapter.fit(sim_maps, sim_params, exp_maps, on_epoch=rows.append), rows, exp_maps, exp_params


def test_trained_on_simulated_maps_beats_the_mean(fitted):
    """Held-out simulated R² (log10 D, c) well above 0, what predicting the mean scores."""
    adapter, rows, _, _ = fitted
    r2 = adapter.metrics_["r2_vanilla"]
    assert r2["D"] > 0.7 and r2["c"] > 0.3, r2
    assert adapter.metrics_["surrogate_val_mae"] < 0.05  # measure in [0, 1]
    assert [r["phase"] for r in rows][-1] == "adapt" and rows[-1]["fraction"] == pytest.approx(1.0)


def test_adaptation_lowers_the_error_on_shifted_maps(fitted):
    """On maps through the domain shift the adapted ensemble is closer to the truth than the vanilla
    one, and CORAL between the domains' features has fallen."""
    adapter, _, exp_maps, exp_params = fitted
    truth = normalise(exp_params, adapter.config_)
    errors = {}
    for adapted in (False, True):
        mean, sd = adapter.predict(exp_maps, adapted=adapted)
        assert mean.shape == sd.shape == (100, 2) and (sd > 0).any()
        errors[adapted] = np.abs(normalise(mean, adapter.config_) - truth).mean(0)  # per parameter
    assert errors[True].mean() < errors[False].mean(), errors
    assert adapter.metrics_["coral_adapted"] < adapter.metrics_["coral_vanilla"]
    before, after = adapter.features(exp_maps, adapted=False), adapter.features(exp_maps)
    assert before.shape == after.shape == (100, 32) and not np.allclose(before, after)


def test_stored_model_predicts_the_same(fitted, tmp_path):
    """A model file (torch.load weights_only) rebuilds the ensemble, surrogate and normalisation."""
    adapter, _, exp_maps, _ = fitted
    loaded = ParameterAdapter.from_model(load_file(save_file(adapter.model_, tmp_path / "m.pt")), device="cpu")
    assert np.allclose(loaded.predict(exp_maps[:5])[0], adapter.predict(exp_maps[:5])[0])
    with pytest.raises(ValueError, match="vanilla members"):
        loaded.predict(exp_maps[:5], adapted=False)


def test_per_map_finetuning_moves_towards_the_measure(fitted):
    """Fine-tuning the head on one map's measure brings the surrogate of its prediction closer."""
    adapter, _, exp_maps, _ = fitted
    maps, target = exp_maps[:4], np.full(4, 0.6, dtype=np.float32)
    tuned = ParameterAdapter.from_model(adapter.model_, device="cpu")
    tuned.finetune_steps, tuned.finetune_lr = 30, 1e-2
    gap = {}
    for name, a in (("plain", adapter), ("tuned", tuned)):
        p = torch.from_numpy(normalise(a.predict(maps, measures=target)[0], adapter.config_)).float()
        gap[name] = float((adapter.model_.surrogate(p) - torch.from_numpy(target)).abs().mean())
    assert gap["tuned"] < gap["plain"], gap


def test_stop_keeps_the_members_trained():
    """should_stop during the first member: one member is kept (its epochs done), and it predicts."""
    maps, params = decay_maps(24, 16, np.random.default_rng(2))
    rows = []
    adapter = ParameterAdapter(ranges=RANGES, side=16, n_members=3, base_channels=4, feature_dim=8, hidden=8,
                               epochs=5, surrogate_epochs=10, batch_size=8, device="cpu")
    adapter.fit(maps, params, maps, on_epoch=rows.append, should_stop=lambda: len(rows) > 2)
    assert adapter.stopped_ and len(adapter.model_.members) == adapter.model_.config.n_members == 1
    assert [r["phase"] for r in rows] == ["surrogate", "train", "train"]
    assert adapter.predict(maps[:2])[0].shape == (2, 2)


def test_refusals_say_what_to_do():
    """Unfitted, missing ranges and mismatched parameters are one-line errors."""
    maps, params = decay_maps(4, 16, np.random.default_rng(1))
    with pytest.raises(ValueError, match="call fit first"):
        ParameterAdapter(ranges=RANGES).predict(maps)
    with pytest.raises(ValueError, match="ranges=None"):
        ParameterAdapter().fit(maps, params)
    with pytest.raises(ValueError, match=r"must be \(4, 2\)"):
        ParameterAdapter(ranges=RANGES).fit(maps, params[:, :1])
    with pytest.raises(ValueError, match="epochs=0 must be between 1 and"):
        ParameterAdapter(ranges=RANGES, epochs=0).fit(maps, params)
