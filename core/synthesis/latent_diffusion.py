"""Latent diffusion (core.models.latent_diffusion) as a sampler: DDIM in 20 steps, no extra guidance."""

from __future__ import annotations

from typing import Any

from core.synthesis.base import ModelSampler


class LatentDiffusionSampler(ModelSampler):
    """Deterministic DDIM from N(0, I); guidance 1 = the conditional model as trained (an
    unconditional model ignores both the coordinate and the guidance)."""

    name = "latent_diffusion"

    def __init__(self, model: Any, *, guidance: float = 1.0, steps: int = 20, model_id: str | None = None):
        super().__init__(model, guidance=guidance, steps=steps, model_id=model_id)
