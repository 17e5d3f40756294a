"""Plausibility filters of material variations (Dao et al. 2025) and their presets by kind of data.

A sample X_ij is kept when its metrics against the reference G(z_i)
(``core.variations.descriptors.METRICS``) pass every active threshold. Which thresholds suit
depends on the data (DESIGN §1, "Filter"):

- ``particles``: entropy difference ≤ 0.2 bits and nothing else, the paper's particle
  (diffusion) study; 0.2 lies below the 0.26-bit upper bound seen between consecutive real
  frames. IoU ≥ 0.5 on one particle caps its displacement at about half a radius, which would
  manufacture "confined" modes, so it is off here.
- ``clumps``: intensity (mass) deviation ≤ 20 % and foreground IoU ≥ 0.5, the paper's study
  of compact 3-D clumps and composition, where a clump must keep its mass and place.
- ``custom``: every threshold as given.

The preset a :class:`FilterParams` carries is derived from its thresholds (:attr:`FilterParams.preset`),
so a result never claims a preset whose thresholds it did not use: editing one threshold of a
preset makes it ``custom``.

No torch here: the page and the flow parameter models (``flows.params``) import this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from core.limits import AREA_MAX, ENTROPY_MAX, INTENSITY_MAX, IOU_MIN, BadParameter

CUSTOM = "custom"
# preset -> every threshold (None = off); FilterParams' defaults are the first one's
PRESETS: dict[str, dict[str, float | None]] = {
    "particles": {"entropy_max": 0.2, "iou_min": None, "intensity_max": None, "area_max": None},
    "clumps": {"entropy_max": None, "iou_min": 0.5, "intensity_max": 0.2, "area_max": None},
}
PRESET_NAMES = (*PRESETS, CUSTOM)
DEFAULT_PRESET = "particles"


@dataclass
class FilterParams:
    """Plausibility thresholds; None switches a filter off. The defaults are the ``particles`` preset.

    Checked on consecutive real colloid frames (64 px): entropy differences 0.00–0.30 bits
    (median 0.08), IoU 0.71–0.92, intensity deviation 0.01–0.27.
    """

    entropy_max: float | None = 0.2  # keep |ΔH| <= this many bits
    iou_min: float | None = None  # keep foreground IoU >= this
    intensity_max: float | None = None  # keep |ΔΣ| / Σref <= this
    area_max: float | None = None  # keep |Δ foreground fraction| <= this

    # filter -> (metric column, True when the sample passes)
    RULES = {
        "entropy_max": ("entropy_diff", lambda v, t: v <= t),
        "iou_min": ("iou", lambda v, t: v >= t),
        "intensity_max": ("intensity_dev", lambda v, t: v <= t),
        "area_max": ("area_diff", lambda v, t: v <= t),
    }
    RANGES = {"entropy_max": ENTROPY_MAX, "iou_min": IOU_MIN, "intensity_max": INTENSITY_MAX,
              "area_max": AREA_MAX}

    @classmethod
    def from_preset(cls, preset: str = DEFAULT_PRESET, **thresholds: float | None) -> FilterParams:
        """The preset's thresholds, each one given replacing the preset's own; ``custom`` starts
        with every filter off, so its thresholds are exactly those given.

        >>> FilterParams.from_preset("clumps").active
        {'iou_min': 0.5, 'intensity_max': 0.2}
        >>> FilterParams.from_preset("particles", iou_min=0.5).preset
        'custom'
        """
        if preset not in PRESET_NAMES:
            raise BadParameter("preset", preset, f"must be one of {', '.join(map(repr, PRESET_NAMES))}")
        unknown = sorted(set(thresholds) - set(cls.RULES))
        if unknown:
            raise BadParameter("filters", unknown, f"are unknown; thresholds are {', '.join(cls.RULES)}")
        base = PRESETS.get(preset, dict.fromkeys(cls.RULES))
        return cls(**{**base, **thresholds})

    @property
    def preset(self) -> str:
        """The preset whose thresholds these are exactly, else ``custom``."""
        mine = {f.name: getattr(self, f.name) for f in fields(self)}
        return next((name for name, values in PRESETS.items() if values == mine), CUSTOM)

    def validate(self) -> FilterParams:
        for name, (lo, hi) in self.RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and lo <= value <= hi):
                raise BadParameter(name, value, f"must be None (off) or a number >= {lo:g} and <= {hi:g}")
        return self

    @property
    def active(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.RULES if getattr(self, name) is not None}

    def apply(self, metrics: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
        """Kept mask (B,) and, per active filter, how many samples it rejects (a sample can
        fail several)."""
        kept = np.ones(len(metrics), dtype=bool)
        failed = {}
        for name, threshold in self.active.items():
            column, passes = self.RULES[name]
            ok = passes(metrics[column].to_numpy(), threshold)
            failed[name] = int((~ok).sum())
            kept &= ok
        return kept, failed
