"""γ calibration: the suggestion rule by hand, real-frame bands, and a sweep on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from core.variations.calibration import (adjacent_latent_distance, calibrate_gamma, explain_choice, latent_gamma,
                                         real_bands, suggest_gamma, upper_bound_gamma)
from core.models.generator import decode_batches, prior_latents
from core.models.vae import VAE, VAEConfig

D = 6


def band(metric: str, q10: float, median: float, q90: float) -> dict:
    return {"metric": metric, "mean": median, "median": median, "q10": q10, "q90": q90}


def test_suggest_gamma_by_hand():
    """Bands iou [0.6, 0.8] (median 0.7, width 0.2), entropy [0.05, 0.15] (0.1, width 0.1).
    Distance = |median − band median| / width, summed over the two metrics:
    γ=0.5: iou 0.95, entropy 0.02: both outside, 0.25/0.2 + 0.08/0.1 = 2.05.
    γ=1.0: iou 0.75, entropy 0.12: both inside, 0.25 + 0.2 = 0.45.
    γ=1.5: iou 0.65, entropy 0.10: both inside, 0.25 + 0 = 0.25 -> chosen.
    γ=2.0: iou 0.40, entropy 0.30: both outside, 1.5 + 2.0 = 3.5."""
    medians = {0.5: (0.95, 0.02), 1.0: (0.75, 0.12), 1.5: (0.65, 0.10), 2.0: (0.40, 0.30)}
    sweep = pd.DataFrame([
        {"gamma": g, **band(m, math.nan, v, math.nan)}
        for g, vals in medians.items() for m, v in zip(("iou", "entropy_diff"), vals)
    ])
    bands = pd.DataFrame([band("iou", 0.6, 0.7, 0.8), band("entropy_diff", 0.05, 0.1, 0.15),
                          band("area_diff", math.nan, math.nan, math.nan)])  # unusable: ignored
    gamma, scores = suggest_gamma(sweep, bands)
    assert gamma == 1.5
    assert scores["outside"].tolist() == [2, 0, 0, 2]
    assert scores["distance"].tolist() == pytest.approx([2.05, 0.45, 0.25, 3.5])
    assert suggest_gamma(sweep, bands.iloc[2:])[0] is None


def entropy_sweep(means: dict[float, float], medians: dict[float, float]) -> pd.DataFrame:
    return pd.DataFrame([{"gamma": g, "metric": "entropy_diff", "mean": means[g], "median": medians[g],
                          "q10": 0.0, "q90": 1.0, "max": 1.0} for g in means])


def test_upper_bound_rule_by_hand():
    """Mean generated |ΔH| 0.10, 0.20, 0.26, 0.35 bits at γ = 0.5, 1, 1.5, 2 against the largest
    real |ΔH| (the upper bound): 0.26 is reached at γ = 1.5 (≥ counts), 0.3 at 2, 0.4 never.
    The medians (0.30 already at γ = 1) are not the rule's statistic."""
    sweep = entropy_sweep({0.5: 0.10, 1.0: 0.20, 1.5: 0.26, 2.0: 0.35}, {0.5: 0.1, 1.0: 0.30, 1.5: 0.4, 2.0: 0.5})
    bands = pd.DataFrame([{**band("entropy_diff", 0.02, 0.08, 0.2), "max": 0.26},
                          {**band("iou", 0.7, 0.8, 0.9), "max": 0.95}])
    assert upper_bound_gamma(sweep, bands) == (1.5, 0.26)
    assert upper_bound_gamma(sweep, bands.assign(max=[0.3, 1.0])) == (2.0, 0.3)
    assert upper_bound_gamma(sweep, bands.assign(max=[0.4, 1.0])) == (None, 0.4)
    assert upper_bound_gamma(sweep, bands.drop(columns="max")) == (None, None)  # stored before the bound


def test_the_suggestion_says_which_rule_and_why():
    """The method's γ when the sweep reaches the bound, the band's otherwise, none without real frames."""
    sweep = entropy_sweep({0.5: 0.10, 1.0: 0.20, 1.5: 0.26}, {0.5: 0.1, 1.0: 0.2, 1.5: 0.26})
    gamma, reason = explain_choice(0.5, 1.5, 0.26, sweep, adjacent=0.1, from_latents=0.98)
    assert gamma == 1.5 and reason.startswith("γ = 1.5 by the method's rule") and "0.26 bits" in reason
    assert "median-in-band rule gives γ = 0.5" in reason and "γ ≈ 0.98" in reason and reason.endswith(".")
    gamma, reason = explain_choice(0.5, None, 0.4, sweep)
    assert gamma == 0.5 and reason.startswith("γ = 0.5 by the median-in-band rule: no γ up to 1.5 reaches")
    assert explain_choice(None, None, None, sweep.iloc[:0])[0] is None


def test_adjacent_latent_distance_by_hand():
    """Steps (3, 4, 0, 0) and (0, 0, 0, 2): ‖Δz‖ 5 and 2, mean 3.5, over d = 4: 0.875 per dimension,
    the expected ‖ε‖/d of γ = √12 · 0.875."""
    z = np.array([[0, 0, 0, 0], [3, 4, 0, 0], [3, 4, 0, 2]], float)
    assert adjacent_latent_distance(z) == pytest.approx(0.875)
    assert latent_gamma(0.875, 4) == pytest.approx(math.sqrt(12) * 0.875)
    with pytest.raises(ValueError, match="must be \(T, d\) with T >= 2"):
        adjacent_latent_distance(z[:1])


def test_a_walk_of_uniform_steps_gives_back_its_gamma():
    """Frames whose encodings step by ε ~ U[−0.7, 0.7]^200: the latent check reads γ ≈ 0.7."""
    steps = np.random.default_rng(0).uniform(-0.7, 0.7, size=(2000, 200))
    z = np.cumsum(steps, axis=0)
    assert latent_gamma(adjacent_latent_distance(z), 200) == pytest.approx(0.7, rel=0.01)


def test_real_bands_of_repeated_and_moving_frames():
    """Identical consecutive frames: every difference 0 and IoU 1. A square stepping 2 px
    per frame: IoU 8·10/(12·10) = 2/3 for every pair."""
    still = np.zeros((4, 32, 32), np.float32)
    still[:, 10:20, 10:20] = 1.0
    b = real_bands(still).set_index("metric")
    assert b.loc["iou", "median"] == 1.0 and b.loc["entropy_diff", "q90"] == 0.0
    assert (b["n_pairs"] == 3).all()
    moving = np.zeros((4, 32, 32), np.float32)
    for t in range(4):
        moving[t, 10:20, 5 + 2 * t : 15 + 2 * t] = 1.0
    b = real_bands(moving).set_index("metric")
    assert b.loc["iou", "q10"] == b.loc["iou", "q90"] == pytest.approx(2 / 3)
    assert b.loc["intensity_dev", "median"] == pytest.approx(0.0)


@pytest.fixture(scope="module")
def vae() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(image_size=32, latent_dim=D, base_channels=4, max_channels=8)).eval()


def test_sweep_on_a_tiny_model(vae):
    """Rows per γ and metric, ordered quantiles, distance linear in γ (same draws, scaled),
    bands from 'real' frames along a latent path, and a suggestion from the sweep."""
    path = prior_latents(1, D, seed=3) + np.linspace(0, 1, 9)[:, None] * 0.3  # (9, d)
    real = np.concatenate(list(decode_batches(vae, path.astype(np.float32))))  # (9, 1, 32, 32)
    gammas = (0.5, 1.0, 2.0)
    progress = []
    cal = calibrate_gamma(vae, prior_latents(2, D, seed=1), gammas=gammas, n_per_reference=8,
                          real_images=real[:, 0], real_latents=path, on_progress=lambda d, t: progress.append((d, t)))
    assert cal.status == "completed" and progress[-1] == (48, 48)
    assert len(cal.sweep) == 3 * 4 and set(cal.sweep["gamma"]) == set(gammas)
    assert (cal.sweep["q10"] <= cal.sweep["median"]).all()
    assert (cal.sweep["median"] <= cal.sweep["q90"]).all()
    dist = cal.distance.set_index("gamma")["distance_per_dim"]
    assert dist[2.0] == pytest.approx(2 * dist[1.0]) and dist[1.0] == pytest.approx(2 * dist[0.5])
    assert cal.distance["expected_distance_per_dim"].tolist() == pytest.approx(
        [g / math.sqrt(3 * D) for g in gammas])
    assert (cal.bands["n_pairs"] == 8).all()
    assert cal.band_gamma == suggest_gamma(cal.sweep, cal.bands)[0]
    assert (cal.bound_gamma, cal.entropy_bound) == upper_bound_gamma(cal.sweep, cal.bands)
    assert cal.suggested_gamma == (cal.bound_gamma if cal.bound_gamma is not None else cal.band_gamma)
    assert cal.suggested_gamma in gammas and len(cal.scores) == 3 and cal.reason.startswith(f"γ = {cal.suggested_gamma:g}")
    # the path steps 0.3/8 per component: ‖Δz‖/d = 0.0375/√d, γ = 0.0375·√3
    assert cal.adjacent_distance_per_dim == pytest.approx(0.0375 / math.sqrt(D))
    assert cal.latent_gamma == pytest.approx(0.0375 * math.sqrt(3)) and "apart per dimension" in cal.reason


def test_sweep_stops_and_checks_inputs(vae):
    """A stop returns only finished γ; wrong-sized real frames and bad γ are refused."""
    calls = iter(range(100))
    cal = calibrate_gamma(vae, prior_latents(1, D), gammas=(0.5, 1.0), n_per_reference=4,
                          batch_size=4, should_stop=lambda: next(calls) >= 1)
    assert cal.status == "stopped" and cal.sweep["gamma"].unique().tolist() == [0.5]
    assert cal.suggested_gamma is None and cal.bands.empty
    with pytest.raises(ValueError, match=r"must be at the decoder's output size \(T, 1, 32, 32\)"):
        calibrate_gamma(vae, prior_latents(1, D), real_images=np.zeros((3, 16, 16)))
    with pytest.raises(ValueError, match="gammas=.* must be a non-empty list of numbers > 0"):
        calibrate_gamma(vae, prior_latents(1, D), gammas=(0.0, 1.0))
