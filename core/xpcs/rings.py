"""|q| rings of a detector: which pixels a two-time map averages over.

XPCS speckle decorrelates at a rate set by the scattering vector q, so a two-time map is
averaged over the pixels of one |q| bin around the direct beam, never over the whole detector
(which mixes every length scale). Two ways to say where the rings are:

* **Physical geometry** (:meth:`RingGeometry.q_rings`): beam centre (px), pixel size,
  sample-detector distance and wavelength; |q| per pixel comes from pyFAI (``Geometry.qArray``,
  the azimuthal-integration library of the field, ESRF; Ashiotis et al., J. Appl. Cryst. 48,
  510 (2015)), rings are bins in nm⁻¹. pyFAI is imported only here (it takes seconds).
* **Pixels** (:meth:`RingGeometry.pixel_rings`): a centre and radii in px, the radius of each
  pixel centre from the centre (the same pixel-centre convention as pyFAI: pixel (i, j) has its
  centre at (i + ½, j + ½) pixel sizes from the corner; checked against ``Geometry.rArray``).

Either honours a detector mask (:func:`detector_mask`): negative pixels (PILATUS marks module
gaps with -1 and dead pixels with -2), non-finite pixels, and an explicit mask. Rings are kept as
one label image (ring number per pixel, -1 outside every ring), which is what
:func:`core.xpcs.two_time.two_time_rings` groups pixels by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Q_UNIT = "nm⁻¹"
PX_UNIT = "px"


@dataclass(frozen=True)
class Rings:
    """Ring labels of a detector and what each ring is."""

    labels: np.ndarray  # (H, W) int32: ring number of each pixel, -1 outside every ring or masked
    edges: np.ndarray  # (n + 1,) inner and outer edges, in `unit`
    unit: str  # "nm⁻¹" (|q|) or "px" (radius)
    centre: tuple[float, float]  # (row, col) of the direct beam, px
    n_pixels: np.ndarray = field(init=False)  # (n,) unmasked pixels per ring

    def __post_init__(self) -> None:
        counts = np.bincount(self.labels[self.labels >= 0].ravel(), minlength=len(self))
        object.__setattr__(self, "n_pixels", counts[: len(self)])

    def __len__(self) -> int:
        return len(self.edges) - 1

    @property
    def masks(self) -> np.ndarray:
        """(n, H, W) bool, one mask per ring."""
        return self.labels[None] == np.arange(len(self))[:, None, None]

    def label(self, i: int) -> str:
        """What ring i is, for a person: ``"q 0.100–0.120 nm⁻¹"`` or ``"r 20–30 px"``."""
        low, high = self.edges[i], self.edges[i + 1]
        if self.unit == Q_UNIT:
            return f"q {low:.4g}–{high:.4g} {Q_UNIT}"
        return f"r {low:.4g}–{high:.4g} {PX_UNIT}"

    def describe(self, i: int) -> dict[str, Any]:
        """Ring i as plain metadata (what a two-time map carries with it)."""
        return {"ring": int(i), "ring_label": self.label(i), "ring_low": float(self.edges[i]),
                "ring_high": float(self.edges[i + 1]), "ring_unit": self.unit,
                "n_pixels": int(self.n_pixels[i])}


@dataclass(frozen=True)
class RingGeometry:
    """Where the direct beam hits the detector and, for |q|, the scattering geometry.

    Parameters
    ----------
    centre : (row, col)
        Direct-beam position in pixels (fractional allowed; pixel (i, j) is centred at (i, j)).
    pixel_size : float, optional
        Pixel side in metres (square pixels; PILATUS: 172e-6).
    distance : float, optional
        Sample-detector distance in metres.
    wavelength : float, optional
        X-ray wavelength in metres (8 keV: 1.55e-10).
    """

    centre: tuple[float, float]
    pixel_size: float | None = None
    distance: float | None = None
    wavelength: float | None = None

    def q_map(self, shape: tuple[int, int]) -> np.ndarray:
        """|q| of each pixel centre in nm⁻¹, from pyFAI."""
        missing = [name for name in ("pixel_size", "distance", "wavelength")
                   if not (getattr(self, name) or 0) > 0]
        if missing:
            raise ValueError(f"|q| needs pixel_size, distance and wavelength in metres (> 0); "
                             f"missing or not positive: {', '.join(missing)}. Give ring radii "
                             "in pixels instead when the geometry is unknown")
        from pyFAI.geometry import Geometry

        row, col = self.centre
        geometry = Geometry(dist=self.distance, poni1=(row + 0.5) * self.pixel_size,
                            poni2=(col + 0.5) * self.pixel_size, pixel1=self.pixel_size,
                            pixel2=self.pixel_size, wavelength=self.wavelength)
        return np.asarray(geometry.qArray(tuple(shape)), dtype=np.float64)  # (H, W) nm⁻¹

    def radius_map(self, shape: tuple[int, int]) -> np.ndarray:
        """Distance of each pixel centre from the beam centre, in px."""
        rows, cols = np.indices(tuple(shape), dtype=np.float64)
        return np.hypot(rows - self.centre[0], cols - self.centre[1])

    def q_rings(self, shape: tuple[int, int], edges: Any, *, mask: np.ndarray | None = None) -> Rings:
        """Rings between consecutive |q| ``edges`` (nm⁻¹, increasing)."""
        return _bin(self.q_map(shape), edges, Q_UNIT, self.centre, mask)

    def pixel_rings(self, shape: tuple[int, int], edges: Any, *, mask: np.ndarray | None = None) -> Rings:
        """Rings between consecutive radii ``edges`` (px, increasing)."""
        return _bin(self.radius_map(shape), edges, PX_UNIT, self.centre, mask)


def default_rings(shape: tuple[int, int], n_rings: int = 4, *, mask: np.ndarray | None = None) -> Rings:
    """A few rings around the frame centre, for when nothing is known of the geometry.

    ``n_rings`` rings of equal width in pixels, from 1/10 to 9/10 of the distance from the
    centre to the nearest frame edge (the innermost pixels hold too few speckles, the corners
    only part of a ring).
    """
    if not 1 <= n_rings <= 64:
        raise ValueError(f"n_rings={n_rings!r} must be between 1 and 64")
    height, width = shape
    centre = ((height - 1) / 2, (width - 1) / 2)
    reach = min(height, width) / 2
    edges = np.linspace(0.1 * reach, 0.9 * reach, n_rings + 1)
    return RingGeometry(centre).pixel_rings(shape, edges, mask=mask)


def detector_mask(frames: Any, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool of pixels to leave out: negative or non-finite in any frame, or in ``mask``.

    ``frames`` is one frame (H, W) or a stack (T, H, W); PILATUS and EIGER mark module gaps and
    dead pixels with negative values (-1, -2), which must never enter a correlation.
    """
    frames = np.asarray(frames)
    stack = frames.reshape(-1, *frames.shape[-2:])  # (T, H, W)
    bad = np.zeros(stack.shape[1:], bool)
    for frame in stack:  # frame by frame: a float copy of the whole stack is never made
        bad |= ~np.isfinite(frame) | (frame < 0) if frame.dtype.kind == "f" else frame < 0
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != bad.shape:
            raise ValueError(f"mask of shape {mask.shape} must match the frames' {bad.shape}")
        bad |= mask
    return bad


def _bin(values: np.ndarray, edges: Any, unit: str, centre: tuple[float, float],
         mask: np.ndarray | None) -> Rings:
    edges = np.asarray(edges, dtype=np.float64).ravel()
    if edges.size < 2 or not np.all(np.diff(edges) > 0) or edges[0] < 0:
        raise ValueError(f"ring edges {edges.tolist()} must be at least two increasing values "
                         f">= 0 ({unit})")
    labels = np.searchsorted(edges, values, side="right") - 1  # [edge_i, edge_i+1)
    labels[(labels >= len(edges) - 1) | (values < edges[0])] = -1
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != values.shape:
            raise ValueError(f"mask of shape {mask.shape} must match the detector's {values.shape}")
        labels[mask] = -1
    return Rings(labels.astype(np.int32), edges, unit, (float(centre[0]), float(centre[1])))


def rings_from(shape: tuple[int, int], *, mask: np.ndarray | None = None, n_rings: int = 4,
               centre: tuple[float, float] | None = None, radii: Any = None, q_edges: Any = None,
               pixel_size: float | None = None, distance: float | None = None,
               wavelength: float | None = None) -> Rings:
    """Rings from whatever is known of the geometry (what the CLI's options give).

    ``q_edges`` (nm⁻¹) with ``pixel_size``, ``distance``, ``wavelength`` (m) and ``centre``:
    |q| rings; ``radii`` (px) around ``centre`` (default: the frame centre): pixel rings;
    neither: :func:`default_rings` (``n_rings`` of them).
    """
    if q_edges is not None and radii is not None:
        raise ValueError("give ring edges either in |q| (q_edges) or in pixels (radii), not both")
    if q_edges is not None and centre is None:
        raise ValueError("|q| rings need the beam centre (row, col) in pixels")
    if centre is None and radii is None:
        return default_rings(shape, n_rings, mask=mask)
    geometry = RingGeometry(tuple(centre) if centre is not None else
                            ((shape[0] - 1) / 2, (shape[1] - 1) / 2),
                            pixel_size, distance, wavelength)
    if q_edges is not None:
        return geometry.q_rings(shape, q_edges, mask=mask)
    if radii is None:
        reach = min(shape) / 2
        radii = np.linspace(0.1 * reach, 0.9 * reach, n_rings + 1)
    return geometry.pixel_rings(shape, radii, mask=mask)
