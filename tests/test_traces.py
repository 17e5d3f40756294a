"""Per-particle traces: shapes with known answers, the split of touching traces, an exact
generator run through the sampler, and diffusion modes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage as ndi

from core.models.gan import GAN, GANConfig
from core.variations.descriptors import principal_axis_ratio
from core.variations.filters import FilterParams
from core.variations.sampling import MemorySink, VariationParams, sample_variations
from core.variations.traces import (
    TRACE_UNITS, describe_traces, extract_traces, reference_particles, skeleton_tortuosity,
    split_traces, trace_modes, trace_table, window_trace,
)
from tests.conftest import shared_data

YY, XX = np.mgrid[:96, :96]


def disc(r0: float, c0: float, radius: float) -> np.ndarray:
    return (YY - r0) ** 2 + (XX - c0) ** 2 <= radius**2


# -- tortuosity and anisotropy of shapes with known answers ------------------------------------
def test_tortuosity_of_a_straight_bar_is_one():
    """A 5 px thick bar 61 px long: skeleton a straight line, path = chord."""
    bar = (abs(YY - 48) <= 2) & (abs(XX - 48) <= 30)
    assert skeleton_tortuosity(bar) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("a, b", [(40, 30), (30, 30)])
def test_tortuosity_of_an_l(a, b):
    """An L 3 px thick with legs a, b along its centre line: (a + b)/√(a² + b²)
    (40, 30: 70/50 = 1.4; 30, 30: √2). The skeleton cuts the corner by one diagonal step."""
    L = ((abs(YY - 20) <= 1) & (XX >= 20) & (XX <= 20 + a)) | \
        ((abs(XX - (20 + a)) <= 1) & (YY >= 20) & (YY <= 20 + b))
    assert skeleton_tortuosity(L) == pytest.approx((a + b) / math.hypot(a, b), rel=0.02)


def test_tortuosity_of_a_zig_zag():
    """Four strokes at ±45°, 16 steps each: path 4·16·√2 over chord 4·16, so √2."""
    z = np.zeros((96, 96), bool)
    for k in range(4):
        for t in range(16):
            z[40 + (t if k % 2 == 0 else 16 - t), 10 + 16 * k + t] = True
    assert skeleton_tortuosity(z) == pytest.approx(math.sqrt(2), rel=0.005)


@pytest.mark.parametrize("radius", [3, 8, 20])
def test_tortuosity_of_a_disc_is_one(radius):
    """A disc's skeleton is its centre: no path to bend, so 1 (the docstring's definition)."""
    assert skeleton_tortuosity(disc(48, 48, radius)) == 1.0
    assert math.isnan(skeleton_tortuosity(np.zeros((8, 8), bool)))


@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_anisotropy_and_area_of_traces(angle):
    """An ellipse with semi-axes 24 and 8 (any orientation) gives 3, a disc 1; area is
    n_pixels × pixel_size² in the unit asked (here nm², 2.5 nm per pixel)."""
    t = math.radians(angle)
    u, v = (YY - 30) * math.cos(t) + (XX - 30) * math.sin(t), -(YY - 30) * math.sin(t) + (XX - 30) * math.cos(t)
    labels = np.where((u / 24) ** 2 + (v / 8) ** 2 <= 1, 1, 0) + 2 * disc(75, 75, 12)
    table = describe_traces(labels, pixel_size=2.5, unit="nm")
    assert list(table["particle"]) == [1, 2]
    assert table.loc[0, "anisotropy"] == pytest.approx(3.0, rel=0.04)  # 8 px minor axis: grid error
    assert table.loc[1, "anisotropy"] == pytest.approx(1.0, abs=0.01)
    n = [(labels == 1).sum(), (labels == 2).sum()]
    assert list(table["n_pixels"]) == n and table["area"].tolist() == [6.25 * n[0], 6.25 * n[1]]
    assert table.loc[1, ["centroid_y", "centroid_x"]].tolist() == pytest.approx([75, 75])
    assert describe_traces(labels)["area"].tolist() == n  # px² without a pixel size
    assert TRACE_UNITS("nm")["area"] == "nm²" and TRACE_UNITS()["area"] == "px²"
    with pytest.raises(ValueError, match="pixel_size=0 must be a number > 0"):
        describe_traces(labels, pixel_size=0)


# -- extraction --------------------------------------------------------------------------------
def test_touching_traces_are_split_between_their_particles():
    """Two horizontal smears that touch end to end, seeded by particles at their centres:
    each pixel goes to the nearer particle (the cut at the midpoint column 48); a blob touching
    no particle is dropped and counted."""
    particles = np.zeros((96, 96), np.int32)
    particles[disc(40, 30, 3)] = 1
    particles[disc(40, 66, 3)] = 2
    fg = (abs(YY - 40) <= 4) & (XX >= 14) & (XX <= 82)  # one connected smear over both
    stray = disc(80, 80, 4)
    labels, dropped = split_traces(fg | stray, particles)
    assert dropped == stray.sum()
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[fg & (XX < 48)] == 1).all() and (labels[fg & (XX > 48)] == 2).all()
    assert (labels[stray] == 0).all()
    # The same from images: the trace is the smear's intensity, the particles the reference's.
    reference = (disc(40, 30, 3) | disc(40, 66, 3)).astype(np.float32)
    trace = (fg | stray).astype(np.float32) * 0.5
    found = reference_particles(reference)
    np.testing.assert_array_equal(found, particles)
    np.testing.assert_array_equal(extract_traces(trace[None], found), labels)
    table, n_dropped = trace_table(reference[None], trace[None])
    assert list(table["particle"]) == [1, 2] and n_dropped == stray.sum()


def test_reference_particles_on_real_colloid_frames():
    """The bright-field frames hold five colloids: five particles in a frame (the specks of
    noise dropped), and a window of 3 frames gives each one trace that covers it."""
    frames = np.load(shared_data("colloids_brightfield", "frames.npz"))["frames"][[0, 1, 2, 40]]
    x = frames.astype(np.float32) / 255
    assert reference_particles(x[3]).max() == 5
    particles = reference_particles(x[0])
    assert particles.max() == 5
    traces = extract_traces(window_trace(x, 0, 3), particles)
    table = describe_traces(traces)
    assert list(table["particle"]) == [1, 2, 3, 4, 5]
    sizes = np.bincount(particles.ravel())[1:]
    assert (table["n_pixels"].to_numpy() >= 0.5 * sizes).all()  # a trace covers its particle
    with pytest.raises(ValueError, match="frames 2 … 5 are not all in the 4 frames"):
        window_trace(x, 2, 4)
    assert (traces[particles > 0] == particles[particles > 0]).mean() > 0.9  # each on its own


def test_window_trace_is_the_pixel_mean():
    frames = np.arange(5 * 4, dtype=np.float32).reshape(5, 2, 2)
    np.testing.assert_allclose(window_trace(frames, 1, 3), frames[1:4].mean(axis=0))


# -- an exact generator through the sampler ----------------------------------------------------
class ExactGenerator(GAN):
    """Gaussian particles (σ = 1.5 px, peak 1) at p₀ₖ + Aₖ z: particle k moves by its own matrix.

    A GAN subclass so core.models.generator decodes it like any generator; its networks are
    built (tiny) but never used.
    """

    def __init__(self, p0: list[list[float]], matrices: list[np.ndarray], side: int = 64):
        super().__init__(GANConfig(image_size=side, latent_dim=2, base_channels=1, max_channels=1))
        self.p0 = torch.tensor(p0, dtype=torch.float32)  # (P, 2) row, col
        self.A = torch.tensor(np.stack(matrices), dtype=torch.float32)  # (P, 2, 2)
        self.side = side

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        pos = self.p0[None] + torch.einsum("pij,bj->bpi", self.A, z)  # (B, P, 2)
        g = torch.arange(self.side, dtype=torch.float32)
        dy = g[None, None, :, None] - pos[..., 0, None, None]
        dx = g[None, None, None, :] - pos[..., 1, None, None]
        return torch.exp(-(dy**2 + dx**2) / (2 * 1.5**2)).amax(dim=1, keepdim=True)  # (B, 1, H, W)


def rotation(degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


ANISO = rotation(20) @ np.diag([12.0, 4.0])  # singular values 12, 4: axis ratio 3
ISO = 7.0 * rotation(20)  # A Aᵀ = 49 I: ratio 1


def dilated_parallelogram(A: np.ndarray, gamma: float, centre: tuple[float, float], x: float) -> np.ndarray:
    """The pixels within x of the parallelogram centre + γ A [−1, 1]² (its Steiner dilation)."""
    d = np.stack([YY[:64, :64] - centre[0], XX[:64, :64] - centre[1]], -1) @ np.linalg.inv(gamma * A).T
    inside = (abs(d) <= 1).all(-1)
    return ndi.distance_transform_edt(~inside) <= x


def steiner_rim(A: np.ndarray, gamma: float, area: float) -> float:
    """x with area = A₀ + P x + π x² (A₀ = 4γ²|det A|, P the perimeter): how far the trace's
    edge lies outside the displacement support (Steiner's formula for a convex set)."""
    a0 = 4 * gamma**2 * abs(np.linalg.det(A))
    p = 4 * gamma * (np.linalg.norm(A[:, 0]) + np.linalg.norm(A[:, 1]))
    return (-p + math.sqrt(p * p + 4 * math.pi * (area - a0))) / (2 * math.pi)


@pytest.fixture(scope="module")
def exact_traces() -> dict[float, pd.DataFrame]:
    """Per-particle tables of the exact generator's variation at γ = 0.6 and 1, filters off."""
    model = ExactGenerator([[32, 16], [32, 48]], [ANISO, ISO])
    out = {}
    for gamma in (0.6, 1.0):
        sink = MemorySink(keep_images=False)
        params = VariationParams(gamma=gamma, n_per_reference=600, batch_size=300, descriptors=(),
                                 filters=FilterParams(None, None, None, None))
        sample_variations(model, np.zeros((1, 2), np.float32), params, sink)
        out[gamma], dropped = trace_table(sink.reference_images[0], sink.traces[0])
        assert dropped == 0
    return out


def test_exact_generator_gives_the_predicted_axis_ratio(exact_traces):
    """z ~ U[−γ, γ]² moves particle k uniformly over the parallelogram γ Aₖ [−1, 1]², whose
    second moments are γ²/3 · A Aᵀ: axis ratio √(λ₁/λ₂) = 3 for ANISO, 1 for ISO. The trace
    region is that parallelogram dilated by the particle's rim x (fitted from the region's area
    by Steiner's formula, and no wider than the particle itself); the predicted ratio is that of
    the dilated parallelogram, 2.4–2.9 here (correcting for the particle's own size)."""
    radius = math.sqrt(reference_particles(ExactGenerator([[32, 32]], [ISO]).generate(
        torch.zeros(1, 2))[0].numpy()).sum() / math.pi)  # the particle's own radius, ≈ 3.8 px
    for gamma, table in exact_traces.items():
        assert list(table["particle"]) == [1, 2]
        aniso, iso = table.iloc[0], table.iloc[1]
        x = steiner_rim(ANISO, gamma, aniso["n_pixels"])
        assert 0 <= x <= radius
        predicted = principal_axis_ratio(dilated_parallelogram(ANISO, gamma, (32, 16), x))
        # 0.1: a thresholded blurred edge is rounder at the corners than a dilation (7 % at γ = 0.6)
        assert aniso["anisotropy"] == pytest.approx(predicted, rel=0.1)
        assert 2.2 < predicted < 3.1  # the rim lowers 3; the grid adds ±1 %
        assert iso["anisotropy"] == pytest.approx(1.0, abs=0.15)
        assert 0 <= steiner_rim(ISO, gamma, iso["n_pixels"]) <= radius
        assert (aniso["centroid_y"], aniso["centroid_x"]) == pytest.approx((32, 16), abs=1.0)


def test_exact_generator_area_grows_with_gamma(exact_traces):
    """The displacement support grows as γ² (4γ²|det A|); the trace adds the particle's rim
    (wider at small γ, where the trace is denser and its blurred edge crosses the threshold
    further out), so the area ratio lies between 1 and (1/0.6)² = 2.78; the fitted rim stays
    under the particle's own width."""
    small, large = exact_traces[0.6], exact_traces[1.0]
    for row, A in ((0, ANISO), (1, ISO)):
        ratio = large.loc[row, "area"] / small.loc[row, "area"]
        assert 1.3 < ratio < (1 / 0.6) ** 2
        for g, t in exact_traces.items():
            x = steiner_rim(A, g, t.loc[row, "n_pixels"])
            assert 0 <= x < 2.0  # under the particle's σ 1.5 px plus a pixel of grid


# -- diffusion modes ---------------------------------------------------------------------------
def test_trace_modes_recover_two_groups_of_shapes():
    """Directional straight traces (anisotropy ≈ 4, tortuosity ≈ 1) and bent isotropic ones
    (≈ 1.2, ≈ 1.6): HAC on range-scaled (anisotropy, tortuosity) gives back the two groups,
    whatever the area; the summary counts and averages each mode."""
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1], [12, 8])
    table = pd.DataFrame({
        "particle": np.arange(20),
        "anisotropy": np.where(truth == 0, 4.0, 1.2) + rng.normal(0, 0.15, 20),
        "tortuosity": np.where(truth == 0, 1.0, 1.6) + rng.normal(0, 0.05, 20),
        "area": rng.uniform(100, 200, 20),
    })
    table.loc[3, "anisotropy"] = np.inf  # a one-pixel line: the largest anisotropy
    modes = trace_modes(table, 2)
    assert (pd.crosstab(modes.labels, truth).to_numpy() > 0).sum() == 2  # one-to-one
    assert modes.linkage.shape == (19, 4) and len(modes.dendrogram["leaves"]) == 20
    s = modes.summary.set_index("mode")
    first = modes.labels[0]
    assert s.loc[first, "count"] == 12
    assert s.loc[first, "area_mean"] == pytest.approx(table["area"][truth == 0].mean())
    assert s.loc[first, "tortuosity_median"] == pytest.approx(table["tortuosity"][truth == 0].median())
    assert trace_modes(table, 50).labels.max() == 19  # n_modes lowered to the traces
    with pytest.raises(ValueError, match="at least 2 particle traces, got 1"):
        trace_modes(table.iloc[:1], 2)


def test_reference_particles_survive_one_large_artefact():
    """Twenty discs of 29 px, one artefact (a 15 px square at the corner) and five 1 px specks:
    the typical size is the discs' (area-weighted median: 29, as long as the artefact holds
    less than half the foreground), so the 20 discs and the artefact stay, the specks go."""
    image = np.zeros((96, 96), np.float32)
    image[:15, :15] = 1.0  # the artefact
    for k in range(20):
        image[disc(30 + 14 * (k // 5), 10 + 18 * (k % 5), 3)] = 1.0
    for k in range(5):
        image[90, 30 + 10 * k] = 1.0
    labels = reference_particles(image)
    sizes = np.bincount(labels.ravel())[1:]
    assert labels.max() == 21 and sorted(sizes)[:20] == [29] * 20 and sizes.max() >= 225
