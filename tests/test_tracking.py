"""Tracked particles (trackpy): D of synthetic Brownian particles with a known answer, track
traces checked by hand, and the real bulk-water series against Stokes–Einstein."""

import numpy as np
import pytest

from core.data.results.datasets import PhysicalScale
from core.variations.tracking import (
    TrackingParams,
    dark_on_bright,
    diffusion,
    rasterise_track,
    stokes_einstein,
    track,
    track_traces,
)
from tests.conftest import shared_data

SCALE = PhysicalScale(pixel_size=0.1, pixel_unit="µm", frame_interval=0.05)
D_PX = 0.5  # px²/frame: a step of σ = 1 px per axis per frame
D_TRUE = D_PX * 0.1**2 / 0.05  # 0.1 µm²/s


def brownian_frames(n=20, T=100, side=96, sigma=1.5, seed=0):
    """Gaussian spots (σ px) at 2-D Brownian positions with D = D_PX, on a 0.2 background
    with 2 % noise: (frames (T, side, side), positions (T, n, 2))."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(12, side - 12, (n, 2))
    steps = rng.normal(0.0, np.sqrt(2 * D_PX), (T, n, 2))
    steps[0] = 0
    positions = start + np.cumsum(steps, axis=0)
    axis = np.arange(side)
    gy = np.exp(-((axis[None, None, :] - positions[..., 0, None]) ** 2) / (2 * sigma**2))  # (T, n, side)
    gx = np.exp(-((axis[None, None, :] - positions[..., 1, None]) ** 2) / (2 * sigma**2))
    frames = 0.2 + np.einsum("tny,tnx->tyx", gy, gx) + rng.normal(0, 0.02, (T, side, side))
    return frames, positions


@pytest.fixture(scope="module")
def brownian_tracks():
    frames, _ = brownian_frames()
    params = TrackingParams(diameter=7, minmass=1.0, min_length=50, engine="python")
    return frames, track(frames, params)


def test_brownian_particles_give_back_their_diffusion_coefficient(brownian_tracks):
    """20 particles × 100 frames with D = 0.1 µm²/s (0.5 px²/frame at 0.1 µm/px, 0.05 s):
    the fitted D is within 2 standard errors of the truth, and the error is under 20 %."""
    _, tracks = brownian_tracks
    d = diffusion(tracks, SCALE)
    assert d.unit == "µm²/s" and d.n_tracks >= 10
    assert abs(d.D - D_TRUE) < 2 * d.se, str(d)
    assert d.se < 0.2 * D_TRUE


def test_without_a_scale_d_is_in_px_per_frame_and_converts_exactly(brownian_tracks):
    """The same tracks without a scale: px²/frame, and × (0.1 µm)² / 0.05 s gives the µm²/s D."""
    _, tracks = brownian_tracks
    px, um = diffusion(tracks), diffusion(tracks, SCALE)
    assert px.unit == "px²/frame"
    assert px.D * 0.1**2 / 0.05 == pytest.approx(um.D) and abs(px.D - D_PX) < 2 * px.se


def test_polarity_is_read_from_the_histogram(brownian_tracks):
    """Bright spots on a dark background are not dark-on-bright; the negative image is."""
    frames, _ = brownian_tracks
    assert not dark_on_bright(frames) and dark_on_bright(1.0 - frames)


def test_a_track_trace_is_the_area_swept_by_its_disc():
    """By hand: a disc of radius 3 held still covers 29 pixel centres (Gauss's circle count);
    radius 2 moved 1 px a frame for 11 frames along x covers 11 × 5 + 2 × (3 + 1) = 63."""
    still = rasterise_track(np.zeros((5, 2)), 3.0)
    assert still.sum() == 29
    line = rasterise_track(np.c_[np.zeros(11), np.arange(11.0)], 2.0)
    assert line.sum() == 63


def test_track_traces_are_described_per_window_in_physical_units():
    """A particle moving straight along x by 1 px per frame over 20 frames, W = 10: two windows
    of 10 × 5 + 2 × (3 + 1) = 58 px each (0.58 µm² at 0.1 µm/px), path 9 steps × 0.1 µm, elongated (anisotropy > 2)
    and straight (tortuosity 1)."""
    import pandas as pd

    tracks = pd.DataFrame({"particle": 0, "frame": np.arange(20), "y": 10.0, "x": 10.0 + np.arange(20.0)})
    table = track_traces(tracks, 10, radius=2.0, scale=SCALE)
    assert list(table["start"]) == [0, 10] and list(table["n_pixels"]) == [58, 58]
    assert table["area"].to_numpy() == pytest.approx([0.58, 0.58])
    assert table["path"].to_numpy() == pytest.approx([0.9, 0.9])
    assert (table["anisotropy"] > 2).all() and (table["tortuosity"] == 1).all()


def test_stokes_einstein_of_a_1_um_sphere_in_water():
    """kT / (6πηa) at 295 K, η = 0.95 mPa·s, a = 0.5 µm: 0.455 µm²/s."""
    assert stokes_einstein(0.5e-6) * 1e12 == pytest.approx(0.4549, abs=1e-4)


def test_bulk_water_latex_spheres_diffuse_near_stokes_einstein():
    """1 µm latex spheres in water (2.85 px/µm, 24 frames/s), 40 frames of a 200 × 200 px
    corner: D within a factor 1.5 of Stokes–Einstein (0.455 µm²/s; bench/traces.py measures the
    whole series); skipped where ../shared/data is absent."""
    frames = np.load(shared_data("colloids_bulk_water", "frames.npz"))["frames"][:40, :200, :200]
    params = TrackingParams(diameter=11, minmass=100, search_range=5, min_length=20, engine="python")
    d = diffusion(track(frames, params), PhysicalScale(1 / 2.85, "µm", 1 / 24), n_lags=5)
    assert 0.455 / 1.5 < d.D < 0.455 * 1.5, str(d)


# -- measured vs sampled ------------------------------------------------------------------------
def moving_disc_frames(T=10, side=128, radius=3.0, seed=0):
    """A disc (1.0 on 0.2, 1 % noise) moving +1 px in x per frame from (24, 12). 128 px: the
    foreground's background blur (σ = side/16 = 8 px) must be wider than the trace, or the
    trace grows a halo (on 48 px, σ = 3 px: 114 px instead of 57)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    frames = np.stack([0.2 + 0.8 * ((yy - 24) ** 2 + (xx - 12 - t) ** 2 <= radius**2) for t in range(T)])
    return frames + rng.normal(0, 0.01, frames.shape)


def test_measured_trace_of_real_frames_matches_the_tracked_disc():
    """The pixel mean of 5 frames of a radius-3 disc moving 1 px a frame holds the swept region:
    by hand 1 + 5 + 5 + 5 × 7 + 5 + 5 + 1 = 57 px, the same as the track's rasterised trace;
    two windows in 10 frames, each in µm² at 0.1 µm/px."""
    import pandas as pd

    from core.variations.measured import measured_traces

    table = measured_traces(moving_disc_frames(), 5, pixel_size=0.1, unit="µm")
    assert list(table["start"]) == [0, 5] and list(table["n_pixels"]) == [57, 57]
    assert table["area"].to_numpy() == pytest.approx([0.57, 0.57])
    tracks = pd.DataFrame({"particle": 0, "frame": np.arange(10), "y": 24.0, "x": 12.0 + np.arange(10.0)})
    assert list(track_traces(tracks, 5, radius=3.0)["n_pixels"]) == [57, 57]


def test_compare_traces_by_hand():
    """Sampled areas 1, 2, 3, 4 vs measured 2, 2, 2, 2: medians 2.5 and 2, IQRs 1.5 and 0, mean
    ratio 1.25 ± 1.25 × (1.291/2)/2.5 = 0.3227 (the measured mean has no spread)."""
    import pandas as pd

    from core.variations.measured import compare_traces

    sampled = pd.DataFrame({"area": [1.0, 2, 3, 4], "anisotropy": [1.0, 1, 2, np.inf], "tortuosity": 1.0})
    measured = pd.DataFrame({"area": [2.0] * 4, "anisotropy": [1.0] * 4, "tortuosity": 1.0})
    table = compare_traces(sampled, measured)
    area = table.loc["area"]
    assert (area["sampled_median"], area["measured_median"]) == (2.5, 2.0)
    assert (area["sampled_iqr"], area["measured_iqr"]) == (1.5, 0.0)
    assert area["ratio"] == pytest.approx(1.25) and area["ratio_se"] == pytest.approx(0.3227, abs=1e-4)
    aniso = table.loc["anisotropy"]  # the infinite one counts in the median, not in the mean
    assert aniso["sampled_median"] == 1.5 and aniso["sampled_mean"] == pytest.approx(4 / 3)
    assert aniso["sampled_q3"] == np.inf  # between 2 and inf: inf, not NaN
    lines = compare_traces(sampled.assign(anisotropy=np.inf), measured).loc["anisotropy"]
    assert lines["sampled_median"] == np.inf and np.isnan(lines["ratio"])  # no finite mean


def test_a_stored_time_series_gives_measured_traces_per_patch_and_its_owner_keeps_them(store):
    """Frames of 128 × 256 cut into two 128 px patches, a disc moving in the first: W = 5 gives
    the 57 px trace (0.57 µm² at 0.1 µm/px) in patch 0 of both windows and nothing in the empty
    patch 1; the variations owner writes and reads the table back. Without a frame interval the
    dataset is not taken for a time series."""
    from core.data.ingest import ingest_array
    from core.data.preprocess import PreprocessParams
    from core.data.results.variations import KIND, read_measured_traces, write_measured_traces
    from core.variations.measured import dataset_traces

    frames = np.concatenate([moving_disc_frames(), np.full((10, 128, 128), 0.2)], axis=2)
    frames += np.random.default_rng(1).normal(0, 0.01, frames.shape) * (np.arange(256) >= 128)
    pre = PreprocessParams(size=None, clip_percentiles=None, patch_size=128)
    timed = ingest_array(frames, store, pre, name="series", source_label="test", scale=SCALE)
    table = dataset_traces(store, timed.dataset_id, 5)
    assert list(table["start"]) == [0, 5] and list(table["patch"]) == [0, 0]
    assert table["area"].to_numpy() == pytest.approx([0.57, 0.57])
    untimed = ingest_array(frames, store, pre, name="series", source_label="test")
    assert dataset_traces(store, untimed.dataset_id, 5) is None

    writer = store.writer(KIND, metadata={})
    write_measured_traces(writer, table, 5)
    id = writer.finish()
    assert read_measured_traces(store, id)["area"].to_numpy() == pytest.approx([0.57, 0.57])
    assert store.metadata(KIND, id)["measured_window"] == 5
