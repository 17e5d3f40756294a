"""Owner of ``calibrations/<id>``: a γ sweep (core.variations.calibration.Calibration) stored.

Layout, the tables of :class:`Calibration` (each left out when empty):
  sweep     gamma, metric, mean, median, q10, q90   one row per (γ, metric)
  distance  gamma, distance_per_dim, expected_distance_per_dim
  bands     metric, mean, median, q10, q90, n_pairs  (only with real frames)
  scores    gamma, outside, distance                (only with real frames)
  real_indices  (T,)   rows of the dataset whose consecutive pairs made the bands
Metadata: suggested_gamma (None without real frames), status ("completed" or "stopped": then
the tables hold the finished γ only), the readings behind the suggestion (band_gamma,
bound_gamma, entropy_bound, adjacent_distance_per_dim, latent_gamma: None when absent) and the
sentence saying which γ is suggested and why (reason), model_id, latents_id, dataset_id, params,
provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.data.store import Store
from core.variations.calibration import Calibration

KIND = "calibrations"
TABLES = ("sweep", "distance", "bands", "scores")  # Calibration's fields of the same names
REAL_INDICES = "real_indices"
# Calibration's scalar fields, kept as metadata
SCALARS = ("suggested_gamma", "band_gamma", "bound_gamma", "entropy_bound", "adjacent_distance_per_dim",
           "latent_gamma")


@dataclass(frozen=True)
class StoredCalibration:
    id: str
    result: Calibration  # absent tables read as empty frames
    real_indices: np.ndarray | None
    metadata: dict


def write_calibration(store: Store, result: Calibration, real_indices: np.ndarray | None,
                      metadata: Mapping[str, Any]) -> str:
    tables = {name: getattr(result, name) for name in TABLES}
    return store.put(
        KIND, tables={k: t for k, t in tables.items() if len(t)},
        arrays={} if real_indices is None else {REAL_INDICES: np.asarray(real_indices)},
        metadata={**metadata, **{name: _number(getattr(result, name)) for name in SCALARS},
                  "reason": result.reason, "status": result.status},
    )


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def read_calibration(store: Store, calibration_id: str) -> StoredCalibration:
    meta = store.metadata(KIND, calibration_id)
    names = set(store.array_names(KIND, calibration_id))
    tables = {name: store.table(KIND, calibration_id, name) if name in names else pd.DataFrame()
              for name in TABLES}
    result = Calibration(**tables, **{name: meta.get(name) for name in SCALARS}, status=meta.get("status", ""),
                         reason=meta.get("reason") or "")
    real = store.array(KIND, calibration_id, REAL_INDICES) if REAL_INDICES in names else None
    return StoredCalibration(calibration_id, result, real, meta)


def newest_for_model(store: Store, model_id: str | None) -> StoredCalibration | None:
    """The newest complete calibration of a model, or None."""
    found = next((c for c in store.list(KIND) if c.get("complete") and c.get("model_id") == model_id), None)
    return None if found is None else read_calibration(store, found["id"])
