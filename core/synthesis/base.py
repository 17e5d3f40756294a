"""The one interface every sampler follows, so a page or a flow can use any of them.

A sampler is fitted on one map (its latents, 2-D coordinates and clustering) and answers
"which latents would a state at map coordinate u have?" with ``n`` draws per coordinate.
What a page needs to show next to the images is ``name`` and ``params`` (recorded with every
result, so a figure can be rebuilt) and the seed it passed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Sampler(ABC):
    """Coordinates (M, 2) -> latents (M, n, latent_dim); deterministic for a given seed."""

    name: str = ""

    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-able parameters that, with the map's id, rebuild this sampler."""

    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """d, the length of the latents it returns."""

    @abstractmethod
    def _sample(self, coords: np.ndarray, n: int, seed: int) -> np.ndarray:
        """The sampler's own draw on checked input: float32 (M, n, d)."""

    def sample(self, coords: Any, n: int = 1, seed: int = 0) -> np.ndarray:
        """Draw ``n`` latents for each map coordinate.

        Parameters
        ----------
        coords : array-like of shape (M, 2)
            Map coordinates (any point of the plane, empty space included).
        n : int, default 1
            Draws per coordinate.
        seed : int, default 0
            Same seed, same draws.

        Returns
        -------
        ndarray of shape (M, n, latent_dim), float32
        """
        coords = check_coords(coords)
        if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1):
            raise ValueError(f"n={n!r} must be an integer >= 1")
        if not (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
            raise ValueError(f"seed={seed!r} must be an integer >= 0")
        out = self._sample(coords, int(n), int(seed))
        assert out.shape == (len(coords), n, self.latent_dim), out.shape
        return out.astype(np.float32, copy=False)


def check_coords(coords: Any) -> np.ndarray:
    """float64 (M, 2) finite coordinates, or ValueError saying what is wrong."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim == 1 and coords.shape == (2,):
        coords = coords[None]
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords of shape {coords.shape} must be (M, 2) map coordinates")
    if not np.isfinite(coords).all():
        raise ValueError("coords contain NaN or inf")
    return coords


def check_map(latents: Any, coords: Any) -> tuple[np.ndarray, np.ndarray]:
    """Checked (latents float32 (N, d), coords float64 (N, 2)) of one map."""
    latents = np.asarray(latents, dtype=np.float32)
    coords = check_coords(coords)
    if latents.ndim != 2 or len(latents) != len(coords):
        raise ValueError(
            f"latents of shape {latents.shape} must be (N, d) with N = {len(coords)} map points"
        )
    if not np.isfinite(latents).all():
        raise ValueError("latents contain NaN or inf")
    return latents, coords


class ModelSampler(Sampler):
    """A trained latent model (``sample(coords, n, seed=, guidance=, steps=)``) as a Sampler.

    Parameters
    ----------
    model : FlowMatching or LatentDiffusion (core.models)
    guidance : float
        Classifier-free guidance scale s: 0 = unconditional, 1 = plain conditional.
    steps : int
        Integration (flow) or DDIM (diffusion) steps.
    model_id : str or None
        The stored model's id, recorded in ``params``.
    """

    def __init__(self, model: Any, *, guidance: float, steps: int, model_id: str | None = None):
        self.model = model
        self.guidance = guidance
        self.steps = steps
        self.model_id = model_id

    @property
    def params(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "guidance": self.guidance, "steps": self.steps}

    @property
    def latent_dim(self) -> int:
        return int(self.model.config.latent_dim)

    def _sample(self, coords: np.ndarray, n: int, seed: int) -> np.ndarray:
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValueError(f"steps={self.steps!r} must be an integer >= 1")
        if not (isinstance(self.guidance, (int, float)) and np.isfinite(self.guidance)):
            raise ValueError(f"guidance={self.guidance!r} must be a finite number")
        return self.model.sample(coords, n, seed=seed, guidance=float(self.guidance), steps=self.steps)
