"""Conditional flow matching (core.models.flow_matching) as a sampler: the study's s = 5, 20 steps."""

from __future__ import annotations

from typing import Any

from core.synthesis.base import ModelSampler


class FlowMatchingSampler(ModelSampler):
    """Euler integration of the guided velocity field from N(0, I) to latents at u."""

    name = "flow_matching"

    def __init__(self, model: Any, *, guidance: float = 5.0, steps: int = 20, model_id: str | None = None):
        super().__init__(model, guidance=guidance, steps=steps, model_id=model_id)
