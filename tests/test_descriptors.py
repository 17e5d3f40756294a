"""Foreground, metrics and descriptors, with numbers checked by hand and on real frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.variations.descriptors import (
    DESCRIPTORS, Variation, area_diff, compare, describe, descriptor_unit, foreground,
    intensity_dev, iou, principal_axis_ratio, sample_features, shannon_entropy,
)
from tests.conftest import shared_data

YY, XX = np.mgrid[:64, :64]


def disc(r0: float, c0: float, radius: float) -> np.ndarray:
    return (YY - r0) ** 2 + (XX - c0) ** 2 <= radius**2


def test_foreground_is_exactly_a_bright_or_dark_disc():
    """A disc on a flat background is its own foreground, bright or dark, with no halo:
    area ≈ πr²/N."""
    mask = disc(20, 30, 10)
    bright = mask.astype(np.float32)
    dark = np.where(mask, 0.0, 0.5).astype(np.float32)
    fg = foreground(np.stack([bright, dark]))
    assert (fg[0] == mask).all() and (fg[1] == mask).all()
    assert fg[0].mean() == pytest.approx(math.pi * 10**2 / 64**2, rel=0.02)


def test_foreground_ignores_noise_and_gradients():
    """Gaussian noise (σ = 0.02) on a slanted background gives almost no 4σ pixels
    (≈ 6e-5 expected), while a faint disc 10σ above it is found whole."""
    rng = np.random.default_rng(0)
    background = 0.3 + 0.3 * XX / 64  # a 0.3-wide illumination gradient
    noisy = background + 0.02 * rng.standard_normal((4, 64, 64))
    assert foreground(noisy).mean() < 1e-3
    with_disc = noisy[0] + 0.2 * disc(32, 32, 6)
    fg = foreground(with_disc)
    assert fg[disc(32, 32, 6)].all() and fg[~disc(32, 32, 8)].mean() < 1e-3


@pytest.mark.parametrize(
    "image, bits",
    [
        (np.zeros((8, 8)), 0.0),
        (np.repeat([0.0, 1.0], 32).reshape(8, 8), 1.0),  # two levels, equal halves
        (np.repeat([0.0, 0.3, 0.6, 1.0], 16).reshape(8, 8), 2.0),  # four levels
        (np.arange(256).reshape(16, 16) / 255, 8.0),  # every bin once: the maximum
    ],
)
def test_shannon_entropy_in_bits(image, bits):
    """Entropy of the 256-bin histogram, in bits."""
    assert shannon_entropy(image[None])[0] == pytest.approx(bits)


def test_pairwise_metrics_by_hand():
    """Two 10×10 squares shifted by 5 px: IoU 50/150; area and intensity differences."""
    ref_fg = np.zeros((32, 32), bool)
    ref_fg[5:15, 5:15] = True
    fg = np.zeros((1, 32, 32), bool)
    fg[0, 5:15, 10:20] = True
    ref = np.full((1, 32, 32), 0.5, np.float32)
    x = np.full((1, 1, 32, 32), 0.55, np.float32)
    assert iou(ref, ref_fg, x, fg)[0] == pytest.approx(1 / 3)
    assert iou(ref, ref_fg, x, np.zeros_like(fg))[0] == 0.0
    assert iou(ref, np.zeros_like(ref_fg), x, np.zeros_like(fg))[0] == 1.0  # nothing vs nothing
    assert area_diff(ref, ref_fg, x, fg)[0] == 0.0  # same area, moved
    assert area_diff(ref, ref_fg, x, np.zeros_like(fg))[0] == pytest.approx(100 / 1024)
    assert intensity_dev(ref, ref_fg, x, fg)[0] == pytest.approx(0.1)


def test_compare_two_discs():
    """compare() gives one row per sample: the same disc scores 0/1, a moved one loses IoU."""
    ref = disc(20, 20, 6).astype(np.float32)[None]
    samples = np.stack([ref, disc(20, 26, 6).astype(np.float32)[None]])
    table = compare(ref, samples)
    assert list(table.columns) == ["entropy_diff", "area_diff", "iou", "intensity_dev"]
    assert table.loc[0].tolist() == [0.0, 0.0, 1.0, 0.0]
    a, b = disc(20, 20, 6), disc(20, 26, 6)
    assert table.loc[1, "iou"] == pytest.approx((a & b).sum() / (a | b).sum())  # ≈ 0.25
    assert table.loc[1, "intensity_dev"] == pytest.approx(0)


@pytest.mark.parametrize("rotate", [False, True])
def test_anisotropy_of_an_ellipse(rotate):
    """Semi-axes 20 and 10 give a principal-axis ratio of 2 at any orientation; a disc 1."""
    u, v = YY - 32.0, XX - 32.0
    if rotate:
        u, v = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)
    ellipse = (u / 20) ** 2 + (v / 10) ** 2 <= 1
    assert principal_axis_ratio(ellipse) == pytest.approx(2.0, rel=0.03)
    assert principal_axis_ratio(disc(32, 32, 15)) == pytest.approx(1.0, abs=0.01)
    assert math.isinf(principal_axis_ratio(YY == XX))  # a line
    assert math.isnan(principal_axis_ratio(np.zeros((4, 4), bool)))


def test_sample_features_by_hand():
    """Per channel: the mean, and the IQR of the pixel intensities (0 … 15 / 15: q25 = 3.75/15,
    q75 = 11.25/15, so IQR = 0.5); a constant channel has IQR 0."""
    ramp = (np.arange(16, dtype=np.float32) / 15).reshape(4, 4)
    images = np.stack([np.stack([ramp, np.full((4, 4), 0.25, np.float32)])])  # (1, 2, 4, 4)
    feats = sample_features(images)
    assert feats.loc[0, "mean_c0"] == pytest.approx(0.5) and feats.loc[0, "mean_c1"] == 0.25
    assert feats.loc[0, "iqr_c0"] == pytest.approx(0.5) and feats.loc[0, "iqr_c1"] == 0.0


def _variation(images: np.ndarray, n_drawn: int) -> Variation:
    """A variation whose first image is the reference and the rest the kept samples."""
    feats = sample_features(images)
    kept = pd.concat([compare(images[0], images[1:]), feats.iloc[1:].reset_index(drop=True)], axis=1)
    kept = kept.assign(magnitude=np.arange(1, len(images)))
    return Variation(reference=images[0], trace=images.mean(axis=0), kept=kept,
                     reference_row=feats.iloc[0].to_dict(), n_drawn=n_drawn)


def test_reference_level_descriptors_of_a_moving_particle():
    """A disc stepping right by 4 px five times, half of the drawn samples kept: kept fraction
    0.5, metric means by hand; equal discs keep every member's IQR, so its variance is 0."""
    v = _variation(np.stack([disc(32, 12 + 4 * k, 4).astype(np.float32)[None] for k in range(6)]), 10)
    d = describe(v, list(DESCRIPTORS))
    assert d["kept_fraction"] == 0.5
    a = disc(32, 12, 4)
    ious = [(a & disc(32, 12 + 4 * k, 4)).sum() / (a | disc(32, 12 + 4 * k, 4)).sum()
            for k in range(1, 6)]  # 19/79, 1/97 (the discs touch at one pixel), then 0
    assert d["iou_mean"] == pytest.approx(np.mean(ious))
    assert d["intensity_dev_mean"] == pytest.approx(0.0, abs=1e-6)
    assert d["channel_iqr_var_0"] == pytest.approx(0.0)
    assert not {"tortuosity", "anisotropy", "trace_area"} & set(d)  # per trace now


def test_channel_iqr_variance_by_hand():
    """Two channels on 4×4 images: channel 0 is a two-level image whose high level h varies
    (members h = 0.2, 0.4, 0.6: half the pixels at h, half at 0, so IQR = h); channel 1 stays
    constant (IQR 0). The descriptor is the population variance of the IQRs: var(0.2, 0.4, 0.6)
    = 0.08/3 for channel 0 and 0 for channel 1, in (normalised intensity)²."""
    half = np.repeat([0.0, 1.0], 8).reshape(4, 4).astype(np.float32)
    images = np.stack([np.stack([h * half, np.full((4, 4), 0.5, np.float32)]) for h in (0.2, 0.4, 0.6)])
    got = DESCRIPTORS["channel_iqr"](_variation(images, 2))
    assert got == {"channel_iqr_var_0": pytest.approx(0.08 / 3), "channel_iqr_var_1": 0.0}
    assert descriptor_unit("channel_iqr_var_0") == "(normalised intensity)²"


def test_a_new_descriptor_is_one_function_and_one_line(monkeypatch):
    """Registering a function makes describe() report it; unknown names are refused."""
    monkeypatch.setitem(DESCRIPTORS, "n_kept", lambda v: {"n_kept": float(len(v.kept))})
    v = _variation(np.stack([disc(32, c, 4).astype(np.float32)[None] for c in (32, 36, 40)]), 2)
    assert describe(v, ["n_kept"]) == {"n_kept": 2.0}
    with pytest.raises(ValueError, match=r"descriptors \['nope'\] are unknown"):
        describe(v, ["nope"])


def test_foreground_on_real_colloid_frames():
    """On bright-field colloid frames the foreground is the few particles (< 10 % of pixels,
    unlike Otsu's 25–56 %), and IoU between frames falls as the lag grows."""
    frames = np.load(shared_data("colloids_brightfield", "frames.npz"))["frames"][:17]
    x = frames.astype(np.float32).reshape(17, 250, 2, 250, 2).mean(axis=(2, 4)) / 255  # 2×2 bin
    fg = foreground(x)
    assert 0.001 < fg.mean() < 0.10
    mean_iou = [
        np.mean([iou(x[t][None], fg[t], x[t + lag][None, None], fg[t + lag][None])[0]
                 for t in range(17 - lag)])
        for lag in (1, 4, 16)
    ]
    assert mean_iou[0] > mean_iou[1] > mean_iou[2]
    assert mean_iou[0] > 0.5  # consecutive frames pass the default IoU filter
