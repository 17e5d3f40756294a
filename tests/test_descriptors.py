"""Foreground, metrics and descriptors, with numbers checked by hand and on real frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.variations.descriptors import (
    DESCRIPTORS, Variation, area_diff, compare, describe, foreground, foreground_centroid,
    intensity_dev, iou, path_tortuosity, principal_axis_ratio, sample_features, shannon_entropy,
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


def test_tortuosity_of_straight_and_bent_paths():
    """Straight: 1. L (3 then 4): 7/5. Zig-zag of four unit diagonal steps: 4·√2/4 = √2.
    Missing centroids are skipped; a closed loop is inf; one point is NaN."""
    assert path_tortuosity([[0, 0], [1, 1], [2, 2], [5, 5]]) == pytest.approx(1.0)
    assert path_tortuosity([[0, 0], [3, 0], [np.nan, np.nan], [3, 4]]) == pytest.approx(7 / 5)
    assert path_tortuosity([[0, 0], [1, 1], [2, 0], [3, 1], [4, 0]]) == pytest.approx(math.sqrt(2))
    assert math.isinf(path_tortuosity([[0, 0], [1, 0], [0, 0]]))
    assert math.isnan(path_tortuosity([[1, 2]]))


def test_centroids_and_features():
    """The centroid of a disc is its centre; an empty image has none (NaN)."""
    fg = np.stack([disc(20, 30, 5), np.zeros((64, 64), bool)])
    np.testing.assert_allclose(foreground_centroid(fg)[0], [20, 30])
    assert np.isnan(foreground_centroid(fg)[1]).all()
    images = np.stack([np.full((3, 64, 64), v, np.float32) for v in (0.25, 0.5)])
    feats = sample_features(images, fg)
    assert feats["mean_c2"].tolist() == [0.25, 0.5]


def _variation(centres: list[tuple[int, int]]) -> Variation:
    """A one-particle variation: the reference disc and kept discs at the given centres."""
    images = np.stack([disc(r, c, 4).astype(np.float32)[None] for r, c in centres])
    fg = foreground(images)
    feats = sample_features(images, fg)
    metrics = compare(images[0], images[1:])
    kept = pd.concat([metrics, feats.iloc[1:].reset_index(drop=True)], axis=1)
    kept = kept.assign(magnitude=np.arange(1, len(centres)))
    return Variation(reference=images[0], trace=images.mean(axis=0), kept=kept,
                     reference_row=feats.iloc[0].to_dict(), n_drawn=2 * (len(centres) - 1))


def test_descriptors_of_a_particle_moving_in_a_line():
    """A disc stepping right by 4 px five times: straight path, elongated trace, half kept."""
    v = _variation([(32, 12 + 4 * k) for k in range(6)])
    d = describe(v, list(DESCRIPTORS))
    assert d["tortuosity"] == pytest.approx(1.0)
    assert d["anisotropy"] > 2  # a 9 px tall, 29 px long smear
    assert d["kept_fraction"] == 0.5
    a = disc(32, 12, 4)
    ious = [(a & disc(32, 12 + 4 * k, 4)).sum() / (a | disc(32, 12 + 4 * k, 4)).sum()
            for k in range(1, 6)]  # 19/79, 1/97 (the discs touch at one pixel), then 0
    assert d["iou_mean"] == pytest.approx(np.mean(ious))
    assert d["intensity_dev_mean"] == pytest.approx(0.0, abs=1e-6)
    assert d["trace_area"] == pytest.approx(v.trace_foreground.mean()) and d["trace_area"] > 0
    # member means: 6 equal discs, so no spread in intensity
    assert d["channel_iqr_0"] == pytest.approx(0.0)


def test_channel_iqr_by_hand():
    """Member means 0, 1, 2, 3, 4 (reference first): IQR = 3 − 1 = 2."""
    kept = pd.DataFrame({"mean_c0": [1.0, 2.0, 3.0, 4.0], "magnitude": [1.0, 2, 3, 4]})
    v = Variation(reference=np.zeros((1, 4, 4)), trace=np.zeros((1, 4, 4)), kept=kept,
                  reference_row={"mean_c0": 0.0}, n_drawn=4)
    assert DESCRIPTORS["channel_iqr"](v) == {"channel_iqr_0": 2.0}


def test_a_new_descriptor_is_one_function_and_one_line(monkeypatch):
    """Registering a function makes describe() report it; unknown names are refused."""
    monkeypatch.setitem(DESCRIPTORS, "n_kept", lambda v: {"n_kept": float(len(v.kept))})
    v = _variation([(32, 32), (32, 36), (32, 40)])
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
