"""q-rings (pixel geometry, pyFAI |q|, detector masks) and one two-time map per ring."""

import math

import numpy as np
import pytest

from core.xpcs import two_time as two_time_module
from core.xpcs.rings import Q_UNIT, RingGeometry, default_rings, detector_mask
from core.xpcs.two_time import two_time_rings
from tests.conftest import shared_data
from tests.test_xpcs import speckle_counts


def test_pixel_rings_match_radii_counted_by_hand():
    """Centre (3, 4), edges 0, 1.5, 2.5 px: ring 0 is the centre, its 4 neighbours (r = 1) and
    4 diagonals (r = 1.41); ring 1 the 4 pixels at r = 2 and the 8 at r = 2.24 (r = 2.83 is out)."""
    rings = RingGeometry((3, 4)).pixel_rings((7, 9), [0, 1.5, 2.5])
    ring0 = {(3 + i, 4 + j) for i in (-1, 0, 1) for j in (-1, 0, 1)}
    ring1 = {(3 + i, 4 + j) for i in range(-2, 3) for j in range(-2, 3)
             if 1.5 <= math.hypot(i, j) < 2.5}
    assert len(ring1) == 12
    assert {tuple(p) for p in np.argwhere(rings.labels == 0)} == ring0
    assert {tuple(p) for p in np.argwhere(rings.labels == 1)} == ring1
    assert rings.n_pixels.tolist() == [9, 12] and (rings.labels >= -1).all()
    assert rings.masks.shape == (2, 7, 9) and rings.label(1) == "r 1.5–2.5 px"


def test_q_rings_follow_the_scattering_geometry():
    """|q| = 4π/λ sin(½ atan(r p / d)) at every pixel centre (pyFAI against the formula), and a
    ring holds exactly the pixels whose |q| lies between its edges."""
    geometry = RingGeometry((20.0, 30.5), pixel_size=172e-6, distance=2.0, wavelength=1.55e-10)
    shape = (48, 64)
    r = geometry.radius_map(shape) * 172e-6  # metres in the detector plane
    by_hand = 4 * np.pi / 1.55e-10 * np.sin(np.arctan(r / 2.0) / 2) / 1e9  # nm⁻¹
    q = geometry.q_map(shape)
    assert np.allclose(q, by_hand, rtol=1e-5, atol=1e-9)
    edges = [0.01, 0.05, 0.1]
    rings = geometry.q_rings(shape, edges)
    for i in range(2):
        assert np.array_equal(rings.labels == i, (by_hand >= edges[i]) & (by_hand < edges[i + 1]))
    assert rings.unit == Q_UNIT and rings.label(0) == "q 0.01–0.05 nm⁻¹"
    with pytest.raises(ValueError, match="distance"):
        RingGeometry((1, 1), pixel_size=1e-4).q_map(shape)


def test_pilatus_gaps_and_dead_pixels_never_enter_a_ring():
    """A real PILATUS 2M frame: every pixel below 0 (-1 gaps, -2 dead) is masked, plus an
    explicit mask; rings built with that mask hold none of them."""
    import fabio

    [path] = sorted(shared_data("gisaxs_insitu").glob("*00005.cbf"))
    frame = fabio.open(str(path)).data
    explicit = np.zeros(frame.shape, bool)
    explicit[:100] = True
    masked = detector_mask(frame, explicit)
    assert np.array_equal(masked, (frame < 0) | explicit)
    assert (frame < 0).sum() > 10_000  # the module gaps are there
    rings = default_rings(frame.shape, 5, mask=masked)
    assert len(rings) == 5 and (rings.n_pixels > 0).all()
    assert not masked[rings.labels >= 0].any()
    assert rings.n_pixels.sum() < default_rings(frame.shape, 5).n_pixels.sum()


def test_ring_maps_equal_the_formula_per_ring_even_across_pixel_blocks(monkeypatch):
    """Three rings, one map each, against <I I>/(<I><I>) written out with numpy per ring; with
    blocks of 1024 entries rings straddle blocks and the result is the same."""
    rng = np.random.default_rng(0)
    frames = rng.poisson(5.0, size=(12, 20, 24)).astype(float) + 1
    rings = RingGeometry((9.5, 11.5)).pixel_rings((20, 24), [2, 4, 6, 9])
    expected = []
    for mask in rings.masks:
        pixels = frames[:, mask]  # (T, P)
        mean = pixels.mean(axis=1)
        expected.append((pixels @ pixels.T / mask.sum()) / np.outer(mean, mean))
    assert np.allclose(two_time_rings(frames, rings, device="cpu"), expected, rtol=1e-12)
    monkeypatch.setattr(two_time_module, "_BLOCK_ENTRIES", 1024)  # 85 pixels per block
    assert np.allclose(two_time_rings(frames, rings, device="cpu"), expected, rtol=1e-12)


def test_rings_with_different_decays_give_their_own_decay():
    """Inner ring decays in 4 frames, outer in 16 (speckle with g2 - 1 = exp(-2 τ/τc)): each ring's
    map, averaged along its diagonals, follows its own decay; the whole detector mixes both."""
    rings = RingGeometry((19.5, 19.5)).pixel_rings((40, 40), [3, 10, 19])
    frames = np.zeros((60, 40, 40))
    for ring, decay in ((0, 4.0), (1, 16.0)):
        mask = rings.labels == ring
        frames[:, mask] = speckle_counts(np.full(60, decay), int(mask.sum()), 50.0, seed=ring)[..., 0]
    frames[:, rings.labels < 0] = 1.0  # flat outside the rings
    maps = two_time_rings(frames, rings, device="cpu")
    for C, decay in zip(maps, (4.0, 16.0)):
        g2 = np.array([np.diagonal(C, k).mean() for k in range(1, 9)]) - 1
        assert np.allclose(g2, np.exp(-2 * np.arange(1, 9) / decay), atol=0.04), (decay, g2)


def test_empty_ring_and_bad_labels_are_refused():
    """A ring that every mask removes, and labels of the wrong shape, say what to do."""
    frames = np.ones((4, 8, 8))
    masked = np.ones((8, 8), bool)
    with pytest.raises(ValueError, match="select no pixel"):
        two_time_rings(frames, RingGeometry((4, 4)).pixel_rings((8, 8), [0, 2], mask=masked),
                       device="cpu")
    with pytest.raises(ValueError, match="must be integers matching"):
        two_time_rings(frames, np.zeros((4, 4), int), device="cpu")


def test_simulator_sends_one_map_per_ring_and_window_with_its_ring():
    """`simulate --two-time` over 2 rings and 2 windows: 4 maps, window by window, each the ring's
    map of its slice and carrying its ring, pixel count and first frame."""
    from streaming.simulator import TWO_TIME_METADATA, two_time_series

    frames = np.random.default_rng(0).poisson(3.0, size=(20, 16, 16)).astype(float) + 1
    frames[:, 0, :] = -1  # a detector gap: masked by the default rings
    rings = RingGeometry((7.5, 7.5)).pixel_rings((16, 16), [1, 4, 7])
    maps, metadata = two_time_series(frames, 10, rings=rings, device="cpu")
    assert maps.shape == (4, 10, 10) and maps.dtype == np.float32
    assert [(m["ring"], m["start"]) for m in metadata] == [(0, 0), (1, 0), (0, 10), (1, 10)]
    assert all(m["kind"] == TWO_TIME_METADATA["kind"] for m in metadata)
    assert metadata[1]["ring_label"] == "r 4–7 px" and metadata[1]["n_pixels"] == rings.n_pixels[1]
    assert np.allclose(maps[3], two_time_rings(frames[10:20], rings, device="cpu")[1], rtol=1e-6)
    _, default = two_time_series(frames, 10, device="cpu")  # no geometry: rings around the centre
    assert len(default) == 2 * 4 and default[0]["ring_unit"] == "px"
